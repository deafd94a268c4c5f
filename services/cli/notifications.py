"""``kamwatch notifications list|retry``: the notifications the alerter gave up on (failed after the outage
window, or undeliverable), and sending them again once the cause is fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from alerts.repository import queue
from services.cli.common import console, iso, run_with_db
from services.platform.clock import utc_now
from services.platform.database import Database


class UnsentChoice(StrEnum):
    failed = "failed"
    undeliverable = "undeliverable"


async def list_unsent(db: Database, statuses: Sequence[str], limit: int) -> list[queue.UnsentNotification]:
    async with db.transaction() as conn:
        return await queue.unsent(conn, statuses=statuses, limit=limit)


async def retry_unsent(db: Database, at: datetime, ids: Sequence[int] | None, statuses: Sequence[str]) -> list[int]:
    async with db.transaction() as conn:
        return await queue.retry(conn, at, ids=ids, statuses=statuses)


def _statuses(status: UnsentChoice | None) -> tuple[str, ...]:
    return (status.value,) if status is not None else queue.UNSENT_STATUSES


def _json(n: queue.UnsentNotification) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(n).items()}


def register(app: typer.Typer, *, clock: Callable[[], datetime] = utc_now) -> None:
    """Add the ``notifications`` group to ``app``."""
    group = typer.Typer(help="Notifications given up on (failed, undeliverable): list them, send them again.")
    app.add_typer(group, name="notifications")

    @group.command("list")
    def list_command(
        status: Annotated[UnsentChoice | None, typer.Option(help="Only this status (default: both).")] = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON document (a list), for scripts.")] = False,
    ) -> None:
        """Failed and undeliverable notifications, with the last error."""
        rows = run_with_db(lambda db, now: list_unsent(db, _statuses(status), limit), clock=clock)
        if as_json:
            typer.echo(orjson.dumps([_json(n) for n in rows], option=orjson.OPT_INDENT_2).decode())
            return
        table = Table("id", "status", "kind", "channel", "recipient", "attempts", "since", "last error")
        for n in rows:
            since = iso(n.failing_since or n.created_at)
            table.add_row(
                str(n.id), n.status, n.kind, n.channel, n.recipient, str(n.attempts), since, n.last_error or ""
            )
        console.print(table)

    @group.command("retry")
    def retry_command(
        ids: Annotated[
            list[int] | None, typer.Argument(help="Notification ids (default: every one given up on).")
        ] = None,
        status: Annotated[UnsentChoice | None, typer.Option(help="Only this status (default: both).")] = None,
    ) -> None:
        """Queue failed or undeliverable notifications again, due now, with a fresh outage window."""
        retried = run_with_db(lambda db, now: retry_unsent(db, now, ids or None, _statuses(status)), clock=clock)
        console.print(f"{len(retried)} notification(s) queued again" + (f": {retried}" if retried else ""))
