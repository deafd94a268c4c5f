"""What every command shares: the console, logging, and one way to open the settings and the database."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import typer
from rich.console import Console

from services.platform.clock import utc_now
from services.platform.database import Database, cancelled_by_sigterm, exit_on_sigterm
from services.platform.runtime import tune_gc
from services.platform.settings import Settings

warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

console = Console()
T = TypeVar("T")


def configure_logging(level: str = "INFO") -> None:
    """Logs at ``level`` (KAMWATCH_LOG_LEVEL); SIGTERM exits cleanly from here on (see ``exit_on_sigterm``)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Third parties that would log personal data (mail envelopes) or chatter at INFO speak from WARNING.
    for chatty in ("pgserver", "alembic.runtime.migration", "mail.log", "aiosmtplib", "faststream.access"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    exit_on_sigterm()


def run(main: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` with the settings of the environment, logging configured."""
    settings = Settings()
    configure_logging(settings.log_level)
    tune_gc()
    return asyncio.run(cancelled_by_sigterm(main(settings)))


@asynccontextmanager
async def opened(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Database]:
    """The database of ``settings``, migrated first (unless ``migrate`` is false), closed afterwards."""
    db = await Database.open(settings)
    try:
        if migrate:
            await db.migrate()
        yield db
    finally:
        await db.close()


def run_with_db(work: Callable[[Database, datetime], Awaitable[T]], *, clock: Callable[[], datetime] = utc_now) -> T:
    """Run ``work`` on the migrated database of the environment, at the clock's time."""

    async def main(settings: Settings) -> T:
        async with opened(settings) as db:
            return await work(db, clock())

    return asyncio.run(main(Settings()))


def parse_time(value: str | None, *, clock: Callable[[], datetime] = utc_now) -> datetime:
    """An aware time from the command line (a date means its UTC midnight); default now."""
    if value is None:
        return clock()
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def aware(moment: datetime | None) -> datetime | None:
    """A time typed without an offset is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90``, ``45s``, ``30m``, ``1h``, ``7d``, ``2w`` as a positive duration."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r}: expected a positive duration such as 30m, 1h, 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
