"""Nothing dropped silently: routing follows the recipient's contact points whatever the scoring process has
configured; what the alerter cannot send is undeliverable (counted, kept with the reason), what keeps failing
past the outage window is failed; both are re-sent on demand and then delivered once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.messages import AlertItem, AlertMessage
from alerts.model import OutboxRow
from alerts.outbox import message_payload
from alerts.repository import queue as outbox
from services.alerter.delivery import Alerter
from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from tests.integration.scenario import Clock, go_critical, rows
from tests.integration.servers import SlackStandIn, SmtpServer
from tests.processes import free_port
from tests.unit.alerts.helpers import snapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def row(n: int, channel: str, to: str) -> OutboxRow:
    item = AlertItem(n, f"acc-{n}:usage_drop", "usage_drop", "warning", "Usage down", "Usage en baisse", NOW)
    payload = message_payload(AlertMessage("immediate", snapshot(), (item,)), to=to, locale="en", timezone="UTC")
    return OutboxRow("immediate", channel, f"kam-{n}", f"kam-{n}", (n,), payload, NOW)


async def queue(db: Database, rows_: list[OutboxRow]) -> list[int]:
    async with db.transaction() as conn:
        return await outbox.enqueue(conn, rows_, NOW)


async def test_a_scoring_process_without_slack_nor_smtp_still_queues_every_channel(
    db: Database, settings: Settings
) -> None:
    # As deployed: the worker (or the API) scores with no Slack or SMTP setting; the alerter has them.
    assert settings.slack_bot_token is None
    assert settings.smtp_host is None
    await go_critical(db, build_alerting(settings, notify="send"))
    queued = await rows(db, "SELECT channel, recipient, payload->>'to' FROM notifications ORDER BY 1")
    assert queued == [
        ("email", "kam-lea", "lea@example.com"),
        ("slack", "kam-lea", "ULEA"),
        ("team_channel", "#key-accounts-alerts", "#key-accounts-alerts"),
    ]


async def test_a_channel_the_alerter_lacks_is_undeliverable_then_retried_once_configured(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    email_id, slack_id = await queue(db, [row(1, "email", "kam1@example.com"), row(2, "slack", "U2")])
    without_slack = alert_settings.model_copy(update={"slack_bot_token": None, "slack_webhook_url": None})
    metrics = Metrics.create()
    alerter = Alerter.from_settings(db, without_slack, clock=Clock(NOW), metrics=metrics)

    assert await alerter.run_until_idle() == 2
    assert smtp.inbox.notification_ids() == [email_id]
    [(status, error)] = await rows(db, "SELECT status, last_error FROM notifications WHERE channel = 'slack'")
    assert status == "undeliverable"
    assert "KAMWATCH_SLACK_BOT_TOKEN" in error
    undeliverable = metrics.notifications_total.labels(channel="slack", result="undeliverable")
    assert undeliverable._value.get() == 1
    await alerter.sample()
    assert metrics.outbox_unsent.labels(status="undeliverable")._value.get() == 1
    assert await alerter.run_until_idle() == 0  # given up on: not retried by itself

    async with db.transaction() as conn:
        assert [n.id for n in await outbox.unsent(conn)] == [slack_id]
        assert await outbox.retry(conn, NOW, ids=[email_id, slack_id]) == [slack_id]  # a sent one stays sent
    configured = Alerter.from_settings(db, alert_settings, clock=Clock(NOW), metrics=metrics)
    assert await configured.run_until_idle() == 1
    assert [r.body["channel"] for r in slack.requests] == ["U2"]
    assert smtp.inbox.notification_ids() == [email_id]
    assert await rows(db, "SELECT DISTINCT status FROM notifications") == [("sent",)]
    await configured.sample()
    assert metrics.outbox_unsent.labels(status="undeliverable")._value.get() == 0


async def test_an_address_that_is_not_one_mailbox_is_undeliverable_and_stops_nothing_else(
    db: Database, alert_settings: Settings, smtp: SmtpServer
) -> None:
    bad = ["lea@example.com, eve@example.org", "lea@example.com\r\nBcc: eve@example.org", "not-an-address"]
    ids = await queue(db, [row(n, "email", to) for n, to in enumerate([*bad, "Léa <lea@example.com>"], start=1)])
    alerter = Alerter.from_settings(db, alert_settings, clock=Clock(NOW))
    assert await alerter.run_until_idle() == 4

    assert smtp.inbox.notification_ids() == [ids[-1]]  # only the good one, to that one address
    [mail] = smtp.inbox.messages
    assert mail["To"].addresses[0].addr_spec == "lea@example.com"
    assert "eve@example.org" not in str(mail)
    statuses = await rows(
        db, "SELECT id, status, last_error LIKE 'undeliverable: not %' FROM notifications ORDER BY id"
    )
    assert statuses == [(i, "undeliverable", True) for i in ids[:-1]] + [(ids[-1], "sent", None)]


async def test_failing_past_the_outage_window_is_failed_and_retry_sends_it(
    db: Database, alert_settings: Settings
) -> None:
    port = free_port()  # the SMTP server is down
    settings = alert_settings.model_copy(update={"smtp_port": port, "alerter_retry_window_s": 3 * 3600.0})
    [notification_id] = await queue(db, [row(1, "email", "kam1@example.com")])
    clock = Clock(NOW)
    alerter = Alerter.from_settings(db, settings, clock=clock)
    alerter.jitter = lambda: 0.0
    while clock.now <= NOW + timedelta(hours=3):
        await alerter.run_until_idle()
        clock.advance(minutes=10)
    [(status, attempts, since, last_try)] = await rows(
        db,
        "SELECT n.status, n.attempts, n.failing_since, max(a.at) FROM notifications n "
        "JOIN notification_attempts a ON a.notification_id = n.id GROUP BY 1, 2, 3",
    )
    assert (status, since) == ("failed", NOW)
    assert last_try == NOW + timedelta(hours=3)  # the last try falls on the window's end
    assert attempts > 1

    server = SmtpServer(port).start()
    try:
        async with db.transaction() as conn:
            assert await outbox.retry(conn, clock.now, statuses=["failed"]) == [notification_id]
        assert await alerter.run_until_idle() == 1
        assert await alerter.run_until_idle() == 0
    finally:
        server.stop()
    assert server.inbox.notification_ids() == [notification_id]
    assert await rows(db, "SELECT status, attempts, failing_since FROM notifications") == [("sent", 1, None)]
