"""What stands when a notification goes out: the accounts as scored now (and which are closed), the alerts as
they are now; messages are rendered from it rather than from what was true when they were queued."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import asyncpg

from alerts.outbox import Standing
from alerts.repository.changes import alert_item, load_stored_snapshots

TREND_DAYS = 7


async def load_standing(
    conn: asyncpg.Connection, account_ids: Collection[str], alert_ids: Collection[int], now: datetime
) -> Standing:
    ids = sorted(account_ids)
    snapshots = await load_stored_snapshots(conn, ids, now - timedelta(days=TREND_DAYS))
    closed = await conn.fetch(
        "SELECT account_id FROM account_state WHERE account_id = ANY($1::text[]) AND status = 'closed' "
        "AND outcome_at <= $2",
        ids,
        now,
    )
    rows = await conn.fetch(
        "SELECT id, dedup_key, rule, severity, title_en, title_fr, fired_at, subject, drivers, state FROM alerts "
        "WHERE id = ANY($1::bigint[])",
        sorted(alert_ids),
    )
    return Standing(
        accounts=snapshots,
        closed=frozenset(r["account_id"] for r in closed),
        alerts={r["id"]: alert_item(r) for r in rows},
    )
