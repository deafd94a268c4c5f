"""What an evaluation reads (accounts, health, open alerts, KAMs, what was sent) and writes (alerts opened,
changed, clearing, resolved; deliveries; cleared notes; escalations; ended snoozes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from alerts.messages import AlertItem
from alerts.model import AccountSnapshot, DeliveryUpdate, Kam, OpenAlert
from alerts.policy import ClearedNote
from alerts.reconcile import Changes, Clearing, Opened, Resolved, Returned, SeverityChanged
from alerts.repository import json_text, json_value
from schemas.vocabulary import LEVELS, Driver, Level, Locale, Tier, driver_from_json, driver_json

ENGINE_ACTOR = "kamwatch"


@dataclass(frozen=True, slots=True)
class AccountRow:
    account_id: str
    name: str
    owner_kam_id: str | None
    arr: Decimal
    currency: str
    tier: Tier
    renewal_date: date | None


@dataclass(frozen=True, slots=True)
class HealthRow:
    """The stored current health of an account (what the escalation check shows in its messages)."""

    account_id: str
    as_of: datetime
    risk: float
    level: str
    level_since: datetime | None
    drivers: tuple[Driver, ...]


# --- reading -------------------------------------------------------------------------------------------------


async def load_accounts(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, AccountRow]:
    # ARR and renewal as the account's outcomes leave them (a renewal, expansion or downgrade newer than the
    # profile: see the account_state view).
    rows = await conn.fetch(
        "SELECT a.account_id, a.name, a.owner_kam_id, s.arr, a.currency, a.tier, s.renewal_date "
        "FROM accounts a JOIN account_state s USING (account_id) WHERE a.account_id = ANY($1::text[])",
        list(account_ids),
    )
    return {
        r["account_id"]: AccountRow(
            r["account_id"], r["name"], r["owner_kam_id"], r["arr"], r["currency"], r["tier"], r["renewal_date"]
        )
        for r in rows
    }


async def load_health(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, HealthRow]:
    rows = await conn.fetch(
        "SELECT account_id, as_of, risk::float8 AS risk, level, level_since, drivers FROM account_health "
        "WHERE account_id = ANY($1::text[])",
        list(account_ids),
    )
    return {
        r["account_id"]: HealthRow(
            r["account_id"],
            r["as_of"],
            r["risk"],
            r["level"],
            r["level_since"],
            tuple(driver_from_json(d) for d in json_value(r["drivers"])),
        )
        for r in rows
    }


async def load_level_since(conn: asyncpg.Connection, account_ids: Sequence[str]) -> dict[str, datetime]:
    rows = await conn.fetch(
        "SELECT account_id, level_since FROM account_health WHERE account_id = ANY($1::text[])", list(account_ids)
    )
    return {r["account_id"]: r["level_since"] for r in rows}


@dataclass(frozen=True, slots=True)
class PastHealth:
    """An account's risk and component risks as they stood at some earlier time."""

    risk: float
    components: dict[str, float]


async def load_health_at(conn: asyncpg.Connection, account_ids: Sequence[str], at: datetime) -> dict[str, PastHealth]:
    """Each account's health as it stood at ``at`` (its newest history row not after it), for the 7-day trend
    and the jump rule."""
    rows = await conn.fetch(
        """
        SELECT a.account_id, h.risk::float8 AS risk, h.components
        FROM unnest($1::text[]) AS a(account_id)
        CROSS JOIN LATERAL (
            SELECT risk, components FROM account_health_history
            WHERE account_id = a.account_id AND as_of <= $2 ORDER BY as_of DESC LIMIT 1
        ) h
        """,
        list(account_ids),
        at,
    )
    return {
        r["account_id"]: PastHealth(
            r["risk"], {name: float(risk) for name, risk in (json_value(r["components"]) or {}).items()}
        )
        for r in rows
    }


async def load_kams(conn: asyncpg.Connection, kam_ids: Sequence[str]) -> dict[str, Kam]:
    """The KAMs asked for and their managers (escalations go there)."""
    rows = await conn.fetch(
        """
        SELECT kam_id, name, email, slack_user_id, manager_kam_id, locale, timezone FROM kams
        WHERE kam_id = ANY($1::text[])
           OR kam_id IN (SELECT manager_kam_id FROM kams WHERE kam_id = ANY($1::text[]))
        """,
        list(kam_ids),
    )
    return {
        r["kam_id"]: Kam(
            kam_id=r["kam_id"],
            name=r["name"],
            email=r["email"],
            slack_user_id=r["slack_user_id"],
            manager_kam_id=r["manager_kam_id"],
            locale=_locale(r["locale"]),
            timezone=r["timezone"],
        )
        for r in rows
    }


def _locale(value: str) -> Locale:
    return "fr" if value == "fr" else "en"


_OPEN_COLUMNS = """id, dedup_key, account_id, rule, subject, severity, state, fired_at, snoozed_until,
    acknowledged_at, last_notified_at, escalated_at, clearing_since, resolves_at, title_en, title_fr, drivers"""


def _open_alert(r: asyncpg.Record) -> tuple[OpenAlert, AlertItem]:
    alert = OpenAlert(
        alert_id=r["id"],
        dedup_key=r["dedup_key"],
        account_id=r["account_id"],
        rule=r["rule"],
        subject=r["subject"],
        severity=r["severity"],
        state=r["state"],
        fired_at=r["fired_at"],
        snoozed_until=r["snoozed_until"],
        acknowledged_at=r["acknowledged_at"],
        last_notified_at=r["last_notified_at"],
        escalated_at=r["escalated_at"],
        clearing_since=r["clearing_since"],
        resolves_at=r["resolves_at"],
    )
    return alert, alert_item(r)


def alert_item(r: asyncpg.Record) -> AlertItem:
    """An alert row as messages show it."""
    return AlertItem(
        r["id"],
        r["dedup_key"],
        r["rule"],
        r["severity"],
        r["title_en"],
        r["title_fr"],
        r["fired_at"],
        r["subject"],
        tuple(driver_from_json(d) for d in json_value(r["drivers"]) or ()),
        r["state"],
    )


async def load_open_alerts(
    conn: asyncpg.Connection, account_ids: Sequence[str]
) -> tuple[list[OpenAlert], dict[int, AlertItem]]:
    """The open alerts of these accounts, locked (in id order, so concurrent callers cannot deadlock) until the
    caller's transaction ends: the engine and the escalation check never act on the same alert at once."""
    rows = await conn.fetch(
        f"SELECT {_OPEN_COLUMNS} FROM alerts WHERE account_id = ANY($1::text[]) AND state <> 'resolved' "
        "ORDER BY id FOR UPDATE",
        list(account_ids),
    )
    pairs = [_open_alert(r) for r in rows]
    return [a for a, _ in pairs], {i.alert_id: i for _, i in pairs}


async def lock_escalation_candidates(
    conn: asyncpg.Connection, before: datetime
) -> tuple[list[OpenAlert], dict[int, AlertItem]]:
    """Firing critical alerts never escalated, notified before ``before``, not held open with their condition
    clear; those another transaction holds (the engine rescoring the account) are skipped: that transaction
    checks them itself."""
    rows = await conn.fetch(
        f"""
        SELECT {_OPEN_COLUMNS} FROM alerts
        WHERE state = 'firing' AND severity = 'critical' AND escalated_at IS NULL AND clearing_since IS NULL
          AND last_notified_at IS NOT NULL AND last_notified_at <= $1
        ORDER BY id FOR UPDATE SKIP LOCKED
        """,
        before,
    )
    pairs = [_open_alert(r) for r in rows]
    return [a for a, _ in pairs], {i.alert_id: i for _, i in pairs}


async def immediate_sent_today(
    conn: asyncpg.Connection, windows: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, int]:
    """Immediate messages each KAM got in their local day (``windows``: KAM -> [start, end)).

    Counted from the alerts themselves (an immediate message stamps its alerts' ``last_notified_at`` with one
    instant), so the budget holds the same whether notifications are sent, logged or not written at all."""
    if not windows:
        return {}
    kam_ids = list(windows)
    rows = await conn.fetch(
        """
        SELECT w.kam_id, count(DISTINCT (al.account_id, al.last_notified_at)) AS sent
        FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(kam_id, day_start, day_end)
        JOIN accounts ac ON ac.owner_kam_id = w.kam_id
        JOIN alerts al ON al.account_id = ac.account_id
        WHERE al.delivery = 'immediate' AND al.last_notified_at >= w.day_start AND al.last_notified_at < w.day_end
        GROUP BY w.kam_id
        """,
        kam_ids,
        [windows[k][0] for k in kam_ids],
        [windows[k][1] for k in kam_ids],
    )
    return {r["kam_id"]: r["sent"] for r in rows}


async def load_waiting_cleared_notes(
    conn: asyncpg.Connection, kam_ids: Sequence[str]
) -> tuple[list[ClearedNote], dict[int, AlertItem]]:
    """The "cleared" notes still waiting for a digest on the accounts these KAMs own, with their alerts as
    messages show them; locked until the caller's transaction ends, and those another transaction holds are
    skipped (that one decides about them), so a note is never planned twice."""
    if not kam_ids:
        return [], {}
    rows = await conn.fetch(
        f"""
        SELECT {_OPEN_COLUMNS}, cleared_note_since FROM alerts
        WHERE cleared_note_since IS NOT NULL AND cleared_note_at IS NULL
          AND account_id IN (SELECT account_id FROM accounts WHERE owner_kam_id = ANY($1::text[]))
        ORDER BY id FOR UPDATE SKIP LOCKED
        """,
        list(kam_ids),
    )
    notes, items = [], {}
    for r in rows:
        _, item = _open_alert(r)
        notes.append(ClearedNote(r["id"], r["dedup_key"], r["account_id"], r["cleared_note_since"]))
        items[item.alert_id] = item
    return notes, items


async def kams_with_pending_digest(conn: asyncpg.Connection, kam_ids: Sequence[str], at: datetime) -> set[str]:
    """The KAMs among ``kam_ids`` whose digest still to go out after ``at`` carries alerts (an alert put in a
    digest is stamped with its send time), whether or not the alerts have resolved since."""
    if not kam_ids:
        return set()
    rows = await conn.fetch(
        """
        SELECT DISTINCT ac.owner_kam_id FROM accounts ac JOIN alerts al ON al.account_id = ac.account_id
        WHERE ac.owner_kam_id = ANY($1::text[]) AND al.delivery = 'digest' AND al.last_notified_at > $2
        """,
        list(kam_ids),
        at,
    )
    return {r["owner_kam_id"] for r in rows}


def stored_snapshot(account: AccountRow, health: HealthRow, risk_before: float | None) -> AccountSnapshot:
    """An account as its stored health stands (for messages about accounts not scored now)."""
    level: Level = next((lv for lv in LEVELS if lv == health.level), "low")
    return AccountSnapshot(
        account_id=account.account_id,
        name=account.name,
        tier=account.tier,
        arr=account.arr,
        currency=account.currency,
        renewal_date=account.renewal_date,
        owner_kam_id=account.owner_kam_id,
        risk=health.risk,
        level=level,
        risk_7d_ago=risk_before,
        level_since=health.level_since,
        drivers=health.drivers,
        as_of=health.as_of,
    )


async def load_stored_snapshots(
    conn: asyncpg.Connection, account_ids: Sequence[str], trend_from: datetime
) -> dict[str, AccountSnapshot]:
    """Accounts as their stored health stands, with the risk they had at ``trend_from``."""
    if not account_ids:
        return {}
    accounts = await load_accounts(conn, account_ids)
    health = await load_health(conn, account_ids)
    before = await load_health_at(conn, account_ids, trend_from)
    return {
        a: stored_snapshot(accounts[a], health[a], past.risk if (past := before.get(a)) is not None else None)
        for a in account_ids
        if a in accounts and a in health
    }


# --- writing alerts ------------------------------------------------------------------------------------------


async def write_changes(conn: asyncpg.Connection, changes: Changes, at: datetime) -> dict[str, int]:
    """Apply reconciled changes; returns the ids of the alerts opened, by dedup key (a key another transaction
    opened meanwhile is not among them)."""
    await resolve_alerts(conn, changes.resolved)
    await mark_clearing(conn, changes.clearing)
    await mark_returned(conn, changes.returned)
    await update_severities(conn, changes.severity_changed, at)
    return await insert_alerts(conn, changes.opened, at)


async def insert_alerts(conn: asyncpg.Connection, opened: Sequence[Opened], at: datetime) -> dict[str, int]:
    """Open alerts (and their first transition); returns dedup key -> id. A key another transaction opened in
    the meantime is skipped (one open alert per key), so it is neither returned nor notified twice."""
    if not opened:
        return {}
    rows = [
        {
            "dedup_key": o.alert.dedup_key,
            "account_id": o.alert.account_id,
            "rule": o.alert.rule,
            "subject": o.alert.subject,
            "severity": o.alert.severity,
            "fired_at": o.fired_at.isoformat(),
            "title_en": o.alert.title_en,
            "title_fr": o.alert.title_fr,
            "drivers": [driver_json(d) for d in o.alert.drivers],
        }
        for o in opened
    ]
    inserted = await conn.fetch(
        """
        INSERT INTO alerts (dedup_key, account_id, rule, subject, severity, state, fired_at, updated_at,
                            title_en, title_fr, drivers)
        SELECT dedup_key, account_id, rule, subject, severity, 'firing', fired_at, $2, title_en, title_fr, drivers
        FROM json_to_recordset($1::json) AS r(dedup_key text, account_id text, rule text, subject text,
                                               severity text, fired_at timestamptz, title_en text, title_fr text,
                                               drivers jsonb)
        ORDER BY dedup_key
        ON CONFLICT (dedup_key) WHERE state <> 'resolved' DO NOTHING
        RETURNING id, dedup_key
        """,
        json_text(rows),
        at,
    )
    ids = {r["dedup_key"]: r["id"] for r in inserted}
    await _transitions(conn, [(i, None, "firing", None) for i in ids.values()], at)
    return ids


async def update_severities(conn: asyncpg.Connection, changed: Sequence[SeverityChanged], at: datetime) -> None:
    if not changed:
        return
    rows = [
        {
            "id": c.alert_id,
            "severity": c.severity,
            "title_en": c.alert.title_en,
            "title_fr": c.alert.title_fr,
            "drivers": [driver_json(d) for d in c.alert.drivers],
        }
        for c in changed
    ]
    await conn.execute(
        """
        UPDATE alerts a SET severity = r.severity, title_en = r.title_en, title_fr = r.title_fr,
                            drivers = r.drivers, updated_at = $2
        FROM json_to_recordset($1::json) AS r(id bigint, severity text, title_en text, title_fr text, drivers jsonb)
        WHERE a.id = r.id
        """,
        json_text(rows),
        at,
    )


async def resolve_alerts(conn: asyncpg.Connection, resolved: Sequence[Resolved]) -> None:
    """Auto-resolve (the condition cleared, and stayed clear for the hold), one transition each, by the engine,
    dated each one's ``resolved_at`` (the end of its hold)."""
    if not resolved:
        return
    by_id = {r.alert_id: r for r in resolved}
    before = await conn.fetch(
        "SELECT id, state FROM alerts WHERE id = ANY($1::bigint[]) AND state <> 'resolved'", list(by_id)
    )
    ids = [r["id"] for r in before]
    await conn.execute(
        "UPDATE alerts a SET state = 'resolved', resolved_at = u.at, updated_at = u.at, snoozed_until = NULL "
        "FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at) WHERE a.id = u.id",
        ids,
        [by_id[i].resolved_at for i in ids],
    )
    by_time: dict[datetime, list[tuple[int, str | None, str, str | None]]] = {}
    for r in before:
        done = by_id[r["id"]]
        by_time.setdefault(done.resolved_at, []).append((r["id"], r["state"], "resolved", done.note))
    for at, rows in sorted(by_time.items()):
        await _transitions(conn, rows, at)


async def mark_clearing(conn: asyncpg.Connection, clearing: Sequence[Clearing]) -> None:
    """Alerts held open while their condition is clear: since when, and when they resolve unless it comes back."""
    if not clearing:
        return
    await conn.execute(
        "UPDATE alerts a SET clearing_since = u.since, resolves_at = u.due "
        "FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS u(id, since, due) "
        "WHERE a.id = u.id AND a.state <> 'resolved'",
        [c.alert_id for c in clearing],
        [c.since for c in clearing],
        [c.resolves_at for c in clearing],
    )


async def mark_returned(conn: asyncpg.Connection, returned: Sequence[Returned]) -> None:
    """Held alerts whose condition came back: they go on as before (no transition: the state never changed)."""
    if not returned:
        return
    await conn.execute(
        "UPDATE alerts SET clearing_since = NULL, resolves_at = NULL WHERE id = ANY($1::bigint[])",
        [b.alert_id for b in returned],
    )


async def set_deliveries(conn: asyncpg.Connection, updates: Sequence[DeliveryUpdate]) -> None:
    """How each alert reaches its KAM; ``notified_at`` (when given) is when it did or will."""
    if not updates:
        return
    await conn.execute(
        """
        UPDATE alerts a SET delivery = u.delivery,
                            last_notified_at = COALESCE(u.notified_at, a.last_notified_at),
                            folded_into = u.folded_into
        FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::bigint[])
             AS u(id, delivery, notified_at, folded_into)
        WHERE a.id = u.id
        """,
        [u.alert_id for u in updates],
        [u.delivery for u in updates],
        [u.notified_at for u in updates],
        [u.folded_into for u in updates],
    )


async def record_cleared_notes(
    conn: asyncpg.Connection, owed: Sequence[ClearedNote], planned: Mapping[int, datetime]
) -> None:
    """Notes just owed (``cleared_note_since``), and when the planned ones go out (alert id -> send time)."""
    if owed:
        await conn.execute(
            "UPDATE alerts a SET cleared_note_since = u.since "
            "FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, since) WHERE a.id = u.id",
            [n.alert_id for n in owed],
            [n.owed_since for n in owed],
        )
    if planned:
        await conn.execute(
            "UPDATE alerts a SET cleared_note_at = u.at "
            "FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, at) WHERE a.id = u.id",
            list(planned),
            list(planned.values()),
        )


async def drop_cleared_notes(conn: asyncpg.Connection, account_ids: Sequence[str]) -> None:
    """The "cleared" notes still waiting on these accounts are no longer owed (the accounts are closed)."""
    await conn.execute(
        "UPDATE alerts SET cleared_note_since = NULL WHERE account_id = ANY($1::text[]) "
        "AND cleared_note_since IS NOT NULL AND cleared_note_at IS NULL",
        list(account_ids),
    )


async def mark_escalated(conn: asyncpg.Connection, escalated: Mapping[int, str], at: datetime) -> None:
    """Stamp ``escalated_at`` (never twice) and record the escalation (alert id -> manager KAM id) in the
    alert's history; the state does not change."""
    if not escalated:
        return
    ids = list(escalated)
    rows = await conn.fetch(
        "UPDATE alerts SET escalated_at = $2 WHERE id = ANY($1::bigint[]) AND escalated_at IS NULL RETURNING id, state",
        ids,
        at,
    )
    await _transitions(
        conn, [(r["id"], r["state"], r["state"], f"escalated to {escalated[r['id']]}") for r in rows], at
    )


async def reopen_ended_snoozes(
    conn: asyncpg.Connection, at: datetime, account_ids: Sequence[str] | None = None
) -> list[int]:
    """Snoozes that ran out put their alert back to firing. ``snoozed_until`` is kept on purpose: the escalation
    delay counts from the end of the snooze (see alerts.policy.due_escalations)."""
    rows = await conn.fetch(
        """
        UPDATE alerts SET state = 'firing', updated_at = $1
        WHERE state = 'acknowledged' AND snoozed_until IS NOT NULL AND snoozed_until <= $1
          AND ($2::text[] IS NULL OR account_id = ANY($2::text[]))
        RETURNING id
        """,
        at,
        list(account_ids) if account_ids is not None else None,
    )
    ids = [r["id"] for r in rows]
    await _transitions(conn, [(i, "acknowledged", "firing", "snooze ended") for i in ids], at)
    return ids


async def _transitions(
    conn: asyncpg.Connection, rows: Sequence[tuple[int, str | None, str, str | None]], at: datetime
) -> None:
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO alert_transitions (alert_id, at, from_state, to_state, actor, via, note)
        SELECT id, $5, from_state, to_state, $6, 'engine', note
        FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(id, from_state, to_state, note)
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        at,
        ENGINE_ACTOR,
    )
