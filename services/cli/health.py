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

from alerts.config import AlertConfigError, AlertsConfig, load_rules_config
from alerts.early_warning import EarlyWarningFigures
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


def rules_config(path: Path | None) -> AlertsConfig:
    """The alerting rules at ``path`` (default: the configured ones); exit 2 naming the field when invalid."""
    try:
        return load_rules_config(path or Settings().alert_rules)
    except AlertConfigError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def figures_table(columns: list[tuple[str, EarlyWarningFigures]]) -> Table:
    """The alert figures of several configs or halves side by side."""
    table = Table("", *(name for name, _ in columns))
    rows: list[tuple[str, Callable[[EarlyWarningFigures], str]]] = [
        ("losses alerted >= 30 days ahead", lambda f: f"{_fmt(f.recall)} ({f.losses_alerted_early}/{f.losses})"),
        ("median lead (days)", lambda f: _fmt(f.median_lead_days, 0)),
        ("healthy accounts alerted", lambda f: _fmt(f.healthy_alerted_share)),
        ("healthy accounts paged", lambda f: _fmt(f.healthy_paged_share)),
        ("immediate messages per KAM-week", lambda f: _fmt(f.immediate_per_kam_week)),
        ("digests per KAM-week", lambda f: _fmt(f.digests_per_kam_week)),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(f) for _, f in columns))
    names = sorted({r.rule for _, f in columns for r in f.rules})
    for name in names:
        cells = []
        for _, f in columns:
            r = next((r for r in f.rules if r.rule == name), None)
            if r is None or r.alerts == 0:
                cells.append("-")
                continue
            only = " digest only" if r.digest_only else ""
            cells.append(f"{_fmt(r.precision)} on {r.alerts}, caught {r.losses_caught}{only}")
        table.add_row(f"rule {name} (precision)", *cells)
    return table


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
        rules: Annotated[
            Path | None, typer.Option(help="Alert rules YAML (default KAMWATCH_ALERT_RULES or built-in).")
        ] = None,
        compare_rules: Annotated[
            Path | None, typer.Option(help="The candidate's alert rules YAML (default: the same rules).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    ) -> None:
        """Replay EVENTS as lived into a scratch database and report recall, precision, lead time and AUC of the
        scores, and what the alert rules made of them (early recall, noise on healthy accounts, per rule)."""
        from services.flows.backtesting import dumps, run_backtest

        current = scoring_config(config)
        candidate = scoring_config(compare) if compare else None
        current_rules = rules_config(rules)
        candidate_rules = rules_config(compare_rules) if compare_rules else None
        if candidate_rules is not None and candidate is None:
            candidate = current
        results = run(
            lambda settings: run_backtest(
                settings,
                events,
                config=current,
                candidate=candidate,
                outcomes=outcomes,
                rules=current_rules,
                candidate_rules=candidate_rules,
            )
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
        alerts = [(f"{r.config_version} + {r.rules_version}", r.alerts) for r in results if r.alerts is not None]
        if alerts:
            console.print(figures_table(alerts))
        console.print(f"{results[0].replay.lines:,} events replayed, {results[0].accounts:,} accounts scored")

    @app.command()
    def tune(
        events: Annotated[
            Path | None,
            typer.Argument(
                exists=True, dir_okay=False, help="History (NDJSON, optionally gzip); default: the database's own."
            ),
        ] = None,
        out: Annotated[Path, typer.Option(help="Where to write the candidate's scoring.yaml and rules.yaml.")] = Path(
            "candidate"
        ),
        trials: Annotated[int, typer.Option(min=1, help="Candidates to try.")] = 40,
        seed: Annotated[
            int, typer.Option(help="Seeds the split into halves and the search: same seed, same result.")
        ] = 0,
        config: Annotated[
            Path | None, typer.Option(help="Scoring YAML to start from (default: the configured one).")
        ] = None,
        rules: Annotated[
            Path | None, typer.Option(help="Alert rules YAML to start from (default: the configured).")
        ] = None,
        max_immediate: Annotated[float, typer.Option(help="Immediate messages per KAM-week, at most.")] = 1.0,
        max_digests: Annotated[float, typer.Option(help="Digests per KAM-week, at most.")] = 1.0,
        max_healthy_alerted: Annotated[float, typer.Option(help="Share of healthy accounts alerted, at most.")] = 0.3,
        max_healthy_paged: Annotated[float, typer.Option(help="Share of healthy accounts paged, at most.")] = 0.03,
        min_precision: Annotated[float, typer.Option(help="Precision of every rule that pages, at least.")] = 0.4,
        as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    ) -> None:
        """Search scoring and rule parameters for the best early recall within an alert budget, from a history
        with outcomes (kamwatch.outcome.v1): tuned on half the accounts, reported on both halves; writes the
        candidate for `kamwatch backtest --compare`."""
        from services.flows.backtesting import alert_figures_json
        from services.flows.outcome_history import EmptyHistory, history_of_database, history_of_events
        from services.tuning.search import Budget, Candidate
        from services.tuning.search import tune as search

        current = Candidate(scoring_config(config), rules_config(rules))
        budget = Budget(max_immediate, max_digests, max_healthy_alerted, max_healthy_paged, min_precision)

        async def load(settings: Settings) -> Any:
            if events is not None:
                return await history_of_events(settings, events)
            async with opened(settings) as db:
                return await history_of_database(db)

        try:
            history = run(load)
        except EmptyHistory as error:
            console.print(f"[red]nothing to tune on: {error}[/]")
            raise typer.Exit(1) from None
        if not any(o.lost for o in history.outcomes.values()):
            console.print("[red]nothing to tune on: no churned or downgraded outcome in the history[/]")
            raise typer.Exit(1)

        def progress(number: int, judged: Any) -> None:
            if not as_json:
                f, mark = judged.figures, "within budget" if judged.feasible else "over budget"
                console.print(
                    f"trial {number + 1}/{trials}: recall {_fmt(f.recall)}, lead {_fmt(f.median_lead_days, 0)} d, "
                    f"healthy alerted {_fmt(f.healthy_alerted_share)}, paged {_fmt(f.healthy_paged_share)} ({mark})"
                )

        result = search(
            history, current, budget=budget, trials=trials, seed=seed, version=f"tuned-{seed}", progress=progress
        )
        out.mkdir(parents=True, exist_ok=True)
        found = result.best[0].candidate
        for name, model in (("scoring.yaml", found.scoring), ("rules.yaml", found.rules)):
            text = yaml.safe_dump(model.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
            (out / name).write_text(f"# Written by kamwatch tune (seed {seed}, {result.trials} trials).\n{text}")
        if as_json:
            document = {
                "trials": result.trials,
                "feasible_trials": result.feasible_trials,
                "within_budget": result.best[0].feasible,
                "tuning_accounts": len(result.tuning_accounts),
                "held_out_accounts": len(result.held_out_accounts),
                "current": {
                    "tuning": alert_figures_json(result.current[0].figures),
                    "held_out": alert_figures_json(result.current[1].figures),
                },
                "candidate": {
                    "tuning": alert_figures_json(result.best[0].figures),
                    "held_out": alert_figures_json(result.best[1].figures),
                },
                "written": [str(out / "scoring.yaml"), str(out / "rules.yaml")],
            }
            typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
            return
        columns = [
            ("current, tuning half", result.current[0].figures),
            ("candidate, tuning half", result.best[0].figures),
            ("current, held-out half", result.current[1].figures),
            ("candidate, held-out half", result.best[1].figures),
        ]
        console.print(figures_table(columns))
        verdict = "within the budget" if result.best[0].feasible else "[red]over the budget[/] (the least over it)"
        console.print(
            f"{result.trials} trials, {result.feasible_trials} within the budget; the candidate is {verdict} on the "
            f"tuning half ({len(result.tuning_accounts)} accounts; held out: {len(result.held_out_accounts)})."
        )
        console.print(f"wrote {out / 'scoring.yaml'} and {out / 'rules.yaml'}; compare them as lived with:")
        compare = f"--compare {out / 'scoring.yaml'} --compare-rules {out / 'rules.yaml'}"
        console.print(f"  kamwatch backtest {events or 'EVENTS'} {compare}")

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
