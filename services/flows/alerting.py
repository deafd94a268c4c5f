"""The alerting at the service edge: the health engine's ``on_scores`` hook and the escalation check.

Inside the engine's transaction, for the accounts just scored: rule evaluation, reconciliation with the open
alerts and the notification plan (all pure, in ``alerts``), then the alert rows, their transitions and the
outbox rows are written in that same transaction, so an alert change and its notification commit together.

``notify`` decides what happens to the planned messages: ``send`` queues them in the outbox for
``kamwatch alerter``; ``none`` (replay, backtest) records the alerts and how they would have been delivered but
queues nothing; ``log`` logs the rendered messages; ``file`` appends them to an NDJSON file.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import orjson

from alerts.config import AlertsConfig, load_rules_config
from alerts.messages import AlertItem, AlertMessage, DigestSection
from alerts.model import AccountSnapshot, DeliveryUpdate, Kam, OpenAlert, OutboxRow
from alerts.outbox import digest_payload, message_payload, render_payloads
from alerts.policy import (
    PlannedNotification,
    cleared_notes_may_go,
    cleared_notes_owed,
    deliveries,
    local_day_bounds,
    plan_notifications,
)
from alerts.reconcile import Changes, reconcile
from alerts.repository import changes as repo
from alerts.repository import queue
from alerts.rules import evaluate
from health_engine.model import HealthScore
from health_engine.repository import component_risks
from schemas.vocabulary import LEVELS, Locale
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)

NotifyMode = Literal["send", "none", "log", "file"]
NOTIFY_MODES: tuple[NotifyMode, ...] = ("send", "none", "log", "file")
TREND_DAYS = 7


def slack_configured(settings: Settings) -> bool:
    return settings.slack_bot_token is not None or settings.slack_webhook_url is not None


def email_configured(settings: Settings) -> bool:
    return settings.smtp_host is not None


def alerts_config(settings: Settings) -> AlertsConfig:
    """The rules YAML, with the team channel of the settings (when set) instead of the policy's."""
    config = load_rules_config(settings.alert_rules)
    if settings.slack_team_channel:
        policy = config.policy.model_copy(update={"team_channel": settings.slack_team_channel})
        config = config.model_copy(update={"policy": policy})
    return config


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one hook call did (returned for tests and logs)."""

    opened: int = 0
    severity_changed: int = 0
    resolved: int = 0
    planned: int = 0
    queued: int = 0
    escalated: int = 0


@dataclass
class Alerting:
    """The ``on_scores`` hook (call it like a function) and the periodic escalation check."""

    config: AlertsConfig
    notify: NotifyMode
    base_url: str
    channels: frozenset[str] = frozenset({"slack", "email", "team_channel"})
    """Channels notifications are queued for in ``send`` mode (one with no server configured is skipped)."""
    file: Path | None = None
    last: Outcome = field(default_factory=Outcome)
    metrics: Metrics | None = None

    async def __call__(self, conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> None:
        self.last = await self.on_scores(conn, scores, as_of)

    async def on_scores(self, conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> Outcome:
        ids = sorted({s.account_id for s in scores})
        await repo.reopen_ended_snoozes(conn, as_of, ids)
        accounts = await repo.load_accounts(conn, ids)
        level_since = await repo.load_level_since(conn, ids)
        before = await repo.load_health_at(conn, ids, as_of - timedelta(days=TREND_DAYS))
        snapshots = {
            s.account_id: snapshot_of(s, accounts[s.account_id], level_since.get(s.account_id), before, as_of)
            for s in scores
            if s.account_id in accounts
        }
        open_alerts, items = await repo.load_open_alerts(conn, sorted(snapshots))
        desired = [alert for snap in snapshots.values() for alert in evaluate(snap, self.config)]
        changes = reconcile(desired, open_alerts, as_of, self.config.resolve_hold)
        # "Cleared" notes owed from earlier evaluations, to the KAMs of these accounts: they may go out now.
        owners = sorted({a.owner_kam_id for a in accounts.values() if a.owner_kam_id})
        waiting, waiting_items = await repo.load_waiting_cleared_notes(conn, owners)
        # With nothing changed, waiting notes can only go out because their time is up (news would have taken
        # them when it was planned).
        if (
            not changes
            and not cleared_notes_may_go(waiting, as_of, self.config)
            and not any(_may_escalate(a) for a in open_alerts)
        ):
            return Outcome()

        await repo.resolve_alerts(conn, changes.resolved)
        await repo.mark_clearing(conn, changes.clearing)
        await repo.mark_returned(conn, changes.returned)
        await repo.update_severities(conn, changes.severity_changed, as_of)
        new_ids = await repo.insert_alerts(conn, changes.opened, as_of)
        # A key opened meanwhile by another transaction is theirs to notify.
        changes = replace(changes, opened=tuple(o for o in changes.opened if o.alert.dedup_key in new_ids))

        kams = await repo.load_kams(conn, owners)
        windows = {
            k: local_day_bounds(kams[k].timezone, as_of)
            for k in {s.owner_kam_id for s in snapshots.values()}
            if k is not None and k in kams
        }
        sent_today = await repo.immediate_sent_today(conn, windows)
        # The accounts of waiting notes not scored now appear in the digest as they stand.
        others = await self._stored_snapshots(conn, sorted({n.account_id for n in waiting} - set(snapshots)), as_of)
        shown = {**others, **snapshots}
        owed = cleared_notes_owed(changes, open_alerts, kams, shown, as_of)
        note_kams = {s.owner_kam_id for n in (*owed, *waiting) if (s := shown.get(n.account_id)) is not None}
        digest_news = await repo.kams_with_pending_digest(conn, sorted(k for k in note_kams if k in kams), as_of)
        plan = plan_notifications(
            changes,
            open_alerts,
            kams,
            shown,
            sent_today,
            as_of,
            self.config,
            waiting=waiting,
            digest_news=digest_news,
        )
        await repo.record_cleared_notes(
            conn,
            owed,
            {i: n.send_at for n in plan if n.kind == "resolved" and n.channel != "team_channel" for i in n.alert_ids},
        )

        for o in changes.opened:
            a = o.alert
            alert_id = new_ids[a.dedup_key]
            items[alert_id] = AlertItem(alert_id, a.dedup_key, a.rule, a.severity, a.title_en, a.title_fr, o.fired_at)
        for c in changes.severity_changed:
            old = items[c.alert_id]
            items[c.alert_id] = replace(old, severity=c.severity, title_en=c.alert.title_en, title_fr=c.alert.title_fr)
        book = _Book(
            live={a.dedup_key: a.alert_id for a in open_alerts} | new_ids,
            gone={r.dedup_key: r.alert_id for r in changes.resolved},
            items=items,
            open_alerts=open_alerts,
            changes=changes,
        )
        for r in changes.resolved:
            book.live.pop(r.dedup_key, None)
        book.items |= waiting_items
        book.account_of = {a.alert_id: a.account_id for a in open_alerts}
        book.account_of |= {new_ids[o.alert.dedup_key]: o.alert.account_id for o in changes.opened}
        book.account_of |= {n.alert_id: n.account_id for n in waiting}
        queued, escalated = await self._apply(conn, plan, book, shown, kams, as_of)
        self._count(changes, open_alerts, plan)
        return Outcome(
            len(changes.opened), len(changes.severity_changed), len(changes.resolved), len(plan), queued, escalated
        )

    async def check_escalations(self, conn: asyncpg.Connection, as_of: datetime) -> Outcome:
        """Escalate critical alerts left unacknowledged too long, whether or not their account was rescored."""
        await repo.reopen_ended_snoozes(conn, as_of)
        delay = timedelta(hours=self.config.policy.escalation_delay_hours)
        candidates, items = await repo.lock_escalation_candidates(conn, as_of - delay)
        if not candidates:
            return Outcome()
        snapshots = await self._stored_snapshots(conn, sorted({a.account_id for a in candidates}), as_of)
        kams = await repo.load_kams(conn, sorted({s.owner_kam_id for s in snapshots.values() if s.owner_kam_id}))
        plan = plan_notifications(Changes(), candidates, kams, snapshots, {}, as_of, self.config)
        book = _Book({a.dedup_key: a.alert_id for a in candidates}, {}, items, candidates, Changes())
        book.account_of = {a.alert_id: a.account_id for a in candidates}
        queued, escalated = await self._apply(conn, plan, book, snapshots, kams, as_of)
        self._count(Changes(), candidates, plan)
        return Outcome(planned=len(plan), queued=queued, escalated=escalated)

    async def _stored_snapshots(
        self, conn: asyncpg.Connection, account_ids: Sequence[str], as_of: datetime
    ) -> dict[str, AccountSnapshot]:
        """Accounts not scored now, as their stored health stands (for messages about them)."""
        if not account_ids:
            return {}
        accounts = await repo.load_accounts(conn, account_ids)
        health = await repo.load_health(conn, account_ids)
        before = await repo.load_health_at(conn, account_ids, as_of - timedelta(days=TREND_DAYS))
        return {
            a: stored_snapshot(accounts[a], health[a], past.risk if (past := before.get(a)) is not None else None)
            for a in account_ids
            if a in accounts and a in health
        }

    def _count(self, changes: Changes, open_alerts: Sequence[OpenAlert], plan: Sequence[PlannedNotification]) -> None:
        """Alerts opened, resolved and escalated, by rule and severity (recorded before the commit: a rolled
        back evaluation is counted, and redone)."""
        if self.metrics is None:
            return
        for opened in changes.opened:
            self.metrics.alerts_opened_total.labels(rule=opened.alert.rule, severity=opened.alert.severity).inc()
        by_id = {a.alert_id: a for a in open_alerts}
        by_key = {a.dedup_key: a for a in open_alerts}
        for resolved in changes.resolved:
            severity = by_id[resolved.alert_id].severity if resolved.alert_id in by_id else "info"
            self.metrics.alerts_resolved_total.labels(rule=resolved.rule, severity=severity).inc()
        for planned in plan:
            if planned.kind == "escalation":
                for key in planned.alert_dedup_keys:
                    if (alert := by_key.get(key)) is not None:
                        self.metrics.alerts_escalated_total.labels(rule=alert.rule, severity=alert.severity).inc()

    # --- writing the plan --------------------------------------------------------------------------------

    async def _apply(
        self,
        conn: asyncpg.Connection,
        plan: Sequence[PlannedNotification],
        book: _Book,
        snapshots: Mapping[str, AccountSnapshot],
        kams: Mapping[str, Kam],
        as_of: datetime,
    ) -> tuple[int, int]:
        await repo.set_deliveries(conn, _delivery_updates(plan, book))
        escalated = {book.live[n.alert_dedup_keys[0]]: n.recipient for n in plan if n.kind == "escalation"}
        await repo.mark_escalated(conn, escalated, as_of)
        rows = [
            row
            for n in plan
            if n.kind != "folded" and (row := self._outbox_row(n, book, snapshots, kams, as_of)) is not None
        ]
        if self.notify == "send":
            rows = [r for r in rows if r.channel in self.channels]
            await queue.enqueue(conn, rows, as_of)
            return len(rows), len(escalated)
        if self.notify in ("log", "file"):
            self._emit(rows)
        return 0, len(escalated)

    def _outbox_row(
        self,
        n: PlannedNotification,
        book: _Book,
        snapshots: Mapping[str, AccountSnapshot],
        kams: Mapping[str, Kam],
        as_of: datetime,
    ) -> OutboxRow | None:
        resolved = n.kind == "resolved"
        to: str
        kam_id: str | None
        locale: Locale
        timezone: str
        alert_ids = n.alert_ids or tuple(book.id_of(k, resolved=resolved) for k in n.alert_dedup_keys)
        to, kam_id, locale, timezone = n.recipient, None, "en", "UTC"
        if n.channel != "team_channel":
            kam = kams[n.recipient]
            to = kam.email if n.channel == "email" else (kam.slack_user_id or "")
            kam_id, locale, timezone = kam.kam_id, kam.locale, kam.timezone
        items = [book.items[i] for i in alert_ids if i in book.items]
        if not items:
            return None
        payload: dict[str, Any]
        if n.kind == "digest" or (resolved and n.send_at > as_of):
            by_account: dict[str, list[AlertItem]] = defaultdict(list)
            for item in items:
                by_account[book.account_of[item.alert_id]].append(item)
            sections = [
                DigestSection(snapshots[a], () if resolved else tuple(its), tuple(its) if resolved else ())
                for a, its in by_account.items()
                if a in snapshots
            ]
            day = n.send_at.astimezone(ZoneInfo(timezone)).date()
            payload = digest_payload(day, sections, to=to, locale=locale, timezone=timezone)
        else:
            if n.account_id is None or n.account_id not in snapshots:
                return None
            payload = message_payload(
                self._message(n, items, book, snapshots[n.account_id], kams, as_of),
                to=to,
                locale=locale,
                timezone=timezone,
            )
        return OutboxRow(n.kind, n.channel, n.recipient, kam_id, alert_ids, payload, n.send_at)

    def _message(
        self,
        n: PlannedNotification,
        items: Sequence[AlertItem],
        book: _Book,
        account: AccountSnapshot,
        kams: Mapping[str, Kam],
        as_of: datetime,
    ) -> AlertMessage:
        if n.kind == "resolved":
            return AlertMessage("resolved", account, tuple(items))
        if n.kind in ("escalation", "reminder"):
            owner = kams.get(account.owner_kam_id or "")
            kam_name = owner.name if n.kind == "escalation" and owner is not None else None
            return AlertMessage(n.kind, account, tuple(items), kam_name=kam_name)
        main = tuple(i for i in items if i.severity == "critical") or tuple(items[:1])
        folded = tuple(i for i in items if i not in main)
        new, cleared = book.since_last(account.account_id, {i.alert_id for i in items})
        return AlertMessage("immediate", account, main, folded, new, cleared)

    def _emit(self, rows: Sequence[OutboxRow]) -> None:
        lines = []
        for r in rows:
            rendered = render_payloads([r.payload], send_channel(r.channel), base_url=self.base_url)
            doc: dict[str, Any] = {
                "kind": r.kind,
                "format": r.payload.get("format"),
                "channel": r.channel,
                "recipient": r.recipient,
                "to": r.payload.get("to"),
                "send_after": r.send_after.isoformat(),
                "alert_ids": list(r.alert_ids),
            }
            if rendered.email is not None:
                doc["email"] = {"subject": rendered.email.subject, "text": rendered.email.text}
            if rendered.slack is not None:
                doc["slack"] = rendered.slack
            if self.notify == "log":
                subject = rendered.email.subject if rendered.email else (rendered.slack or {}).get("text")
                log.info(
                    "notification %s via %s to %s at %s: %s", r.kind, r.channel, r.recipient, r.send_after, subject
                )
            lines.append(orjson.dumps(doc))
        if self.notify == "file" and self.file is not None and lines:
            with self.file.open("ab") as out:
                out.write(b"\n".join(lines) + b"\n")


def send_channel(channel: str) -> Literal["slack", "email", "team_channel"]:
    if channel == "email":
        return "email"
    return "team_channel" if channel == "team_channel" else "slack"


def _may_escalate(a: OpenAlert) -> bool:
    return (
        a.severity == "critical"
        and a.state == "firing"
        and a.escalated_at is None
        and a.last_notified_at is not None
        and a.clearing_since is None
    )


@dataclass
class _Book:
    """Alert ids and display items by dedup key, once the changes are applied."""

    live: dict[str, int]
    gone: dict[str, int]
    items: dict[int, AlertItem]
    open_alerts: Sequence[OpenAlert]
    changes: Changes
    account_of: dict[int, str] = field(default_factory=dict)

    def id_of(self, key: str, *, resolved: bool = False) -> int:
        if resolved and key in self.gone:
            return self.gone[key]
        return self.live[key] if key in self.live else self.gone[key]

    def since_last(self, account_id: str, shown: set[int]) -> tuple[tuple[AlertItem, ...], tuple[AlertItem, ...]]:
        """What changed on the account since the last message its KAM got about it: alerts opened since
        (not already in this message), alerts resolved now. Nothing for a first message."""
        previous = max(
            (a.last_notified_at for a in self.open_alerts if a.account_id == account_id and a.last_notified_at),
            default=None,
        )
        if previous is None:
            return (), ()
        new = tuple(
            sorted(
                (
                    i
                    for k, i_id in self.live.items()
                    if (i := self.items.get(i_id)) is not None
                    and self.account_of.get(i_id) == account_id
                    and i_id not in shown
                    and i.fired_at > previous
                ),
                key=lambda i: (i.fired_at, i.alert_id),
            )
        )
        cleared = tuple(self.items[r.alert_id] for r in self.changes.resolved if r.account_id == account_id)
        return new, cleared


def _delivery_updates(plan: Sequence[PlannedNotification], book: _Book) -> list[DeliveryUpdate]:
    """Each planned alert's delivery; immediate and digest ones are stamped with their send time (the budget
    counts those, the escalation delay starts there); a folded one points at the alert it is folded into."""
    notified: dict[str, datetime] = {}
    parent: dict[str, str] = {}
    for n in plan:
        if n.kind in ("immediate", "digest") and n.channel != "team_channel":
            for key in n.alert_dedup_keys:
                notified[key] = min(notified.get(key, n.send_at), n.send_at)
        if n.kind == "folded" and n.folded_into is not None:
            parent[n.alert_dedup_keys[0]] = n.folded_into
    updates = []
    for key, delivery in sorted(deliveries(plan).items()):
        if key not in book.live:
            continue
        folded_into = book.live.get(parent[key]) if delivery == "folded" and key in parent else None
        at = notified.get(key) if delivery != "folded" else None
        updates.append(DeliveryUpdate(book.live[key], delivery, at, folded_into))
    return updates


def snapshot_of(
    score: HealthScore,
    account: repo.AccountRow,
    level_since: datetime | None,
    health_before: Mapping[str, repo.PastHealth],
    as_of: datetime,
) -> AccountSnapshot:
    return AccountSnapshot(
        account_id=score.account_id,
        name=account.name,
        tier=account.tier,
        arr=account.arr,
        currency=account.currency,
        renewal_date=account.renewal_date,
        owner_kam_id=account.owner_kam_id,
        risk=score.risk,
        level=score.level,
        risk_7d_ago=past.risk if (past := health_before.get(score.account_id)) is not None else None,
        level_since=level_since,
        drivers=score.drivers,
        as_of=as_of,
        components=component_risks(score),
        components_7d_ago=past.components if past is not None else {},
    )


def stored_snapshot(account: repo.AccountRow, health: repo.HealthRow, risk_before: float | None) -> AccountSnapshot:
    level = health.level if health.level in LEVELS else "low"
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


def build_alerting(
    settings: Settings,
    *,
    notify: NotifyMode,
    file: Path | None = None,
    config: AlertsConfig | None = None,
    metrics: Metrics | None = None,
) -> Alerting:
    """The engine's ``on_scores`` hook (``HealthEngine(db, cfg, on_scores=build_alerting(...))``).

    ``notify="send"`` for live services (worker, demo, API ingestion), ``"none"`` for replay and backtest,
    ``"log"`` / ``"file"`` (with ``file``) to see what would have been sent."""
    if notify not in NOTIFY_MODES:
        raise ValueError(f"notify must be one of {', '.join(NOTIFY_MODES)}")
    if notify == "file" and file is None:
        raise ValueError('notify="file" needs a file')
    channels = set()
    if slack_configured(settings):
        channels |= {"slack", "team_channel"}
    if email_configured(settings):
        channels.add("email")
    if notify == "send" and not channels:
        log.warning("no Slack nor SMTP configured: alerts are recorded but no notification is queued")
    return Alerting(
        config=config or alerts_config(settings),
        notify=notify,
        base_url=settings.public_url,
        channels=frozenset(channels),
        file=file,
        metrics=metrics,
    )
