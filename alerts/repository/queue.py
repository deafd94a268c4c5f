"""The notification outbox: rows queued with the alert changes, claimed (``FOR UPDATE SKIP LOCKED``) and sent
by the alerter, each attempt recorded; the ones given up on (``failed`` after the outage window,
``undeliverable``) listed and re-sent on demand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from alerts.model import OutboxRow
from alerts.repository import json_text, json_value


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    id: int
    kind: str
    channel: str
    recipient: str
    kam_id: str | None
    alert_ids: tuple[int, ...]
    payload: dict[str, Any]
    send_after: datetime
    attempts: int
    failing_since: datetime | None


UNSENT_STATUSES: tuple[str, ...] = ("failed", "undeliverable")
"""Notifications nothing will send again until someone retries them."""


@dataclass(frozen=True, slots=True)
class UnsentNotification:
    id: int
    kind: str
    channel: str
    recipient: str
    kam_id: str | None
    alert_ids: tuple[int, ...]
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    failing_since: datetime | None


# --- the outbox ----------------------------------------------------------------------------------------------


# Alerters LISTEN on this channel: the transaction that queues a notification due at once wakes them when it
# commits (NOTIFY is delivered at commit, and not at all on rollback), so they need not poll for it.
OUTBOX_CHANNEL = "kamwatch_outbox"


async def enqueue(conn: asyncpg.Connection, rows: Sequence[OutboxRow], at: datetime) -> list[int]:
    """Queue notifications in the caller's transaction; those due by ``at`` wake the alerters when it commits."""
    if not rows:
        return []
    if any(r.send_after <= at for r in rows):
        await conn.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
    records = [
        {
            "kind": r.kind,
            "channel": r.channel,
            "recipient": r.recipient,
            "kam_id": r.kam_id,
            "alert_ids": list(r.alert_ids),
            "payload": r.payload,
            "send_after": r.send_after.isoformat(),
        }
        for r in rows
    ]
    inserted = await conn.fetch(
        """
        INSERT INTO notifications (kind, channel, recipient, kam_id, alert_ids, payload, status, created_at,
                                   send_after)
        SELECT kind, channel, recipient, kam_id, alert_ids, payload, 'pending', $2, send_after
        FROM json_to_recordset($1::json) AS r(kind text, channel text, recipient text, kam_id text,
                                               alert_ids bigint[], payload jsonb, send_after timestamptz)
        RETURNING id
        """,
        json_text(records),
        at,
    )
    return [r["id"] for r in inserted]


_CLAIM_COLUMNS = "id, kind, channel, recipient, kam_id, alert_ids, payload, send_after, attempts, failing_since"


def _claimed(r: asyncpg.Record) -> ClaimedNotification:
    return ClaimedNotification(
        id=r["id"],
        kind=r["kind"],
        channel=r["channel"],
        recipient=r["recipient"],
        kam_id=r["kam_id"],
        alert_ids=tuple(r["alert_ids"]),
        payload=json_value(r["payload"]),
        send_after=r["send_after"],
        attempts=r["attempts"],
        failing_since=r["failing_since"],
    )


async def claim_due(conn: asyncpg.Connection, now: datetime) -> ClaimedNotification | None:
    """Lock the oldest due pending notification until the caller's transaction ends; rows another alerter
    holds are skipped, so two alerters never send the same one, and a crashed alerter's claim rolls back."""
    # A digest part other than the first of its digest is never claimed on its own: whoever holds the first
    # part takes the others with it, so concurrent claims cannot split a digest.
    row = await conn.fetchrow(
        f"""
        SELECT {_CLAIM_COLUMNS} FROM notifications n
        WHERE status = 'pending' AND send_after <= $1
          AND (payload->>'format' IS DISTINCT FROM 'digest' OR NOT EXISTS (
                SELECT 1 FROM notifications o
                WHERE o.status = 'pending' AND o.id < n.id AND o.channel = n.channel AND o.recipient = n.recipient
                  AND o.send_after = n.send_after AND o.kam_id IS NOT DISTINCT FROM n.kam_id
                  AND o.payload->>'format' = 'digest'))
        ORDER BY send_after, id LIMIT 1 FOR UPDATE SKIP LOCKED
        """,
        now,
    )
    return _claimed(row) if row is not None else None


async def claim_digest_parts(conn: asyncpg.Connection, first: ClaimedNotification) -> list[ClaimedNotification]:
    """The other pending parts of the same digest (same recipient, channel and time), locked too."""
    rows = await conn.fetch(
        f"""
        SELECT {_CLAIM_COLUMNS} FROM notifications
        WHERE status = 'pending' AND channel = $1 AND recipient = $2 AND send_after = $3 AND id <> $4
          AND payload->>'format' = 'digest' AND kam_id IS NOT DISTINCT FROM $5
        ORDER BY id FOR UPDATE SKIP LOCKED
        """,
        first.channel,
        first.recipient,
        first.send_after,
        first.id,
        first.kam_id,
    )
    return [_claimed(r) for r in rows]


async def record_attempt(
    conn: asyncpg.Connection,
    ids: Sequence[int],
    at: datetime,
    *,
    error: str | None,
    retry_at: datetime | None,
    undeliverable: bool = False,
) -> list[str]:
    """Record one attempt on these notifications: sent (no ``error``), undeliverable, retried at ``retry_at``, or
    failed (an error and no ``retry_at``). Returns the resulting status of each."""
    await conn.execute(
        "INSERT INTO notification_attempts (notification_id, at, ok, error) "
        "SELECT id, $2, $3, $4 FROM unnest($1::bigint[]) AS t(id)",
        list(ids),
        at,
        error is None,
        error,
    )
    rows = await conn.fetch(
        """
        UPDATE notifications SET
            attempts = attempts + 1,
            last_error = $3::text,
            status = CASE WHEN $3::text IS NULL THEN 'sent'
                          WHEN $5::boolean THEN 'undeliverable'
                          WHEN $4::timestamptz IS NULL THEN 'failed'
                          ELSE 'pending' END,
            sent_at = CASE WHEN $3::text IS NULL THEN $2::timestamptz ELSE NULL END,
            send_after = COALESCE($4::timestamptz, send_after),
            failing_since = CASE WHEN $3::text IS NULL THEN NULL ELSE COALESCE(failing_since, $2::timestamptz) END
        WHERE id = ANY($1::bigint[])
        RETURNING status
        """,
        list(ids),
        at,
        error,
        retry_at,
        undeliverable,
    )
    return [r["status"] for r in rows]


async def retry(
    conn: asyncpg.Connection,
    at: datetime,
    *,
    ids: Sequence[int] | None = None,
    statuses: Sequence[str] = UNSENT_STATUSES,
) -> list[int]:
    """Queue again, due at ``at`` with a fresh outage window, the given-up notifications among ``ids`` (all of
    them when None) whose status is in ``statuses``; returns their ids. A sent one is never sent again."""
    wanted = [s for s in statuses if s in UNSENT_STATUSES]
    rows = await conn.fetch(
        """
        UPDATE notifications SET status = 'pending', send_after = $1, failing_since = NULL, attempts = 0
        WHERE status = ANY($2::text[]) AND ($3::bigint[] IS NULL OR id = ANY($3::bigint[]))
        RETURNING id
        """,
        at,
        wanted,
        list(ids) if ids is not None else None,
    )
    return sorted(r["id"] for r in rows)


async def unsent(
    conn: asyncpg.Connection, *, statuses: Sequence[str] = UNSENT_STATUSES, limit: int = 100
) -> list[UnsentNotification]:
    """The given-up notifications, oldest first."""
    rows = await conn.fetch(
        """
        SELECT id, kind, channel, recipient, kam_id, alert_ids, status, attempts, last_error, created_at, failing_since
        FROM notifications WHERE status = ANY($1::text[]) ORDER BY id LIMIT $2
        """,
        [s for s in statuses if s in UNSENT_STATUSES],
        limit,
    )
    return [
        UnsentNotification(
            id=r["id"],
            kind=r["kind"],
            channel=r["channel"],
            recipient=r["recipient"],
            kam_id=r["kam_id"],
            alert_ids=tuple(r["alert_ids"]),
            status=r["status"],
            attempts=r["attempts"],
            last_error=r["last_error"],
            created_at=r["created_at"],
            failing_since=r["failing_since"],
        )
        for r in rows
    ]


async def unsent_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Given-up notifications by status (every status present, 0 when none)."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM notifications WHERE status = ANY($1::text[]) GROUP BY status",
        list(UNSENT_STATUSES),
    )
    return dict.fromkeys(UNSENT_STATUSES, 0) | {r["status"]: int(r["n"]) for r in rows}


async def outbox_backlog(conn: asyncpg.Connection, now: datetime) -> tuple[int, float]:
    """(pending notifications, age in seconds of the oldest due one)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS pending, min(send_after) FILTER (WHERE send_after <= $1) AS oldest "
        "FROM notifications WHERE status = 'pending'",
        now,
    )
    assert row is not None
    oldest: datetime | None = row["oldest"]
    return row["pending"], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


async def cancel(conn: asyncpg.Connection, ids: Sequence[int], reason: str) -> None:
    """Notifications that must not go out any more (``cancelled``, with why): nothing is left to tell, their
    accounts being closed."""
    await conn.execute(
        "UPDATE notifications SET status = 'cancelled', last_error = $2 WHERE id = ANY($1::bigint[])",
        list(ids),
        reason,
    )
