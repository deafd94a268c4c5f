"""Dead letters at rest: listing, reading and marking the rejected inputs kept with their raw bytes; for Kafka
ones, their headers and key, and their publication to the DLQ topic (a relay claims, then marks, them)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ingestion.parsing import Headers

_COLUMNS = "id, received_at, ingress, origin, reason, field, raw, replayed_at, headers, record_key"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: datetime
    ingress: str
    origin: str | None
    reason: str
    field: str | None
    raw: bytes
    replayed_at: datetime | None
    headers: Headers = ()
    record_key: bytes | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "ingress": self.ingress,
            "origin": self.origin,
            "reason": self.reason,
            "field": self.field,
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "headers": _headers_as_json(self.headers),
            "key": self.record_key.decode("utf-8", errors="replace") if self.record_key is not None else None,
            "raw": self.raw.decode("utf-8", errors="replace"),
        }


def headers_json(headers: Headers) -> str | None:
    """Headers as stored: ``[[name, value], ...]``, each value its text when it is UTF-8 (without NUL, which
    jsonb cannot hold), else ``{"base64": ...}``; NULL for none."""
    if not headers:
        return None
    return json.dumps(_headers_as_json(headers))


def _headers_as_json(headers: Headers) -> list[list[Any]]:
    return [[name.replace("\0", "\ufffd"), _header_value(value)] for name, value in headers]


def _header_value(value: bytes) -> str | dict[str, str]:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\0" in text:
        return {"base64": base64.b64encode(value).decode("ascii")}
    return text


def _headers_from_json(stored: Any) -> Headers:
    """Back from ``headers_json``; the driver may hand the jsonb over as text or already decoded."""
    if stored is None:
        return ()
    pairs = json.loads(stored) if isinstance(stored, str | bytes) else stored
    return tuple(
        (name, base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode("utf-8"))
        for name, value in pairs
    )


def _letter(row: Mapping[str, Any]) -> DeadLetter:
    values = dict(row)
    values["raw"] = bytes(values["raw"])
    values["headers"] = _headers_from_json(values["headers"])
    if values["record_key"] is not None:
        values["record_key"] = bytes(values["record_key"])
    return DeadLetter(**values)


async def recent_dead_letters(conn: asyncpg.Connection, limit: int) -> list[DeadLetter]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM dead_letters ORDER BY id DESC LIMIT $1", limit)
    return [_letter(r) for r in rows]


async def dead_letter(conn: asyncpg.Connection, dead_letter_id: int) -> DeadLetter | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1", dead_letter_id)
    return _letter(row) if row is not None else None


async def unreplayed_dead_letters(conn: asyncpg.Connection, ids: Sequence[int] = ()) -> list[DeadLetter]:
    """Dead letters not replayed yet (only ``ids`` when given), oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE replayed_at IS NULL"
        " AND (cardinality($1::bigint[]) = 0 OR id = ANY($1::bigint[])) ORDER BY id",
        list(ids),
    )
    return [_letter(r) for r in rows]


async def mark_replayed(conn: asyncpg.Connection, ids: Sequence[int], at: datetime) -> None:
    await conn.execute("UPDATE dead_letters SET replayed_at = $2 WHERE id = ANY($1::bigint[])", list(ids), at)


# --- publication to the DLQ topic (Kafka dead letters) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimedLetter:
    letter: DeadLetter
    maybe_published_since: datetime | None
    """Set when an earlier relay handed it to its producer without hearing back: it may be on the topic, from
    that time on. None: it is certainly not."""


_CLAIM_SQL = f"""
WITH due AS (
    SELECT id, publishing_since FROM dead_letters
    WHERE ingress = 'kafka' AND published_at IS NULL AND (claimed_until IS NULL OR claimed_until < clock_timestamp())
    ORDER BY id LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE dead_letters d
SET claimed_until = clock_timestamp() + make_interval(secs => $2),
    publishing_since = coalesce(d.publishing_since, clock_timestamp())
FROM due WHERE d.id = due.id
RETURNING {", ".join(f"d.{column.strip()}" for column in _COLUMNS.split(","))}, due.publishing_since AS earlier
"""


async def claim_unpublished(conn: asyncpg.Connection, *, limit: int, lease_s: float) -> list[ClaimedLetter]:
    """Claim for ``lease_s`` Kafka dead letters not yet on the DLQ topic, oldest first, that no relay holds. The
    caller commits the claim before it sends them: from then on they may be on the topic, until it says."""
    rows = await conn.fetch(_CLAIM_SQL, limit, lease_s)
    claimed = []
    for row in sorted(rows, key=lambda r: r["id"]):
        values = dict(row)
        earlier = values.pop("earlier")
        claimed.append(ClaimedLetter(_letter(values), earlier))
    return claimed


async def settle_claims(
    conn: asyncpg.Connection,
    *,
    published: Sequence[int] = (),
    not_sent: Sequence[int] = (),
    unknown: Sequence[int] = (),
    at: datetime,
) -> None:
    """End a relay's claims: ``published`` are on the topic; ``not_sent`` are certainly not (they go to the next
    relay as new); ``unknown`` may be (handed to a producer that is done with them, without hearing back): the
    next relay looks for them on the topic before it sends them again."""
    await conn.execute(
        """
        UPDATE dead_letters SET
            published_at = CASE WHEN id = ANY($1::bigint[]) THEN $4::timestamptz END,
            publishing_since = CASE WHEN id = ANY($2::bigint[]) THEN NULL ELSE publishing_since END,
            claimed_until = NULL
        WHERE (id = ANY($1::bigint[]) OR id = ANY($2::bigint[]) OR id = ANY($3::bigint[])) AND published_at IS NULL
        """,
        list(published),
        list(not_sent),
        list(unknown),
        at,
    )


async def unpublished_count(conn: asyncpg.Connection) -> int:
    query = "SELECT count(*) FROM dead_letters WHERE ingress = 'kafka' AND published_at IS NULL"
    return int(await conn.fetchval(query))
