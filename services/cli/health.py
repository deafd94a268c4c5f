"""The health engine by hand: ``score``, ``sweep``, ``config``, ``backtest``, ``override``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich.table import Table

from health_engine import overrides
from health_engine.config import ScoringConfig, ScoringConfigError, load_scoring_config
from health_engine.repository import driver_json, stored_health
from schemas.vocabulary import LEVELS
from services.cli.common import console, iso, opened, parse_duration, parse_time, run, run_with_db
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings

ScoringConfigPath = Annotated[
    Path | None, typer.Argument(help="A scoring YAML (default KAMWATCH_SCORING_CONFIG or built-in).")
]


def scoring_config(path: Path | None) -> ScoringConfig:
    """The scoring config at ``path`` (default: the configured one); exit 2 naming the field when invalid."""
    try:
        return load_scoring_config(path or Settings().scoring_config)
    except ScoringConfigError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    config_app = typer.Typer(help="The health scoring configuration.")
    override_app = typer.Typer(help="Manual level pins on accounts.")
    app.add_typer(config_app, name="config")
    app.add_typer(override_app, name="override")

    @app.command()
    def score(
        account_id: Annotated[str, typer.Argument(help="Account id.")],
        as_of: Annotated[
            str | None,
            typer.Option("--as-of", help="Rescore at this time (ISO 8601) instead of showing the stored one."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    ) -> None:
        """Print an account's score, components and drivers (stored, or computed at --as-of without saving)."""

        async def main(settings: Settings) -> dict[str, Any] | None:
            async with opened(settings) as db:
                if as_of is None:
                    async with db.transaction() as conn:
                        return await stored_health(conn, account_id)
                engine = HealthEngine.from_settings(db, settings)
                scores = await engine.compute([account_id], parse_time(as_of, clock=clock))
                if not scores:
                    return None
                result = scores[0]
                return {
                    "account_id": result.account_id,
                    "as_of": result.as_of.isoformat(),
                    "risk": result.risk,
                    "level": result.level,
                    "components": [{"name": c.name, "risk": c.risk, "weight": c.weight} for c in result.components],
                    "drivers": driver_json(result),
                    "config_version": result.config_version,
                }

        found = run(main)
        if found is None:
            console.print(f"no score for {account_id} (unknown account, or no account.v1 profile yet)")
            raise typer.Exit(1)
        if as_json:
            typer.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
            return
        console.print(
            f"[bold]{found['account_id']}[/]  risk {found['risk']:.1f}  level {found['level']}  as of {found['as_of']}"
        )
        components = Table("component", "risk", "weight")
        for c in found["components"]:
            components.add_row(c["name"], f"{c['risk']:.1f}", f"{c['weight']:.2f}")
        console.print(components)
        drivers = Table("code", "severity", "points", "since", "message")
        for d in found["drivers"]:
            drivers.add_row(d["code"], d["severity"], f"{d['points']:.1f}", d["since"] or "", d["message_en"])
        console.print(drivers)

    @app.command()
    def sweep(
        as_of: Annotated[
            str | None, typer.Option("--as-of", help="Evaluate at this time (ISO 8601; default now).")
        ] = None,
        shards: Annotated[int | None, typer.Option(help="Shards (default KAMWATCH_SWEEP_SHARDS).")] = None,
    ) -> None:
        """Run the time-driven evaluation once: every account rescored at --as-of. Several processes running
        the same sweep share its shards; each account is evaluated once."""

        async def main(settings: Settings) -> None:
            async with opened(settings) as db:
                engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
                report = await engine.sweep(parse_time(as_of, clock=clock), shards=shards or settings.sweep_shards)
            console.print(f"swept {report.accounts:,} accounts in {report.shards} shards ({report.seconds:.1f} s)")

        run(main)

    @config_app.command("show")
    def config_show(path: ScoringConfigPath = None) -> None:
        """Print the effective scoring configuration (validated)."""
        config = scoring_config(path)
        typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))

    @config_app.command("validate")
    def config_validate(path: ScoringConfigPath = None) -> None:
        """Check a scoring configuration; exit 2 with the offending field when it is invalid."""
        console.print(f"valid scoring config, version {scoring_config(path).version}")

    @app.command()
    def backtest(
        events: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="History (NDJSON, optionally gzip).")],
        outcomes: Annotated[
            Path | None, typer.Option(exists=True, dir_okay=False, help="Outcome events (default: those in EVENTS).")
        ] = None,
        config: Annotated[
            Path | None, typer.Option(help="Scoring YAML (default KAMWATCH_SCORING_CONFIG or built-in).")
        ] = None,
        compare: Annotated[Path | None, typer.Option(help="A candidate scoring YAML run in shadow beside it.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    ) -> None:
        """Replay EVENTS as lived into a scratch database and report recall, precision, lead time and AUC."""
        from services.flows.backtesting import dumps, run_backtest

        current = scoring_config(config)
        candidate = scoring_config(compare) if compare else None
        results = run(
            lambda settings: run_backtest(settings, events, config=current, candidate=candidate, outcomes=outcomes)
        )
        if as_json:
            typer.echo(dumps(results))
            return
        table = Table("config", "horizon", "recall", "precision", "median lead (d)", "ROC AUC", "losses", "flagged")
        for result in results:
            for h in result.reports:
                table.add_row(
                    result.config_version,
                    f"{h.horizon_days} d",
                    _fmt(h.recall),
                    _fmt(h.precision),
                    _fmt(h.median_lead_days, 0),
                    _fmt(h.auc),
                    str(h.losses),
                    str(h.flagged),
                )
        console.print(table)
        console.print(f"{results[0].replay.lines:,} events replayed, {results[0].accounts:,} accounts scored")

    @override_app.command("set")
    def override_set(
        account_id: Annotated[str, typer.Argument()],
        level: Annotated[str, typer.Option(help="low, medium, high or critical.")],
        reason: Annotated[str, typer.Option(help="Why (shown with the health).")],
        by: Annotated[str, typer.Option(help="Who pins it.")] = "cli",
        ttl: Annotated[str, typer.Option(help="How long, such as 72h or 14d.")] = "72h",
    ) -> None:
        """Pin an account's level for a while (replaces the pin in force)."""
        if level not in LEVELS:
            raise typer.BadParameter("level must be low, medium, high or critical")
        lifetime = parse_duration(ttl)

        async def work(db: Database, now: datetime) -> Any:
            async with db.unit_of_work() as conn:
                return await overrides.set_override(
                    conn, account_id, level=level, reason=reason, actor=by, now=now, expires_at=now + lifetime
                )

        row = run_with_db(work, clock=clock)
        console.print(f"override {row['id']}: {account_id} pinned {level} until {iso(row['expires_at'])}")

    @override_app.command("clear")
    def override_clear(
        account_id: Annotated[str, typer.Argument()], by: Annotated[str, typer.Option(help="Who lifts it.")] = "cli"
    ) -> None:
        """Lift the pin in force."""

        async def work(db: Database, now: datetime) -> int:
            async with db.unit_of_work() as conn:
                return await overrides.clear_override(conn, account_id, actor=by, now=now)

        if not run_with_db(work, clock=clock):
            console.print(f"{account_id} has no override in force")
            raise typer.Exit(1)
        console.print(f"override of {account_id} lifted")

    @override_app.command("list")
    def override_list(
        account_id: Annotated[str | None, typer.Argument()] = None,
        all_: Annotated[bool, typer.Option("--all", help="Include expired and revoked ones.")] = False,
    ) -> None:
        """Overrides in force (or all of them)."""

        async def work(db: Database, now: datetime) -> Any:
            async with db.unit_of_work() as conn:
                return await overrides.list_overrides(conn, now=now, account_id=account_id, include_inactive=all_)

        table = Table("id", "account", "level", "reason", "by", "created", "expires", "revoked")
        for row in run_with_db(work, clock=clock):
            table.add_row(
                str(row["id"]),
                row["account_id"],
                row["level"],
                row["reason"],
                row["created_by"],
                iso(row["created_at"]),
                iso(row["expires_at"]),
                f"{iso(row['revoked_at'])} {row['revoked_by'] or ''}".strip(),
            )
        console.print(table)
