"""Accounts set aside because evaluating them failed: a thin repository over ``quarantined_accounts``.

An account whose loading, scoring or alerting raises is quarantined (with the error, the evaluation time and
its newest events) so that the drain, the sweep and HTTP ingestion go on with the others; evaluations skip it
until it is released (``kamwatch quarantine retry``), which rescores it and keeps it out only if that works.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson

Stage = Literal["scoring", "alerting"]

_NEWEST_EVENTS = 20
_ERROR_CHARS = 4000


@dataclass(frozen=True, slots=True)
class Quarantined:
    account_id: str
    stage: str
    trigger: str
    as_of: datetime
    error: str
    failures: int
    first_failed_at: datetime
    last_failed_at: datetime
    events: list[dict[str, Any]]


def describe(error: BaseException) -> str:
    """The error's type and message, and where it was raised (the innermost frames), bounded in length."""
    frames = traceback.extract_tb(error.__traceback__)[-3:]
    where = "; ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in frames)
    text = f"{type(error).__name__}: {error}" + (f" (at {where})" if where else "")
    return text.replace("\0", "\\0")[:_ERROR_CHARS]


_QUARANTINE_SQL = """
INSERT INTO quarantined_accounts (account_id, stage, trigger, as_of, error, events)
SELECT $1, $2, $3, $4, $5, coalesce(jsonb_agg(jsonb_build_object(
           'source', source, 'id', event_id, 'type', type, 'time', event_time) ORDER BY event_time DESC), '[]')
FROM (SELECT source, event_id, type, event_time FROM raw_events WHERE subject = $1
      ORDER BY event_time DESC LIMIT $6) AS newest
ON CONFLICT (account_id) DO UPDATE SET
    stage = excluded.stage, trigger = excluded.trigger, as_of = excluded.as_of, error = excluded.error,
    events = excluded.events, failures = quarantined_accounts.failures + 1, last_failed_at = clock_timestamp()
"""


async def quarantine(
    conn: asyncpg.Connection, account_id: str, *, stage: Stage, trigger: str, as_of: datetime, error: BaseException
) -> None:
    """Set ``account_id`` aside (or record that it failed again), inside the caller's transaction."""
    await conn.execute(_QUARANTINE_SQL, account_id, stage, trigger, as_of, describe(error), _NEWEST_EVENTS)


async def quarantined_among(conn: asyncpg.Connection, account_ids: Sequence[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT account_id FROM quarantined_accounts WHERE account_id = ANY($1::text[])", list(account_ids)
    )
    return {row["account_id"] for row in rows}


async def quarantined_count(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM quarantined_accounts")
    return count


async def list_quarantined(conn: asyncpg.Connection, account_ids: Sequence[str] = ()) -> list[Quarantined]:
    rows = await conn.fetch(
        "SELECT * FROM quarantined_accounts WHERE cardinality($1::text[]) = 0 OR account_id = ANY($1::text[]) "
        "ORDER BY first_failed_at, account_id",
        list(account_ids),
    )
    return [Quarantined(**{**dict(row), "events": _json(row["events"])}) for row in rows]


def _json(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    # SQLAlchemy's asyncpg connections decode jsonb themselves; a bare asyncpg connection gives text
    return orjson.loads(value) if isinstance(value, str) else value


async def release(conn: asyncpg.Connection, account_ids: Sequence[str]) -> list[str]:
    """Take these accounts out of quarantine; returns those that were in it."""
    rows = await conn.fetch(
        "DELETE FROM quarantined_accounts WHERE account_id = ANY($1::text[]) RETURNING account_id", list(account_ids)
    )
    return sorted(row["account_id"] for row in rows)
