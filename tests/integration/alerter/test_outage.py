"""No notification is lost to an outage: the SMTP server down (connections refused) and Slack failing (HTTP 500)
for six hours (the old budget of 8 attempts gave up after about one), then back; every notification is
delivered exactly once. Real local servers, the alerter's clock moved by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from alerts.messages import AlertItem, AlertMessage, DigestSection
from alerts.model import OutboxRow
from alerts.outbox import digest_payload, message_payload
from alerts.repository import queue as outbox
from services.alerter.delivery import Alerter
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import Clock, rows
from tests.integration.servers import SlackStandIn, SmtpServer
from tests.unit.alerts.helpers import snapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OUTAGE = timedelta(hours=6)
OLD_MAX_ATTEMPTS = 8


def item(alert_id: int) -> AlertItem:
    return AlertItem(
        alert_id, f"acc-{alert_id}:usage_drop", "usage_drop", "warning", "Usage down", "Usage en baisse", NOW
    )


def message(n: int, channel: str, to: str) -> OutboxRow:
    body = AlertMessage("immediate", snapshot(account_id=f"acc-{n}", name=f"Account {n}"), (item(n),))
    payload = message_payload(body, to=to, locale="en", timezone="UTC")
    recipient = to if channel == "team_channel" else f"kam-{n}"
    return OutboxRow(
        "immediate", channel, recipient, None if channel == "team_channel" else recipient, (n,), payload, NOW
    )


def digest_part(n: int) -> OutboxRow:
    section = DigestSection(snapshot(account_id=f"acc-{n}", name=f"Account {n}"), (item(n),))
    payload = digest_payload(date(2026, 11, 20), [section], to="zoe@example.com", locale="en", timezone="UTC")
    return OutboxRow("digest", "email", "kam-zoe", "kam-zoe", (n,), payload, NOW)


async def test_smtp_and_slack_down_longer_than_the_old_budget_then_every_notification_goes_once(
    db: Database, alert_settings: Settings
) -> None:
    smtp = SmtpServer()  # not started: connections refused
    slack = SlackStandIn().start()
    slack.fail = True  # every call answered 500
    settings = alert_settings.model_copy(
        update={"smtp_port": smtp.port, "slack_api_base_url": slack.api_url, "smtp_timeout_s": 2.0}
    )
    emails = [message(n, "email", f"kam{n}@example.com") for n in range(1, 5)]
    dms = [message(n, "slack", f"U{n}") for n in range(5, 9)]
    team = [message(9, "team_channel", "#key-accounts")]
    digest = [digest_part(10), digest_part(11)]
    async with db.transaction() as conn:
        email_ids = await outbox.enqueue(conn, emails, NOW)
        await outbox.enqueue(conn, dms + team, NOW)
        digest_ids = await outbox.enqueue(conn, digest, NOW)

    clock = Clock(NOW)
    alerter = Alerter.from_settings(db, settings, clock=clock)
    alerter.jitter = lambda: 0.5
    while clock.now < NOW + OUTAGE:
        await alerter.run_until_idle()
        clock.advance(minutes=5)
    statuses = await rows(db, "SELECT DISTINCT status FROM notifications")
    assert statuses == [("pending",)]  # six hours of refusals, nothing given up on
    [(fewest,)] = await rows(db, "SELECT min(attempts) FROM notifications")
    assert fewest > OLD_MAX_ATTEMPTS  # the old budget would have failed them all

    smtp.start()
    slack.fail = False
    try:
        clock.advance(seconds=settings.alerter_backoff_cap_s)  # at most the capped backoff after the recovery
        assert await alerter.run_until_idle() == 10  # one claim per message, the digest's two parts as one
        clock.advance(days=2)
        assert await alerter.run_until_idle() == 0
    finally:
        smtp.stop()
        slack.stop()

    assert sorted(smtp.inbox.notification_ids()) == sorted(email_ids + digest_ids)  # each exactly once
    assert sorted(r.body["channel"] for r in slack.requests) == ["#key-accounts", "U5", "U6", "U7", "U8"]
    assert await rows(db, "SELECT DISTINCT status, failing_since FROM notifications") == [("sent", None)]
