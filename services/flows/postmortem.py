"""Post-mortems of lost accounts, as load -> decide -> present.

"When each rule would have fired" is found in hindsight: the account's stored signals are loaded as they stood
at every midnight of the window before the outcome (``load_signals(as_of)``: each projection rewinds to that
moment), scored by the pure scorer and passed through the pure rules with the current configuration; the
first midnight a rule's condition holds is when it would have fired. What did fire, when the KAM was told and
what people did come from the stored alerts, their transitions and the notifications sent. The account's
profile (tier, ARR, renewal) is the current one: the projections keep no history of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from alerts.config import AlertsConfig
from alerts.hindsight import Action, PostMortem, Sent, StoredAlert, first_firings, post_mortem, rules_for
from alerts.model import AccountSnapshot
from alerts.rules import evaluate
from health_engine.config import ScoringConfig, Windows
from health_engine.repository import component_risks, load_signals
from health_engine.scoring import score_account
from schemas.vocabulary import Level

WINDOW_DAYS = 180
LOST_OUTCOMES = ("churned", "downgraded")


@dataclass(frozen=True, slots=True)
class Loss:
    account_id: str
    name: str
    owner_kam_id: str
    owner_name: str | None
    tier: str
    currency: str
    outcome: str
    outcome_at: datetime
    arr_before: Decimal | None
    arr_after: Decimal | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AccountPostMortem:
    loss: Loss
    story: PostMortem
    signals: tuple[Mapping[str, Any], ...]
    """Raw events of the window before the outcome (oldest first), usage excepted."""
    risk: tuple[tuple[datetime, float, str], ...]
    """The replayed risk and level at each midnight of the window."""


_LOSSES_SQL = """
SELECT o.account_id, a.name, a.owner_kam_id, k.name AS owner_name, a.tier, a.currency, o.outcome,
       o.event_time AS outcome_at, o.arr_before, o.arr_after, o.reason
  FROM outcomes o JOIN accounts a ON a.account_id = o.account_id
  LEFT JOIN kams k ON k.kam_id = a.owner_kam_id
 WHERE o.outcome = ANY($1::text[]) AND o.event_time >= $2 AND o.event_time < $3
   AND ($4::text[] IS NULL OR a.owner_kam_id = ANY($4::text[]))
   AND ($5::text IS NULL OR o.account_id = $5)
 ORDER BY o.event_time DESC, o.account_id
"""


def _loss(row: Mapping[str, Any]) -> Loss:
    return Loss(**dict(row))


async def losses(
    conn: asyncpg.Connection,
    start: datetime,
    end: datetime,
    *,
    kam_ids: Sequence[str] | None,
    account_id: str | None = None,
    outcomes: Sequence[str] = LOST_OUTCOMES,
) -> list[Loss]:
    """Accounts lost (or downgraded) between ``start`` and ``end``, newest first (``kam_ids``: only theirs)."""
    rows = await conn.fetch(
        _LOSSES_SQL, list(outcomes), start, end, None if kam_ids is None else list(kam_ids), account_id
    )
    return [_loss(row) for row in rows]


async def last_loss(conn: asyncpg.Connection, account_id: str) -> Loss | None:
    """The account's latest churn (else downgrade)."""
    found = await losses(
        conn, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), kam_ids=None, account_id=account_id
    )
    churned = [loss for loss in found if loss.outcome == "churned"]
    return next(iter(churned or found), None)


_ACCOUNT_SQL = (
    "SELECT account_id, name, owner_kam_id, arr, currency, tier, renewal_date FROM accounts WHERE account_id = $1"
)


async def hindsight(
    conn: asyncpg.Connection,
    account_id: str,
    start: datetime,
    end: datetime,
    scoring: ScoringConfig,
    rules: AlertsConfig,
) -> tuple[dict[str, datetime], list[tuple[datetime, float, str]]]:
    """When each rule would have fired between ``start`` and ``end`` (every midnight, and ``end``), and the risk
    and level replayed at each of those moments."""
    account = await conn.fetchrow(_ACCOUNT_SQL, account_id)
    if account is None:
        return {}, []
    windows = Windows.of(scoring)
    # Not before the account's first event: before it there was nothing to score.
    first = await conn.fetchval("SELECT min(event_time) FROM raw_events WHERE subject = $1", account_id)
    if first is not None and first > start:
        start = first
    moments = []
    day = start.astimezone(UTC).date() + timedelta(days=1)
    while (moment := datetime.combine(day, time(), tzinfo=UTC)) < end:
        moments.append(moment)
        day += timedelta(days=1)
    moments.append(end)
    fired: list[tuple[str, datetime]] = []
    series: list[tuple[datetime, float, str]] = []
    past: list[tuple[datetime, float, dict[str, float]]] = []
    level: Level | None = None
    level_since: datetime | None = None
    for moment in moments:
        signals = await load_signals(conn, [account_id], moment, windows)
        if account_id not in signals:
            continue
        score = score_account(signals[account_id], moment, scoring)
        if score.level != level:
            level, level_since = score.level, moment
        week_ago = next((p for p in reversed(past) if p[0] <= moment - timedelta(days=7)), None)
        components = component_risks(score)
        snapshot = AccountSnapshot(
            account_id=account_id,
            name=account["name"],
            tier=account["tier"],
            arr=account["arr"],
            currency=account["currency"],
            renewal_date=account["renewal_date"],
            owner_kam_id=account["owner_kam_id"],
            risk=score.risk,
            level=score.level,
            risk_7d_ago=week_ago[1] if week_ago else None,
            level_since=level_since,
            drivers=score.drivers,
            as_of=moment,
            components=components,
            components_7d_ago=week_ago[2] if week_ago else {},
        )
        # when the condition became true (a departure's, a ticket's own time), not the midnight that found it
        fired += [(alert.rule, max(alert.condition_since, start)) for alert in evaluate(snapshot, rules)]
        past.append((moment, score.risk, components))
        series.append((moment, score.risk, score.level))
    return first_firings(fired), series


_ALERTS_SQL = """
SELECT id, rule, severity, fired_at, title_en, title_fr FROM alerts
 WHERE account_id = $1 AND fired_at >= $2 AND fired_at <= $3 ORDER BY fired_at, id
"""

_ACTIONS_SQL = """
SELECT t.alert_id, t.at, t.to_state AS what, t.actor, t.via
  FROM alert_transitions t JOIN alerts al ON al.id = t.alert_id
 WHERE al.account_id = $1 AND t.from_state IS NOT NULL AND t.via <> 'engine' AND t.at <= $2
UNION ALL
SELECT f.alert_id, f.at, 'feedback:' || f.verdict, f.actor, 'feedback'
  FROM alert_feedback f JOIN alerts al ON al.id = f.alert_id
 WHERE al.account_id = $1 AND f.at <= $2
ORDER BY 2
"""

_SENT_SQL = """
SELECT alert_ids, channel, kind, recipient, sent_at FROM notifications
 WHERE status = 'sent' AND alert_ids && $1::bigint[] AND sent_at <= $2 ORDER BY sent_at
"""

_SIGNALS_SQL = """
SELECT event_time AS at, type, payload FROM raw_events
 WHERE subject = $1 AND type <> 'kamwatch.usage.v1' AND event_time >= $2 AND event_time <= $3
 ORDER BY event_time, source, event_id
"""


async def account_post_mortem(
    conn: asyncpg.Connection,
    loss: Loss,
    scoring: ScoringConfig,
    rules: AlertsConfig,
    *,
    window_days: int = WINDOW_DAYS,
) -> AccountPostMortem:
    """The post-mortem of one loss: the window of ``window_days`` before the outcome."""
    end = loss.outcome_at
    start = end - timedelta(days=window_days)
    would_fire, series = await hindsight(conn, loss.account_id, start, end, scoring, rules)
    alert_rows = await conn.fetch(_ALERTS_SQL, loss.account_id, start, end)
    alerts = [
        StoredAlert(r["id"], r["rule"], r["severity"], r["fired_at"], r["title_en"], r["title_fr"]) for r in alert_rows
    ]
    actions = [
        Action(r["alert_id"], r["at"], r["what"], r["actor"], r["via"])
        for r in await conn.fetch(_ACTIONS_SQL, loss.account_id, end)
    ]
    ids = [a.alert_id for a in alerts]
    sent = [
        Sent(tuple(r["alert_ids"]), r["channel"], r["kind"], r["recipient"], r["sent_at"])
        for r in (await conn.fetch(_SENT_SQL, ids, end) if ids else [])
    ]
    signals = tuple(dict(r) for r in await conn.fetch(_SIGNALS_SQL, loss.account_id, start, end))
    applicable = rules_for(rules, loss.tier)  # type: ignore[arg-type]
    story = post_mortem(end, would_fire, alerts, [a for a in actions if a.alert_id in set(ids)], sent, applicable)
    return AccountPostMortem(loss, story, signals, tuple(series))


async def lead_times(
    conn: asyncpg.Connection, found: Sequence[Loss], *, window_days: int = WINDOW_DAYS
) -> dict[str, tuple[datetime | None, datetime | None]]:
    """For each loss, when its first alert of the window fired and when the KAM was first told (cheap: no replay)."""
    result: dict[str, tuple[datetime | None, datetime | None]] = {}
    for loss in found:
        start = loss.outcome_at - timedelta(days=window_days)
        rows = await conn.fetch(_ALERTS_SQL, loss.account_id, start, loss.outcome_at)
        ids = [r["id"] for r in rows]
        told = None
        if ids:
            sent = await conn.fetch(_SENT_SQL, ids, loss.outcome_at)
            told = sent[0]["sent_at"] if sent else None
        result[f"{loss.account_id}@{loss.outcome_at.isoformat()}"] = (rows[0]["fired_at"] if rows else None, told)
    return result


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def loss_document(loss: Loss) -> dict[str, Any]:
    return {
        "account_id": loss.account_id,
        "name": loss.name,
        "owner": {"kam_id": loss.owner_kam_id, "name": loss.owner_name},
        "tier": loss.tier,
        "currency": loss.currency,
        "outcome": loss.outcome,
        "outcome_at": _iso(loss.outcome_at),
        "arr_before": None if loss.arr_before is None else str(loss.arr_before),
        "arr_after": None if loss.arr_after is None else str(loss.arr_after),
        "reason": loss.reason,
    }


def post_mortem_document(found: AccountPostMortem, rule_label: Callable[[str], str]) -> dict[str, Any]:
    """The JSON form of a post-mortem (API and CLI); ``rule_label`` names each rule in the reader's language."""
    story = found.story
    return {
        "account": loss_document(found.loss),
        "window_days": WINDOW_DAYS,
        "first_told_at": _iso(story.first_told_at),
        "lead_days": story.lead_days,
        "possible_lead_days": story.possible_lead_days,
        "rules": [
            {
                "rule": r.rule,
                "label": rule_label(r.rule),
                "would_fire_at": _iso(r.would_fire_at),
                "fired_at": _iso(r.fired_at),
                "told_at": _iso(r.told_at),
                "acknowledged_at": _iso(r.acknowledged_at),
                "lead_days": r.lead_days,
                "lost_days": r.lost_days,
                "actions": [
                    {"at": _iso(a.at), "what": a.what, "actor": a.actor, "via": a.via, "alert_id": a.alert_id}
                    for a in r.acted
                ],
            }
            for r in story.rules
        ],
        "silent_rules": [{"rule": rule, "label": rule_label(rule)} for rule in story.silent],
        "notifications": [
            {"sent_at": _iso(n.sent_at), "channel": n.channel, "kind": n.kind, "alert_ids": list(n.alert_ids)}
            for n in story.notifications
        ],
        "signals": [{"at": _iso(s["at"]), "type": s["type"], "data": event_data(s["payload"])} for s in found.signals],
        "risk": [{"at": _iso(at), "risk": risk, "level": level} for at, risk, level in found.risk],
    }


def event_data(payload: Any) -> dict[str, Any]:
    document = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
    data = document.get("data") if isinstance(document, dict) else None
    return data if isinstance(data, dict) else {}
