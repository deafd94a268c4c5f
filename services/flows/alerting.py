"""The alerting of an evaluation: the health engine's ``on_scores`` hook, as load -> decide -> write.

Inside the engine's transaction, for the accounts just scored: load the accounts, their open alerts and the
notes waiting; decide (pure, in ``alerts``: rules, reconciliation, the notification plan and its messages);
write the alert changes, their transitions and the outbox rows in that same transaction, so an alert change
and its notification commit together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from alerts import compose
from alerts.config import AlertsConfig
from alerts.model import AccountSnapshot
from alerts.policy import NotificationPlan, local_day_bounds, plan_notifications, worth_planning
from alerts.reconcile import close_accounts, reconcile
from alerts.repository import changes as alert_rows
from alerts.rules import evaluate
from health_engine.model import HealthScore
from health_engine.repository import component_risks
from schemas.vocabulary import Closure
from services.flows.notifying import TREND_DAYS, Notifier, NotifyMode, Outcome
from services.platform.metrics import Metrics
from services.platform.settings import Settings


@dataclass
class Alerting:
    """The ``on_scores`` hook: call it like a function."""

    notifier: Notifier
    last: Outcome = field(default_factory=Outcome)

    @property
    def config(self) -> AlertsConfig:
        return self.notifier.config

    async def __call__(self, conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> None:
        self.last = await self.on_scores(conn, scores, as_of)

    async def on_scores(self, conn: asyncpg.Connection, scores: Sequence[HealthScore], as_of: datetime) -> Outcome:
        # load
        ids = sorted({s.account_id for s in scores})
        trend_from = as_of - timedelta(days=TREND_DAYS)
        await alert_rows.reopen_ended_snoozes(conn, as_of, ids)
        accounts = await alert_rows.load_accounts(conn, ids)
        level_since = await alert_rows.load_level_since(conn, ids)
        before = await alert_rows.load_health_at(conn, ids, trend_from)
        snapshots = {
            s.account_id: snapshot_of(s, accounts[s.account_id], level_since.get(s.account_id), before, as_of)
            for s in scores
            if s.account_id in accounts
        }
        open_alerts, items = await alert_rows.load_open_alerts(conn, sorted(snapshots))
        owners = sorted({a.owner_kam_id for a in accounts.values() if a.owner_kam_id})
        waiting, waiting_items = await alert_rows.load_waiting_cleared_notes(conn, owners)

        # decide what changed
        desired = [alert for snap in snapshots.values() for alert in evaluate(snap, self.config)]
        changes = reconcile(desired, open_alerts, as_of, self.config.resolve_hold)
        if not worth_planning(changes, open_alerts, waiting, as_of, self.config):
            return Outcome()

        # write it
        new_ids = await alert_rows.write_changes(conn, changes, as_of)
        # A key opened meanwhile by another transaction is theirs to notify.
        changes = replace(changes, opened=tuple(o for o in changes.opened if o.alert.dedup_key in new_ids))

        # load what the notifications need
        kams = await alert_rows.load_kams(conn, owners)
        windows = {
            k: local_day_bounds(kams[k].timezone, as_of)
            for k in {s.owner_kam_id for s in snapshots.values()}
            if k is not None and k in kams
        }
        sent_today = await alert_rows.immediate_sent_today(conn, windows)
        # The accounts of waiting notes not scored now appear in the digest as they stand.
        others = sorted({n.account_id for n in waiting} - set(snapshots))
        shown = {**await alert_rows.load_stored_snapshots(conn, others, trend_from), **snapshots}
        digest_news = await alert_rows.kams_with_pending_digest(conn, [k for k in owners if k in kams], as_of)

        # decide what to tell whom
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
        book = compose.Book.after(changes, open_alerts, items, new_ids, waiting, waiting_items)

        # write it
        queued, escalated = await self.notifier.write(conn, plan, book, shown, kams, as_of)
        self.notifier.count(changes, open_alerts, plan)
        return Outcome(
            len(changes.opened),
            len(changes.severity_changed),
            len(changes.resolved),
            len(plan.notifications),
            queued,
            escalated,
        )

    async def on_closed(self, conn: asyncpg.Connection, closed: Mapping[str, Closure], as_of: datetime) -> None:
        """Accounts found closed (lost): their open alerts resolve, dated the closure, with the reason, and
        nothing more is told about them (no "cleared" note now, none of those still waiting)."""
        ids = sorted(closed)
        open_alerts, _ = await alert_rows.load_open_alerts(conn, ids)
        changes = close_accounts(open_alerts, closed)
        if changes:
            await alert_rows.write_changes(conn, changes, as_of)
            self.notifier.count(changes, open_alerts, NotificationPlan())
        await alert_rows.drop_cleared_notes(conn, ids)


def snapshot_of(
    score: HealthScore,
    account: alert_rows.AccountRow,
    level_since: datetime | None,
    health_before: Mapping[str, alert_rows.PastHealth],
    as_of: datetime,
) -> AccountSnapshot:
    """What the alerting sees of a fresh score: the account, its risk and drivers, and a week ago."""
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
    return Alerting(Notifier.from_settings(settings, notify=notify, file=file, config=config, metrics=metrics))
