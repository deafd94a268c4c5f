"""Dead letters at rest: listing, reading and marking the rejected inputs kept with their raw bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_COLUMNS = "id, received_at, ingress, origin, reason, field, raw, replayed_at"


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

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "ingress": self.ingress,
            "origin": self.origin,
            "reason": self.reason,
            "field": self.field,
            "replayed_at": self.replayed_at.isoformat() if self.replayed_at else None,
            "raw": self.raw.decode("utf-8", errors="replace"),
        }


def _letter(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(**{**dict(row), "raw": bytes(row["raw"])})


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
