"""Database access at the service edge: the embedded PostgreSQL, the engine, the unit of work, migrations."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ingestion.partitions import ensure_partitions
from services.platform.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_KEY = 7_302_019_000


def sqlalchemy_url(url: str) -> str:
    """Normalise any PostgreSQL URL to the asyncpg dialect."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        raise ValueError(f"KAMWATCH_DATABASE_URL must be a PostgreSQL URL, got {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def start_embedded(pgdata: Path) -> tuple[str, Any]:
    """Start (or join) the pgserver PostgreSQL on ``pgdata``; it stops when its last user process exits.

    pgserver counts its users in a pid list in ``pgdata`` and the last one to exit stops the server (an atexit
    hook: every long-running command turns SIGTERM into a normal exit, see ``exit_on_sigterm``). A user killed
    outright (SIGKILL) stays on that list; at start, users that are gone are struck off, so that a server they
    left running is joined here, and stopped when this process, its last user, exits."""
    from pgserver import get_server  # type: ignore[attr-defined]  # only needed when embedded

    pgdata.mkdir(parents=True, exist_ok=True)
    forget_dead_users(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    uri: str = server.get_uri()
    return sqlalchemy_url(uri), server


def forget_dead_users(pgdata: Path) -> list[int]:
    """Strike off pgserver's user list the processes that are gone (or whose pid now names a process started
    after the list was last written, a pid reused); returns them."""
    from pgserver.postgres_server import PostgresServer
    from pgserver.utils import DiskList

    users = pgdata.resolve() / ".handle_pids.json"
    if not users.exists():
        return []
    with PostgresServer._lock:
        written = users.stat().st_mtime
        listed = DiskList(users)
        pids = listed.get()
        dead = [pid for pid in pids if not _alive_since(pid, written)]
        if dead:
            listed.put([pid for pid in pids if pid not in dead])
            log.warning("embedded PostgreSQL: users %s exited without leaving; the server is joined", dead)
    return dead


def _alive_since(pid: int, written: float) -> bool:
    try:
        return psutil.Process(pid).create_time() <= written + 1.0
    except psutil.Error:
        return False


def exit_on_sigterm() -> None:
    """SIGTERM ends the process like ``sys.exit``: clean-up (closing the pool, stopping the embedded
    PostgreSQL when this is its last user) runs, as it does on Ctrl-C. Servers that handle SIGTERM themselves
    (uvicorn, FastStream) do so while they run, then re-raise it: it lands here."""
    # Python lets only the main thread install handlers; a command run from another thread (a test, a notebook)
    # keeps the process's own.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


async def cancelled_by_sigterm(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; SIGTERM cancels it, and once its clean-up has run the process exits as ``exit_on_sigterm``
    says. On an event loop the signal must land between two steps of the loop: raised at an arbitrary bytecode,
    it can fall inside a driver's protocol code (asyncpg's) and leave the process hung or crashed."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def cancel() -> None:
        received.append(signal.SIGTERM)
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, cancel)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or no signals on this loop
        return await work
    try:
        return await work
    except asyncio.CancelledError:
        if received:
            raise SystemExit(128 + signal.SIGTERM) from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)  # back to the default action: restore ours
        exit_on_sigterm()


@dataclass
class Wakeup:
    """Set by a notification; ``lost`` once the listening connection is gone (listen again)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    lost: bool = False

    async def wait(self, timeout_s: float) -> None:
        """Until a notification came (since the last ``clear``) or ``timeout_s`` passed."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout_s)

    def clear(self) -> None:
        self.event.clear()


@dataclass
class Database:
    """The engine for one process, plus the embedded server handle when there is one."""

    engine: AsyncEngine
    url: str
    embedded: Any = None
    _partitions: set[date] = field(default_factory=set)

    @classmethod
    async def open(cls, settings: Settings) -> Database:
        embedded = None
        if settings.database_url:
            url = sqlalchemy_url(settings.database_url)
        else:
            url, embedded = await asyncio.to_thread(start_embedded, settings.pgdata)
        engine = create_async_engine(url, pool_size=settings.db_pool_size, max_overflow=5, pool_pre_ping=True)
        return cls(engine=engine, url=url, embedded=embedded)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: committed when the block exits normally, rolled back on error."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on the driver (asyncpg) connection, as the repositories take it: committed when
        the block exits normally, rolled back on error."""
        async with self.engine.begin() as conn:
            yield await driver_connection(conn)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[asyncpg.Connection]:
        """The driver (asyncpg) connection outside any transaction (DDL such as partitions, VACUUM)."""
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            raw = await conn.get_raw_connection()
            driver: asyncpg.Connection = raw.driver_connection
            yield driver

    @asynccontextmanager
    async def listening(self, channel: str) -> AsyncIterator[Wakeup]:
        """A connection held for the block, LISTENing on ``channel``: the wakeup is set by every NOTIFY on it."""
        wakeup = Wakeup()

        def notified(*_: object) -> None:
            wakeup.event.set()

        def lost(*_: object) -> None:
            wakeup.lost = True
            wakeup.event.set()

        async with self.autocommit() as conn:
            await conn.add_listener(channel, notified)
            conn.add_termination_listener(lost)
            try:
                yield wakeup
            finally:
                conn.remove_termination_listener(lost)
                if not conn.is_closed():
                    await conn.remove_listener(channel, notified)

    async def ping(self) -> bool:
        """Whether the database answers (readiness)."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure means not ready
            return False
        return True

    async def ensure_partitions(self, months: Iterable[date]) -> None:
        missing = set(months) - self._partitions
        if not missing:
            return
        async with self.autocommit() as conn:
            await ensure_partitions(conn, missing)
        self._partitions |= missing

    async def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision (idempotent; concurrent callers wait)."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            try:
                await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                await conn.commit()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def driver_connection(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, inside its transaction (hot-path COPY and array upserts)."""
    # SQLAlchemy sends BEGIN lazily, on the first statement: make sure it has, so that what we run
    # through the driver belongs to the unit of work.
    await conn.exec_driver_sql("SELECT 1")
    raw = await conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver
