"""Monthly partitions of ``raw_events``: created on demand before a batch needs them, dropped by retention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import asyncpg

_LOCK_KEY = 7_302_019_001  # serialises partition DDL between workers


def partition_name(month: date) -> str:
    return f"raw_events_{month:%Y_%m}"


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


async def ensure_partitions(conn: asyncpg.Connection, months: Iterable[date]) -> None:
    """Create the missing month partitions; run in its own short transaction (DDL locks the parent)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        for month in sorted(set(months)):
            lower, upper = f"{month.isoformat()} 00:00:00+00", f"{next_month(month).isoformat()} 00:00:00+00"
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(month)} PARTITION OF raw_events "
                f"FOR VALUES FROM ('{lower}') TO ('{upper}')"
            )


async def existing_partitions(conn: asyncpg.Connection) -> set[date]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'raw_events'::regclass"
    )
    months = set()
    for row in rows:
        year, month = row["relname"].removeprefix("raw_events_").split("_")
        months.add(date(int(year), int(month), 1))
    return months


async def drop_partitions_before(conn: asyncpg.Connection, cutoff: date) -> list[str]:
    """Drop whole months of raw events older than ``cutoff`` (retention); returns the dropped tables."""
    dropped = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        for month in sorted(await existing_partitions(conn)):
            if next_month(month) <= cutoff:
                await conn.execute(f"DROP TABLE {partition_name(month)}")
                dropped.append(partition_name(month))
    return dropped
