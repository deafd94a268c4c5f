"""The escalation check, apart from any scoring: critical alerts left unacknowledged too long go to the KAM's
manager (with a reminder to the KAM), whether or not their account was rescored. Run by ``kamwatch alerter``."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from alerts import compose
from alerts.policy import plan_notifications
from alerts.reconcile import Changes
from alerts.repository import changes as alert_rows
from services.flows.notifying import TREND_DAYS, Notifier, Outcome


async def check_escalations(conn: asyncpg.Connection, notifier: Notifier, as_of: datetime) -> Outcome:
    """Escalate what is overdue at ``as_of``, inside the caller's transaction."""
    # load
    await alert_rows.reopen_ended_snoozes(conn, as_of)
    delay = timedelta(hours=notifier.config.policy.escalation_delay_hours)
    candidates, items = await alert_rows.lock_escalation_candidates(conn, as_of - delay)
    if not candidates:
        return Outcome()
    account_ids = sorted({a.account_id for a in candidates})
    snapshots = await alert_rows.load_stored_snapshots(conn, account_ids, as_of - timedelta(days=TREND_DAYS))
    kams = await alert_rows.load_kams(conn, sorted({s.owner_kam_id for s in snapshots.values() if s.owner_kam_id}))
    # decide
    plan = plan_notifications(Changes(), candidates, kams, snapshots, {}, as_of, notifier.config)
    book = compose.Book.after(Changes(), candidates, items, {})
    # write
    queued, escalated = await notifier.write(conn, plan, book, snapshots, kams, as_of)
    notifier.count(Changes(), candidates, plan)
    return Outcome(planned=len(plan.notifications), queued=queued, escalated=escalated)
