"""Test databases on the shared server: clones of the migrated template, and state snapshots to compare."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import make_url, text

from services.platform.database import Database

# One template per pytest-xdist worker: each creates its own at start, on the one shared server.
TEMPLATE = f"kamwatch_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
_counter = itertools.count()

# Everything ingestion derives, minus arrival bookkeeping (received_at, generated ids).
STATE_QUERIES = {
    "event_keys": "SELECT * FROM event_keys ORDER BY 1, 2",
    "raw_events": "SELECT event_time, source, event_id, type, subject, payload FROM raw_events ORDER BY 2, 3",
    "usage_daily": "SELECT * FROM usage_daily ORDER BY 1, 2, 3",
    "tickets": "SELECT * FROM tickets ORDER BY 1, 2",
    "invoices": "SELECT * FROM invoices ORDER BY 1, 2",
    "contacts": "SELECT * FROM contacts ORDER BY 1, 2",
    "engagements": "SELECT * FROM engagements ORDER BY 1, 2, 3, 4",
    "accounts": "SELECT * FROM accounts ORDER BY 1",
    "kams": "SELECT * FROM kams ORDER BY 1",
    "outcomes": "SELECT * FROM outcomes ORDER BY 1, 2, 3, 4",
    "dead_letters": "SELECT ingress, origin, reason, field, raw FROM dead_letters ORDER BY 1, 2, 3",
    "touched_accounts": "SELECT DISTINCT unnest(account_ids) FROM rescore_queue ORDER BY 1",
}


def admin_dsn(server_url: str, database: str = "postgres") -> str:
    """A libpq-style DSN for asyncpg, pointing at ``database`` on the server of ``server_url``."""
    return make_url(server_url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def database_url(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


async def _admin(server_url: str, statement: str) -> None:
    admin = await asyncpg.connect(admin_dsn(server_url))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@asynccontextmanager
async def cloned_database(server_url: str) -> AsyncIterator[str]:
    """A fresh migrated database (a clone of the template); its URL, dropped on exit."""
    name = f"kamwatch_test_{os.getpid()}_{next(_counter)}"
    await _admin(server_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield database_url(server_url, name)
    finally:
        await _admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def create_template(server_url: str) -> None:
    from services.platform.settings import Settings

    await _admin(server_url, f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
    await _admin(server_url, f"CREATE DATABASE {TEMPLATE}")
    db = await Database.open(Settings(database_url=database_url(server_url, TEMPLATE)))
    try:
        await db.migrate()
    finally:
        await db.close()


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every table ingestion writes, in a canonical order, for equality checks between runs."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    async with db.unit_of_work() as conn:
        for name, query in STATE_QUERIES.items():
            state[name] = [tuple(row) for row in await conn.execute(text(query))]
    return state
