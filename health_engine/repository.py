"""The health engine's database adapter: load scoring inputs, save scores and history, drain the queue.

Thin functions over an asyncpg connection owned by the caller (inside its transaction; nothing here
commits). Only the windows the scorer looks at are loaded, so a sweep's cost does not grow with history.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import orjson

from health_engine.config import Windows
from health_engine.model import (
    AccountProfile,
    AccountSignals,
    Contact,
    Engagement,
    HealthScore,
    Invoice,
    Ticket,
    UsageDay,
)
from schemas import vocabulary
from schemas.tables import account_shard_sql

_DECISION_ROLES = ["executive_sponsor", "decision_maker"]


_PROFILES_SQL = """
SELECT account_id, tier, arr, renewal_date, industry FROM accounts WHERE account_id = ANY($1::text[])
"""

# Per account, the window's days (as offsets from its first day, in arrays: far cheaper to decode than a row
# per day, measured), plus the last active day before the window (how long it has been silent). Both read the
# primary key only (it includes quantity and active_users): an index-only scan once the pages are vacuumed.
_USAGE_SQL = """
SELECT a.account_id, w.offsets, w.quantities, w.users, last.day, last.quantity::float8, last.active_users
FROM unnest($1::text[]) AS a(account_id)
CROSS JOIN LATERAL (
    SELECT array_agg(u.day - $2) AS offsets, array_agg(u.quantity::float8) AS quantities,
           array_agg(u.active_users) AS users
    FROM usage_daily u WHERE u.account_id = a.account_id AND u.day BETWEEN $2 AND $3
) AS w
LEFT JOIN LATERAL (
    SELECT day, quantity, active_users FROM usage_daily u
    WHERE u.account_id = a.account_id AND u.day < $2 AND (u.quantity > 0 OR u.active_users > 0)
    ORDER BY u.day DESC LIMIT 1
) AS last ON true
"""

_TICKETS_SQL = """
SELECT account_id, ticket_id, status, priority, opened_at, resolved_at, escalations, reopenings, csat,
       last_event_time
FROM tickets
WHERE account_id = ANY($1::text[])
  AND (status NOT IN ('resolved', 'closed') OR last_event_time >= $2 OR coalesce(opened_at, first_seen_at) >= $2)
"""

_INVOICES_SQL = """
SELECT account_id, invoice_id, status, amount, due_date, paid_at, failures, last_event_time, issued_at
FROM invoices
WHERE account_id = ANY($1::text[]) AND (status IN ('issued', 'failed') OR last_event_time >= $2 OR due_date >= $3)
"""

# A decision-level contact counts as engaged from the first meeting or review attended after they arrived.
_CONTACTS_SQL = """
SELECT c.account_id, c.contact_id, c.role, c.active, c.added_at, c.left_at,
       CASE WHEN c.role = ANY($2::text[]) AND c.added_at IS NOT NULL THEN (
           SELECT min(e.event_time) FROM engagements e
           WHERE e.account_id = c.account_id AND e.event_time >= c.added_at
             AND e.kind IN ('meeting', 'business_review') AND e.outcome = 'attended'
       ) END AS last_engaged_at,
       c.name
FROM contacts c
WHERE c.account_id = ANY($1::text[])
"""

# The window, plus the last business review attended before it (time since the last review).
_ENGAGEMENTS_SQL = """
SELECT account_id, event_time, kind, outcome, nps_score FROM engagements
WHERE account_id = ANY($1::text[]) AND event_time >= $2 AND event_time <= $3
UNION ALL
SELECT a.account_id, last.event_time, last.kind, last.outcome, last.nps_score
FROM unnest($1::text[]) AS a(account_id)
CROSS JOIN LATERAL (
    SELECT event_time, kind, outcome, nps_score FROM engagements e
    WHERE e.account_id = a.account_id AND e.event_time < $2 AND e.kind = 'business_review'
      AND e.outcome = 'attended'
    ORDER BY e.event_time DESC LIMIT 1
) AS last
"""


async def load_signals(
    conn: asyncpg.Connection, account_ids: Sequence[str], as_of: datetime, windows: Windows
) -> dict[str, AccountSignals]:
    """Scoring inputs of the accounts that have a CRM profile (the others cannot be weighted yet)."""
    ids = sorted(set(account_ids))
    profiles = {row["account_id"]: AccountProfile(*row) for row in await conn.fetch(_PROFILES_SQL, ids)}
    if not profiles:
        return {}
    ids = sorted(profiles)
    today = as_of.astimezone(UTC).date()
    first_day = today - timedelta(days=windows.usage_days)
    window_days = [first_day + timedelta(days=n) for n in range(windows.usage_days + 1)]
    usage: dict[str, list[UsageDay]] = defaultdict(list)
    for account_id, offsets, quantities, users, last_day, last_quantity, last_users in await conn.fetch(
        _USAGE_SQL, ids, first_day, today
    ):
        if offsets:
            usage[account_id] = list(zip(map(window_days.__getitem__, offsets), quantities, users, strict=True))
        if last_day is not None:
            usage[account_id].append((last_day, last_quantity, last_users))
    tickets: dict[str, list[Ticket]] = defaultdict(list)
    # Columns are selected in the dataclasses' field order: rows unpack straight into them.
    for row in await conn.fetch(_TICKETS_SQL, ids, as_of - timedelta(days=windows.ticket_days)):
        tickets[row[0]].append(Ticket(*row[1:]))
    invoices: dict[str, list[Invoice]] = defaultdict(list)
    since = as_of - timedelta(days=windows.invoice_days)
    for row in await conn.fetch(_INVOICES_SQL, ids, since, since.date()):
        invoices[row[0]].append(Invoice(*row[1:]))
    contacts: dict[str, list[Contact]] = defaultdict(list)
    for row in await conn.fetch(_CONTACTS_SQL, ids, _DECISION_ROLES):
        contacts[row[0]].append(Contact(*row[1:]))
    engagements: dict[str, list[Engagement]] = defaultdict(list)
    for row in await conn.fetch(_ENGAGEMENTS_SQL, ids, as_of - timedelta(days=windows.engagement_days), as_of):
        engagements[row[0]].append(Engagement(*row[1:]))
    return {
        account_id: AccountSignals(
            profile=profile,
            usage=tuple(usage.get(account_id, ())),
            tickets=tuple(tickets.get(account_id, ())),
            invoices=tuple(invoices.get(account_id, ())),
            contacts=tuple(contacts.get(account_id, ())),
            engagements=tuple(engagements.get(account_id, ())),
        )
        for account_id, profile in profiles.items()
    }


# --- scores --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredHealth:
    """What is kept of the current score to decide whether a new one deserves a history row."""

    as_of: datetime
    risk: float
    level: str
    components: Mapping[str, float]
    fingerprint: bytes | None = None


def component_risks(score: HealthScore) -> dict[str, float]:
    return {c.name: c.risk for c in score.components}


def needs_history(previous: StoredHealth | None, score: HealthScore) -> bool:
    """A history row when the score changed, and at least one per UTC day the account is scored."""
    if previous is None:
        return True
    if score.as_of < previous.as_of:
        return False  # an older evaluation arriving late: the current row already says more
    return (
        previous.as_of.astimezone(UTC).date() != score.as_of.astimezone(UTC).date()
        or round(previous.risk, 1) != score.risk
        or previous.level != score.level
        or {k: round(v, 1) for k, v in previous.components.items()} != component_risks(score)
    )


def driver_json(score: HealthScore) -> list[dict[str, Any]]:
    return [vocabulary.driver_json(d) for d in score.drivers]


_STORED_SQL = """
SELECT account_id, as_of, risk::float8 AS risk, level, components, drivers, config_version FROM account_health
WHERE account_id = $1
"""


def _decoded(raw: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return orjson.loads(raw) if isinstance(raw, str) else raw


async def stored_health(conn: asyncpg.Connection, account_id: str) -> dict[str, Any] | None:
    """The account's current stored score as JSON-ready values (components and drivers as saved)."""
    row = await conn.fetchrow(_STORED_SQL, account_id)
    if row is None:
        return None
    return {
        "account_id": row["account_id"],
        "as_of": row["as_of"].isoformat(),
        "risk": row["risk"],
        "level": row["level"],
        "components": _decoded(row["components"]),
        "drivers": _decoded(row["drivers"]),
        "config_version": row["config_version"],
    }


_CURRENT_SQL = """
SELECT account_id, as_of, risk::float8 AS risk, level, components, fingerprint FROM account_health
WHERE account_id = ANY($1::text[])
"""

# A score older than the stored one never replaces it (a slow evaluation finishing after a newer one).
_UPSERT_HEALTH_SQL = """
INSERT INTO account_health AS h
    (account_id, as_of, risk, level, level_since, components, drivers, config_version, fingerprint)
SELECT account_id, as_of, risk, level, as_of, components, drivers, config_version, decode(fingerprint, 'hex')
FROM json_to_recordset($1::json) AS r(account_id text, as_of timestamptz, risk numeric, level text,
                                      components jsonb, drivers jsonb, config_version text, fingerprint text)
ORDER BY account_id
ON CONFLICT (account_id) DO UPDATE SET
    as_of = excluded.as_of,
    risk = excluded.risk,
    level = excluded.level,
    level_since = CASE WHEN h.level = excluded.level THEN h.level_since ELSE excluded.as_of END,
    components = excluded.components,
    drivers = excluded.drivers,
    config_version = excluded.config_version,
    fingerprint = excluded.fingerprint
WHERE excluded.as_of >= h.as_of
"""

# The same score as stored, evaluated again later: only its time moves.
_TOUCH_HEALTH_SQL = """
UPDATE account_health AS h SET as_of = u.as_of
FROM unnest($1::text[], $2::timestamptz[]) AS u(account_id, as_of)
WHERE h.account_id = u.account_id AND h.as_of < u.as_of
"""

_INSERT_HISTORY_SQL = """
INSERT INTO account_health_history AS h
    (account_id, as_of, risk, level, components, driver_codes, config_version, trigger)
SELECT account_id, as_of, risk, level, components, driver_codes, config_version, trigger
FROM json_to_recordset($1::json) AS r(account_id text, as_of timestamptz, risk numeric, level text,
                                      components jsonb, driver_codes text[], config_version text, trigger text)
ORDER BY account_id
ON CONFLICT (account_id, as_of) DO UPDATE SET
    risk = excluded.risk, level = excluded.level, components = excluded.components,
    driver_codes = excluded.driver_codes, config_version = excluded.config_version
"""


async def current_health(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, StoredHealth]:
    return {
        row["account_id"]: StoredHealth(
            row["as_of"], row["risk"], row["level"], _component_map(row["components"]), row["fingerprint"]
        )
        for row in await conn.fetch(_CURRENT_SQL, list(account_ids))
    }


def _component_map(raw: str | list[dict[str, Any]]) -> dict[str, float]:
    items = orjson.loads(raw) if isinstance(raw, str) else raw
    return {item["name"]: float(item["risk"]) for item in items}


async def save_scores(conn: asyncpg.Connection, scores: Iterable[HealthScore], *, trigger: str) -> int:
    """Upsert the current health and append history where it changed; returns the history rows written.

    A score identical to the stored one (same fingerprint) only moves the stored ``as_of``: a sweep every
    15 minutes then rewrites next to nothing."""
    scores = list(scores)
    if not scores:
        return 0
    previous = await current_health(conn, [s.account_id for s in scores])
    health_rows, history_rows, unchanged = [], [], []
    for score in scores:
        stored = previous.get(score.account_id)
        components = [{"name": c.name, "risk": c.risk, "weight": c.weight} for c in score.components]
        drivers = driver_json(score)
        fingerprint = hashlib.blake2b(
            orjson.dumps((score.risk, score.level, components, drivers, score.config_version)), digest_size=16
        ).digest()
        if stored is not None and stored.fingerprint == fingerprint:
            unchanged.append(score)
        else:
            health_rows.append(
                {
                    "account_id": score.account_id,
                    "as_of": score.as_of,
                    "risk": score.risk,
                    "level": score.level,
                    "components": components,
                    "drivers": drivers,
                    "config_version": score.config_version,
                    "fingerprint": fingerprint.hex(),
                }
            )
        if needs_history(stored, score):
            history_rows.append(
                {
                    "account_id": score.account_id,
                    "as_of": score.as_of,
                    "risk": score.risk,
                    "level": score.level,
                    "components": component_risks(score),
                    "driver_codes": [d.code for d in score.drivers],
                    "config_version": score.config_version,
                    "trigger": trigger,
                }
            )
    if health_rows:
        await conn.execute(_UPSERT_HEALTH_SQL, _json(health_rows))
    if unchanged:
        await conn.execute(_TOUCH_HEALTH_SQL, [s.account_id for s in unchanged], [s.as_of for s in unchanged])
    if history_rows:
        await conn.execute(_INSERT_HISTORY_SQL, _json(history_rows))
    return len(history_rows)


def _json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows).decode()


# --- what to score --------------------------------------------------------------------------------------------

# Queued shards, the longest-waiting first. A shard is one rescorer's until its transaction ends (advisory lock
# in a key space of its own: two int4 keys), so rescorers never score the same account at the same time.
_QUEUED_SHARDS_SQL = "SELECT shard FROM rescore_queue WHERE id <= $1 GROUP BY shard ORDER BY min(id)"
_TRY_LOCK_RESCORE_SHARD_SQL = "SELECT pg_try_advisory_xact_lock($1, $2)"
_TAKE_SHARD_SQL = "DELETE FROM rescore_queue WHERE shard = $1 AND id <= $2 RETURNING account_ids"
_RESCORE_LOCK_CLASS = 0x6B77  # "kw"

_QUEUE_STATE_SQL = """
SELECT max(id), extract(epoch FROM clock_timestamp() - min(queued_at))::float8,
       extract(epoch FROM clock_timestamp() - max(queued_at))::float8
FROM rescore_queue
"""


@dataclass(frozen=True, slots=True)
class QueueState:
    last_id: int
    """Newest queued batch: a drain takes what was queued up to it, not what keeps arriving meanwhile."""
    oldest_s: float
    newest_s: float
    """How long ago (wall clock) the oldest and the newest batch were queued."""


async def rescore_queue_state(conn: asyncpg.Connection) -> QueueState | None:
    last_id, oldest_s, newest_s = await conn.fetchrow(_QUEUE_STATE_SQL)
    return None if last_id is None else QueueState(last_id, oldest_s, newest_s)


async def drain_rescore_queue(conn: asyncpg.Connection, up_to_id: int) -> list[str]:
    """Claim a queued shard no other rescorer holds and remove its batches up to ``up_to_id``, inside the caller's
    transaction (they come back if it fails); its touched accounts, once each. Empty when nothing is queued or
    all is taken."""
    for (shard,) in await conn.fetch(_QUEUED_SHARDS_SQL, up_to_id):
        if await conn.fetchval(_TRY_LOCK_RESCORE_SHARD_SQL, _RESCORE_LOCK_CLASS, shard):
            touched: set[str] = set()
            for (account_ids,) in await conn.fetch(_TAKE_SHARD_SQL, shard, up_to_id):
                touched.update(account_ids)
            return sorted(touched)
    return []


# Shards by a stable hash of the id (account_shard_sql), so every worker agrees on which accounts a shard holds.
_SHARD_SQL = f"""
SELECT account_id FROM accounts
WHERE {account_shard_sql("account_id", "$1")} = $2 AND account_id > $3
ORDER BY account_id LIMIT $4
"""


async def shard_accounts(conn: asyncpg.Connection, *, shards: int, shard: int, after: str, limit: int) -> list[str]:
    """One page of a shard's accounts, in id order after ``after``."""
    return [row["account_id"] for row in await conn.fetch(_SHARD_SQL, shards, shard, after, limit)]


_CLAIM_SHARD_SQL = """
INSERT INTO sweep_runs (as_of, shard, accounts, worker) VALUES ($1, $2, 0, $3)
ON CONFLICT DO NOTHING RETURNING shard
"""

# Transaction-scoped and never waited for: a shard another worker is sweeping right now is skipped at once.
_TRY_SHARD_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtextextended('kamwatch.sweep:' || $1::text, $2))"


ShardClaim = Literal["taken", "done", "busy"]


async def claim_shard(conn: asyncpg.Connection, tick: datetime, shard: int, worker: str, *, wait: bool) -> ShardClaim:
    """Take one shard of the sweep at ``tick`` for this transaction ("taken"), unless another worker has
    swept it ("done") or, without ``wait``, is sweeping it right now ("busy": skipped at once, so workers
    going through the same shards do not queue behind each other). With ``wait``, a claim held by a running
    transaction blocks until it ends: a worker that died mid-shard rolled its claim back, so the shard is
    taken over rather than missed."""
    if not wait and not await conn.fetchval(_TRY_SHARD_LOCK_SQL, tick.isoformat(), shard):
        return "busy"
    return "taken" if await conn.fetchval(_CLAIM_SHARD_SQL, tick, shard, worker) is not None else "done"


async def finish_shard(conn: asyncpg.Connection, tick: datetime, shard: int, accounts: int) -> None:
    await conn.execute("UPDATE sweep_runs SET accounts = $3 WHERE as_of = $1 AND shard = $2", tick, shard, accounts)


_CLOSED_SQL = """
SELECT account_id, outcome_at, outcome_reason FROM account_state
WHERE account_id = ANY($1::text[]) AND status = 'closed' AND outcome_at <= $2
"""


async def closed_accounts(
    conn: asyncpg.Connection, account_ids: Sequence[str], as_of: datetime
) -> dict[str, vocabulary.Closure]:
    """The accounts among ``account_ids`` closed (lost) by ``as_of``: they are no longer scored."""
    if not account_ids:
        return {}
    rows = await conn.fetch(_CLOSED_SQL, list(account_ids), as_of)
    return {r["account_id"]: vocabulary.Closure(r["account_id"], r["outcome_at"], r["outcome_reason"]) for r in rows}
