"""Accounts set aside by a failed evaluation: ``kamwatch quarantine list|retry``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import orjson
import typer
from rich.table import Table

from health_engine.quarantine import Quarantined, list_quarantined
from services.cli.common import console, iso, opened, parse_time, run, run_with_db
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    """Add ``quarantine`` to ``app``."""
    quarantine_app = typer.Typer(
        help="Accounts set aside because evaluating them failed: the others go on; retry once fixed."
    )
    app.add_typer(quarantine_app, name="quarantine")

    @quarantine_app.command("list")
    def quarantine_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False) -> None:
        """Quarantined accounts: the stage that failed, the error, when, and their newest events."""

        async def work(db: Database, now: datetime) -> list[Quarantined]:
            async with db.transaction() as conn:
                return await list_quarantined(conn)

        rows = run_with_db(work, clock=clock)
        if as_json:
            for row in rows:
                typer.echo(orjson.dumps(row))
            return
        if not rows:
            console.print("no account is quarantined")
            return
        table = Table("account", "stage", "trigger", "as of", "failures", "first failed", "last failed", "error")
        for row in rows:
            table.add_row(
                row.account_id,
                row.stage,
                row.trigger,
                iso(row.as_of),
                str(row.failures),
                iso(row.first_failed_at),
                iso(row.last_failed_at),
                row.error,
            )
        console.print(table)

    @quarantine_app.command("retry")
    def quarantine_retry(
        accounts: Annotated[list[str] | None, typer.Argument(help="Account ids (default: every one).")] = None,
        as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate at this time (default now).")] = None,
    ) -> None:
        """Evaluate quarantined accounts again (after a fix): those that now evaluate are released and scored,
        alerts included; the others stay, with the new error. Exit 1 when some stay."""

        async def main(settings: Settings) -> tuple[list[str], list[str]]:
            async with opened(settings) as db:
                engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="send"))
                return await engine.retry_quarantined(accounts or [], parse_time(as_of, clock=clock))

        released, still = run(main)
        console.print(f"released {len(released)} account(s); {len(still)} still quarantined")
        for account in still:
            typer.echo(f"still quarantined: {account}")
        if still:
            raise typer.Exit(1)
