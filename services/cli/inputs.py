"""Events in and out: ``replay``, ``simulate``, ``dlq``, ``schemas``, ``retention``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingestion.dead_letters import DeadLetter, dead_letter, mark_replayed, recent_dead_letters, unreplayed_dead_letters
from ingestion.parsing import InboundRecord
from ingestion.partitions import drop_partitions_before
from ingestion.pipeline import BatchResult
from schemas.events import event_json_schemas
from services.cli.common import console, iso, opened, run
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline, time_window
from services.flows.notifying import NotifyMode
from services.flows.replay import replay_as_lived, replay_file
from services.platform.clock import utc_now
from services.platform.settings import Settings


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    dlq_app = typer.Typer(help="Dead letters: inputs that were rejected, with the reason and the raw bytes.")
    schemas_app = typer.Typer(help="The event contract.")
    retention_app = typer.Typer(help="Raw-event retention.")
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(schemas_app, name="schemas")
    app.add_typer(retention_app, name="retention")

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
            typer.Option(
                help="Alerts are always recorded; none: notify nobody, log: log the messages, file: write them."
            ),
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
                window = time_window(settings)
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
                        stats = await replay_as_lived(
                            Pipeline(db, clock=clock, window=window), engine, file, batch_size=size, on_batch=advance
                        )
                    else:
                        stats = await replay_file(
                            Pipeline(db, clock=clock, window=window), file, batch_size=size, on_batch=advance
                        )
                        await engine.rescore_pending(clock())
            console.print(
                f"{stats.lines:,} events: {stats.accepted:,} accepted, {stats.duplicates:,} duplicates, "
                f"{stats.rejected:,} rejected (see `kamwatch dlq list`)"
            )

        run(main)

    @app.command()
    def simulate(
        out_dir: Annotated[
            Path, typer.Argument(file_okay=False, help="Where to write events.ndjson and outcomes.ndjson.")
        ],
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

    @dlq_app.command("list")
    def dlq_list(
        limit: Annotated[int, typer.Option(help="Most recent first.")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    ) -> None:
        """List dead letters, most recent first."""

        async def main(settings: Settings) -> list[DeadLetter]:
            async with opened(settings) as db, db.transaction() as conn:
                return await recent_dead_letters(conn, limit)

        rows = run(main)
        if as_json:
            for row in rows:
                typer.echo(orjson.dumps(row.as_json()).decode())
            return
        table = Table("id", "received", "ingress", "origin", "field", "reason", "replayed")
        for row in rows:
            table.add_row(
                str(row.id),
                iso(row.received_at),
                row.ingress,
                row.origin or "",
                row.field or "",
                row.reason,
                iso(row.replayed_at),
            )
        console.print(table)

    @dlq_app.command("show")
    def dlq_show(dead_letter_id: Annotated[int, typer.Argument(help="Dead letter id.")]) -> None:
        """Show one dead letter, with its raw payload."""

        async def main(settings: Settings) -> DeadLetter | None:
            async with opened(settings) as db, db.transaction() as conn:
                return await dead_letter(conn, dead_letter_id)

        row = run(main)
        if row is None:
            console.print(f"no dead letter {dead_letter_id}")
            raise typer.Exit(1)
        typer.echo(orjson.dumps(row.as_json(), option=orjson.OPT_INDENT_2).decode())

    @dlq_app.command("replay")
    def dlq_replay(
        ids: Annotated[
            list[int] | None, typer.Argument(help="Dead letter ids (default: all not yet replayed).")
        ] = None,
    ) -> None:
        """Send dead letters through the pipeline again (e.g. after a contract fix); accepted ones are marked."""

        async def main(settings: Settings) -> tuple[int, int]:
            async with opened(settings) as db:
                async with db.transaction() as conn:
                    letters = await unreplayed_dead_letters(conn, ids or ())
                if not letters:
                    return 0, 0
                pipeline = Pipeline(db, clock=clock, window=time_window(settings))
                result = await pipeline.store(
                    await pipeline.parse([InboundRecord(x.raw, None, x.headers, x.record_key) for x in letters]),
                    ingress="replay",
                    dead_letter=False,  # a still-invalid letter stays where it is, not recorded twice
                )
                done = [x.id for x, r in zip(letters, result.results, strict=True) if r.status != "rejected"]
                async with db.transaction() as conn:
                    await mark_replayed(conn, done, clock())
                return len(done), len(letters) - len(done)

        ok, still_bad = run(main)
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
        months: Annotated[
            int | None, typer.Option(help="Months of raw events to keep (default from settings).")
        ] = None,
    ) -> None:
        """Drop raw-event partitions older than the retention period (derived state is kept)."""

        async def main(settings: Settings) -> list[str]:
            keep = months or settings.raw_event_retention_months
            today = clock().date()
            index = today.year * 12 + today.month - 1 - keep
            cutoff = today.replace(year=index // 12, month=index % 12 + 1, day=1)
            async with opened(settings) as db, db.autocommit() as conn:
                return await drop_partitions_before(conn, cutoff)

        dropped = run(main)
        console.print(f"dropped {len(dropped)} partitions: {', '.join(dropped) or '-'}")
