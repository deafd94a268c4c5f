"""Escalation: a critical alert left unacknowledged past the delay goes to the KAM's manager, with a reminder to
the KAM; once, whoever notices first (the alerter's periodic check or the engine rescoring the account)."""

from __future__ import annotations

from datetime import timedelta

from alerts.repository import lifecycle
from services.alerter.delivery import Alerter
from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import Clock, go_critical, rows
from tests.integration.servers import SmtpServer


async def test_an_unacknowledged_critical_alert_is_escalated_once(
    db: Database, alert_settings: Settings, smtp: SmtpServer
) -> None:
    engine, as_of = await go_critical(db, build_alerting(alert_settings, notify="send"))
    [(ack_id,)] = await rows(db, "SELECT id FROM alerts WHERE dedup_key = 'acme:risk_level'")
    async with db.transaction() as conn:  # Léa acknowledges one of the three critical alerts
        await lifecycle.transition(
            conn, ack_id, "acknowledged", actor="kam-lea", via="api", at=as_of + timedelta(hours=1)
        )
    clock = Clock(as_of + timedelta(hours=23))
    alerter = Alerter.from_settings(db, alert_settings, clock=clock)

    assert await alerter.check_escalations() == 0  # 23 h: not yet
    clock.advance(hours=2)
    assert await alerter.check_escalations() == 2  # 25 h: the two left unacknowledged
    assert await alerter.check_escalations() == 0  # never twice
    await engine.rescore(["acme"], clock.advance(hours=1))  # nor when the engine rescores the account
    escalations = await rows(
        db,
        "SELECT kind, channel, recipient, count(*) FROM notifications WHERE kind IN ('escalation', 'reminder') "
        "GROUP BY 1, 2, 3 ORDER BY 1, 2",
    )
    # Marc (no Slack id) by email, Léa reminded on both her channels; one message per alert.
    assert escalations == [
        ("escalation", "email", "kam-marc", 2),
        ("reminder", "email", "kam-lea", 2),
        ("reminder", "slack", "kam-lea", 2),
    ]
    escalated = await rows(db, "SELECT dedup_key FROM alerts WHERE escalated_at IS NOT NULL ORDER BY 1")
    assert escalated == [("acme:champion_left:c1",), ("acme:sponsor_left:c2",)]
    notes = await rows(db, "SELECT note, via FROM alert_transitions WHERE note LIKE 'escalated%'")
    assert notes == [("escalated to kam-marc", "engine")] * 2

    assert await alerter.run_until_idle() == 3 + 6  # the first alerts, then the escalations and reminders
    to_marc = [m for m in smtp.inbox.messages if m["To"] == "marc@example.com"]
    assert len(to_marc) == 2
    assert "Escalation" in str(to_marc[0]["Subject"])
    assert "Léa Dubois" in to_marc[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_a_snoozed_alert_escalates_only_after_its_snooze_ends(db: Database, alert_settings: Settings) -> None:
    _, as_of = await go_critical(db, build_alerting(alert_settings, notify="none"))
    ids = [r[0] for r in await rows(db, "SELECT id FROM alerts WHERE severity = 'critical'")]
    async with db.transaction() as conn:
        for alert_id in ids:
            await lifecycle.transition(
                conn,
                alert_id,
                "acknowledged",
                actor="kam-lea",
                via="slack",
                at=as_of,
                snoozed_until=as_of + timedelta(days=7),
            )
    clock = Clock(as_of + timedelta(days=7, hours=1))
    alerter = Alerter.from_settings(db, alert_settings, clock=clock)
    assert await alerter.check_escalations() == 0  # the snooze just ended: the alerts fire again, the delay restarts
    assert await rows(db, "SELECT DISTINCT state FROM alerts WHERE severity = 'critical'") == [("firing",)]
    assert await rows(db, "SELECT count(*) FROM alert_transitions WHERE note = 'snooze ended'") == [(3,)]
    clock.advance(hours=24)
    assert await alerter.check_escalations() == 3
