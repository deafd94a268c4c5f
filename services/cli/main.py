"""The ``kamwatch`` command line (typer). The service edge: reads settings and the clock, wires the parts."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select, update

from health_engine.config import ScoringConfig, ScoringConfigError, load_scoring_config
from health_engine.repository import driver_json
from ingestion.parsing import InboundRecord
from ingestion.partitions import drop_partitions_before
from ingestion.pipeline import BatchResult
from schemas.events import event_json_schemas
from schemas.tables import account_health, dead_letters
from services.cli.alert_actions import register as register_alert_commands
from services.cli.keys import register as register_access_commands
from services.flows.alerting import NotifyMode, build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline, utc_now
from services.flows.replay import replay_as_lived, replay_file
from services.platform.database import Database, driver_connection
from services.platform.runtime import tune_gc
from services.platform.settings import Settings

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

app = typer.Typer(help="kamwatch: key-account health and churn early warning.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: inputs that were rejected, with the reason and the raw bytes.")
schemas_app = typer.Typer(help="The event contract.")
retention_app = typer.Typer(help="Raw-event retention.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(schemas_app, name="schemas")
app.add_typer(retention_app, name="retention")
config_app = typer.Typer(help="The health scoring configuration.")
app.add_typer(config_app, name="config")
register_access_commands(app)
register_alert_commands(app)

console = Console()
T = TypeVar("T")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("pgserver", "alembic.runtime.migration", "mail.log"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _run(main: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    configure_logging()
    settings = Settings()
    tune_gc()
    return asyncio.run(main(settings))


@asynccontextmanager
async def opened(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    db = await Database.open(settings)
    try:
        if migrate:
            await db.migrate()
        yield db
    finally:
        await db.close()


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (idempotent)."""

    async def main(settings: Settings) -> None:
        async with opened(settings):
            console.print("schema is up to date")

    _run(main)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default KAMWATCH_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default KAMWATCH_API_PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the port.")] = 1,
) -> None:
    """Serve the HTTP API (and pages, /metrics, /healthz, /readyz)."""
    import uvicorn

    configure_logging()
    settings = Settings()

    async def migrate_first() -> None:
        async with opened(settings):
            pass

    asyncio.run(migrate_first())
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each process counts in files there and any of them answers /metrics for all (set before they start).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="kamwatch-metrics-")
    uvicorn.run(
        "services.api.app:app_from_environment",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_level="info",
    )


@app.command()
def worker() -> None:
    """Consume the Kafka topics (KAMWATCH_KAFKA_BOOTSTRAP_SERVERS) into the pipeline until stopped: rescore,
    sweep on schedule, open and resolve alerts (queued for `kamwatch alerter`)."""
    from services.worker.consumer import run_worker

    _run(run_worker)


@app.command()
def evaluator() -> None:
    """Rescore the accounts ingestion touched, sweep on schedule and open alerts, apart from the Kafka
    consumers (with KAMWATCH_WORKER_EVALUATES=false on the workers), until stopped."""
    from services.worker.consumer import run_evaluator

    _run(run_evaluator)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON file, optionally gzip.")],
    batch_size: Annotated[int | None, typer.Option(help="Events per transaction.")] = None,
    as_of_clock: Annotated[
        bool,
        typer.Option(
            "--as-of-clock",
            help="Score on the events' own time: sweep at each midnight, as if the history were lived.",
        ),
    ] = False,
    notify: Annotated[
        NotifyMode,
        typer.Option(help="Alerts are always recorded; none: notify nobody, log: log the messages, file: write them."),
    ] = "none",
    notify_file: Annotated[Path | None, typer.Option(help="Where --notify file writes (NDJSON).")] = None,
) -> None:
    """Feed a file of events through the ingestion pipeline, in order, in batches, then rescore."""
    if notify == "file" and notify_file is None:
        raise typer.BadParameter("--notify file needs --notify-file", param_hint="--notify-file")

    async def main(settings: Settings) -> None:
        async with opened(settings) as db:
            alerting = build_alerting(settings, notify=notify, file=notify_file)
            engine = HealthEngine.from_settings(db, settings, alerting)
            size = batch_size or settings.ingest_batch_size
            with Progress(
                TextColumn("[bold]replay"),
                BarColumn(),
                TextColumn("{task.completed:,} events"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("replay", total=None)

                def advance(result: BatchResult) -> None:
                    progress.advance(task, result.record_count)

                if as_of_clock:
                    stats = await replay_as_lived(Pipeline(db), engine, file, batch_size=size, on_batch=advance)
                else:
                    stats = await replay_file(Pipeline(db), file, batch_size=size, on_batch=advance)
                    await engine.rescore_pending(utc_now())
        console.print(
            f"{stats.lines:,} events: {stats.accepted:,} accepted, {stats.duplicates:,} duplicates, "
            f"{stats.rejected:,} rejected (see `kamwatch dlq list`)"
        )

    _run(main)


@app.command()
def demo(
    reset: Annotated[bool, typer.Option(help="Start afresh: drop the demo data first.")] = False,
    duration: Annotated[float | None, typer.Option(help="Stop after SECONDS of live stream (default: Ctrl-C).")] = None,
    port: Annotated[int, typer.Option(help="API port (0 picks a free one).")] = 8000,
) -> None:
    """The whole system on the embedded database: a simulated portfolio, the API, a live stream."""
    from services.demo.run import run_demo

    _run(lambda settings: run_demo(settings, reset=reset, duration=duration, port=port, clock=utc_now))


@app.command()
def simulate(
    out_dir: Annotated[Path, typer.Argument(file_okay=False, help="Where to write events.ndjson and outcomes.ndjson.")],
    accounts: Annotated[int, typer.Option(help="Accounts in the portfolio.")] = 200,
    kams: Annotated[int, typer.Option(help="Key Account Managers.")] = 10,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 1,
    start: Annotated[str, typer.Option(help="First day of the history (YYYY-MM-DD).")] = "2025-01-01",
) -> None:
    """Write a realistic, deterministic portfolio history in the event contract, and its outcomes."""
    from services.simulator.generator import simulate_to_dir

    summary = simulate_to_dir(out_dir, accounts, kams, days, seed, date.fromisoformat(start))
    console.print(
        f"{summary.events:,} events ({summary.outcomes} outcomes) for {summary.accounts} accounts and "
        f"{summary.kams} KAMs, {summary.start} to {summary.end}, in {out_dir}"
    )


def _parse_time(value: str | None) -> datetime:
    """An aware time from the command line (a date means its UTC midnight); default now."""
    if value is None:
        return utc_now()
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def score(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Rescore at this time (ISO 8601) instead of showing the stored one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Print an account's score, components and drivers (stored, or computed at --as-of without saving)."""

    async def main(settings: Settings) -> dict[str, Any] | None:
        async with opened(settings) as db:
            if as_of is None:
                async with db.unit_of_work() as conn:
                    row = (
                        await conn.execute(select(account_health).where(account_health.c.account_id == account_id))
                    ).first()
                if row is None:
                    return None
                return {
                    "account_id": row.account_id,
                    "as_of": row.as_of.isoformat(),
                    "risk": float(row.risk),
                    "level": row.level,
                    "components": row.components,
                    "drivers": row.drivers,
                    "config_version": row.config_version,
                }
            engine = HealthEngine.from_settings(db, settings)
            scores = await engine.compute([account_id], _parse_time(as_of))
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

    found = _run(main)
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
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate at this time (ISO 8601; default now).")] = None,
    shards: Annotated[int | None, typer.Option(help="Shards (default KAMWATCH_SWEEP_SHARDS).")] = None,
) -> None:
    """Run the time-driven evaluation once: every account rescored at --as-of. Several processes running
    the same sweep share its shards; each account is evaluated once."""

    async def main(settings: Settings) -> None:
        async with opened(settings) as db:
            engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
            report = await engine.sweep(_parse_time(as_of), shards=shards or settings.sweep_shards)
        console.print(f"swept {report.accounts:,} accounts in {report.shards} shards ({report.seconds:.1f} s)")

    _run(main)


ScoringConfigPath = Annotated[
    Path | None, typer.Argument(help="A scoring YAML (default KAMWATCH_SCORING_CONFIG or built-in).")
]


def _scoring_config(path: Path | None) -> ScoringConfig:
    """The scoring config at ``path`` (default: the configured one); exit 2 naming the field when invalid."""
    try:
        return load_scoring_config(path or Settings().scoring_config)
    except ScoringConfigError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


@config_app.command("show")
def config_show(path: ScoringConfigPath = None) -> None:
    """Print the effective scoring configuration (validated)."""
    config = _scoring_config(path)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True))


@config_app.command("validate")
def config_validate(path: ScoringConfigPath = None) -> None:
    """Check a scoring configuration; exit 2 with the offending field when it is invalid."""
    console.print(f"valid scoring config, version {_scoring_config(path).version}")


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

    current = _scoring_config(config)
    candidate = _scoring_config(compare) if compare else None
    results = _run(
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


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option(help="Most recent first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters, most recent first."""

    async def main(settings: Settings) -> list[dict[str, Any]]:
        async with opened(settings) as db, db.unit_of_work() as conn:
            query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
            return [dict(row._mapping) for row in await conn.execute(query)]

    rows = _run(main)
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(_dead_letter_json(row)).decode())
        return
    table = Table("id", "received", "ingress", "origin", "field", "reason", "replayed")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["received_at"].isoformat(timespec="seconds"),
            row["ingress"],
            row["origin"] or "",
            row["field"] or "",
            row["reason"],
            row["replayed_at"].isoformat(timespec="seconds") if row["replayed_at"] else "",
        )
    console.print(table)


@dlq_app.command("show")
def dlq_show(dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id.")]) -> None:
    """Show one dead letter, with its raw payload."""

    async def main(settings: Settings) -> dict[str, Any] | None:
        async with opened(settings) as db, db.unit_of_work() as conn:
            row = (await conn.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id))).first()
            return dict(row._mapping) if row else None

    row = _run(main)
    if row is None:
        console.print(f"no dead letter {dead_letter_id}")
        raise typer.Exit(1)
    typer.echo(orjson.dumps(_dead_letter_json(row), option=orjson.OPT_INDENT_2).decode())


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="Dead letter ids (default: all not yet replayed).")] = None,
) -> None:
    """Send dead letters through the pipeline again (e.g. after a contract fix); accepted ones are marked."""

    async def main(settings: Settings) -> tuple[int, int]:
        async with opened(settings) as db:
            async with db.unit_of_work() as conn:
                query = select(dead_letters.c.id, dead_letters.c.raw).where(dead_letters.c.replayed_at.is_(None))
                if ids:
                    query = query.where(dead_letters.c.id.in_(ids))
                rows = (await conn.execute(query.order_by(dead_letters.c.id))).all()
            if not rows:
                return 0, 0
            pipeline = Pipeline(db)
            result = await pipeline.store(
                await pipeline.parse([InboundRecord(bytes(row.raw)) for row in rows]),
                ingress="replay",
                dead_letter=False,  # a still-invalid letter stays where it is, not recorded twice
            )
            done = [row.id for row, r in zip(rows, result.results, strict=True) if r.status != "rejected"]
            async with db.unit_of_work() as conn:
                await conn.execute(
                    update(dead_letters).where(dead_letters.c.id.in_(done)).values(replayed_at=pipeline.clock())
                )
            return len(done), len(rows) - len(done)

    ok, still_bad = _run(main)
    console.print(f"{ok} replayed, {still_bad} still rejected")


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Argument(file_okay=False, help="Output directory.")]) -> None:
    """Write the JSON Schema of every event type and the AsyncAPI document into DIRECTORY."""
    from services.worker.asyncapi import asyncapi_document

    directory.mkdir(parents=True, exist_ok=True)
    schemas = event_json_schemas()
    for event_type, schema in schemas.items():
        (directory / f"{event_type}.schema.json").write_bytes(orjson.dumps(schema, option=orjson.OPT_INDENT_2))
    document = asyncapi_document(Settings())
    (directory / "asyncapi.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    console.print(f"wrote {len(schemas)} event schemas and asyncapi.json to {directory}")


@retention_app.command("apply")
def retention_apply(
    months: Annotated[int | None, typer.Option(help="Months of raw events to keep (default from settings).")] = None,
) -> None:
    """Drop raw-event partitions older than the retention period (derived state is kept)."""

    async def main(settings: Settings) -> list[str]:
        keep = months or settings.raw_event_retention_months
        today = datetime.now(UTC).date()
        index = today.year * 12 + today.month - 1 - keep
        cutoff = today.replace(year=index // 12, month=index % 12 + 1, day=1)
        async with opened(settings) as db, db.autocommit() as conn:
            return await drop_partitions_before(await driver_connection(conn), cutoff)

    dropped = _run(main)
    console.print(f"dropped {len(dropped)} partitions: {', '.join(dropped) or '-'}")


def _dead_letter_json(row: dict[str, Any]) -> dict[str, Any]:
    raw = bytes(row["raw"])
    return {
        "id": row["id"],
        "received_at": row["received_at"].isoformat(),
        "ingress": row["ingress"],
        "origin": row["origin"],
        "reason": row["reason"],
        "field": row["field"],
        "replayed_at": row["replayed_at"].isoformat() if row["replayed_at"] else None,
        "raw": raw.decode("utf-8", errors="replace"),
    }
