"""The alerter against real servers: retries through an SMTP outage, concurrent alerters, a killed alerter,
digest parts merged into one message, the incoming-webhook mode. Notifications are queued directly here."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, date, datetime, timedelta

from pydantic import SecretStr

from alerts.messages import AlertItem, AlertMessage, DigestSection
from alerts.model import OutboxRow
from alerts.outbox import digest_payload, message_payload
from alerts.repository import queue as outbox
from services.alerter.delivery import Alerter
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.scenario import Clock, rows
from tests.integration.servers import Inbox, SlackStandIn, SmtpServer
from tests.processes import free_port
from tests.unit.alerts.helpers import snapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def item(alert_id: int, account: str = "acme") -> AlertItem:
    return AlertItem(alert_id, f"{account}:usage_drop", "usage_drop", "warning", "Usage down", "Usage en baisse", NOW)


async def queue(db: Database, rows_: list[OutboxRow]) -> list[int]:
    async with db.transaction() as conn:
        return await outbox.enqueue(conn, rows_, NOW)


def email(n: int) -> OutboxRow:
    message = AlertMessage("immediate", snapshot(account_id=f"acc-{n}", name=f"Account {n}"), (item(n),))
    payload = message_payload(message, to=f"kam{n}@example.com", locale="en", timezone="UTC")
    return OutboxRow("immediate", "email", f"kam-{n}", f"kam-{n}", (n,), payload, NOW)


def alerter_for(db: Database, settings: Settings, clock: Clock, **changes: object) -> Alerter:
    alerter = Alerter.from_settings(db, settings, clock=clock)
    alerter.jitter = lambda: 0.0  # retry delays exactly base * 2^(n-1) / 2
    for name, value in changes.items():
        setattr(alerter, name, value)
    return alerter


async def test_an_smtp_outage_delays_but_delivers_every_notification_once(
    db: Database, alert_settings: Settings
) -> None:
    port = free_port()  # nothing listens there yet: the server is down
    settings = alert_settings.model_copy(update={"smtp_port": port, "alerter_backoff_base_s": 60.0})
    ids = await queue(db, [email(n) for n in range(1, 6)])
    clock = Clock(NOW)
    alerter = alerter_for(db, settings, clock)

    assert await alerter.run_until_idle() == 5
    assert await rows(db, "SELECT DISTINCT status, attempts, send_after FROM notifications") == [
        ("pending", 1, NOW + timedelta(seconds=30))
    ]
    assert await alerter.run_until_idle() == 0  # nothing due before the backoff
    clock.advance(seconds=30)
    assert await alerter.run_until_idle() == 5  # still down: second attempt, twice the delay
    assert await rows(db, "SELECT DISTINCT attempts, send_after FROM notifications") == [
        (2, clock.now + timedelta(seconds=60))
    ]

    server = SmtpServer(port).start()  # back
    try:
        clock.advance(seconds=60)
        assert await alerter.run_until_idle() == 5
        clock.advance(days=1)
        assert await alerter.run_until_idle() == 0
    finally:
        server.stop()
    assert sorted(server.inbox.notification_ids()) == ids  # each exactly once
    assert await rows(db, "SELECT DISTINCT status, attempts FROM notifications") == [("sent", 3)]
    attempts = await rows(db, "SELECT ok, count(*) FROM notification_attempts GROUP BY 1 ORDER BY 1")
    assert attempts == [(False, 10), (True, 5)]
    [(error,)] = await rows(db, "SELECT DISTINCT error FROM notification_attempts WHERE NOT ok")
    assert "Connect" in error or "refused" in error


async def test_a_notification_fails_after_the_last_attempt(db: Database, alert_settings: Settings) -> None:
    settings = alert_settings.model_copy(update={"smtp_port": free_port(), "alerter_retry_window_s": 3600.0})
    await queue(db, [email(1)])
    clock = Clock(NOW)
    alerter = alerter_for(db, settings, clock)
    await alerter.run_until_idle()
    clock.advance(days=1)
    await alerter.run_until_idle()
    clock.advance(days=1)
    assert await alerter.run_until_idle() == 0
    [(status, attempts, last_error)] = await rows(db, "SELECT status, attempts, last_error FROM notifications")
    assert (status, attempts) == ("failed", 2)
    assert last_error


async def test_two_alerters_never_send_the_same_notification(
    db: Database, alert_settings: Settings, smtp: SmtpServer
) -> None:
    ids = await queue(db, [email(n) for n in range(1, 31)])
    other = await Database.open(alert_settings)
    try:
        first = alerter_for(db, alert_settings, Clock(NOW), concurrency=3)
        second = alerter_for(other, alert_settings, Clock(NOW), concurrency=3)
        done = await asyncio.gather(first.run_until_idle(), second.run_until_idle())
    finally:
        await other.close()
    assert sum(done) == 30
    assert sorted(smtp.inbox.notification_ids()) == ids
    assert first.sent
    assert second.sent
    assert await rows(db, "SELECT DISTINCT status, attempts FROM notifications") == [("sent", 1)]


async def test_a_killed_alerter_loses_nothing(db: Database, alert_settings: Settings, smtp: SmtpServer) -> None:
    stalled = SmtpServer(inbox=Inbox(block=True)).start()
    [notification_id] = await queue(db, [email(1)])
    script = (
        "import asyncio\n"
        "from services.alerter.delivery import Alerter\n"
        "from services.platform.database import Database\n"
        "from services.platform.settings import Settings\n"
        "async def main():\n"
        "    db = await Database.open(Settings())\n"
        "    await Alerter.from_settings(db, Settings()).run_until_idle()\n"
        "asyncio.run(main())\n"
    )
    env = {
        **os.environ,
        "KAMWATCH_DATABASE_URL": alert_settings.database_url or "",
        "KAMWATCH_SMTP_HOST": "127.0.0.1",
        "KAMWATCH_SMTP_PORT": str(stalled.port),
        "KAMWATCH_SMTP_TIMEOUT_S": "600",
    }
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, env=env, cwd=os.getcwd())
    try:
        # The child has claimed the row and is stuck inside the SMTP conversation.
        assert await asyncio.to_thread(stalled.inbox.entered.wait, 30)
        async with db.transaction() as conn:
            assert await outbox.claim_due(conn, NOW + timedelta(days=1)) is None  # locked
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 10)
    finally:
        if child.returncode is None:
            child.kill()
        stalled.stop()
    alerter = alerter_for(db, alert_settings, Clock(NOW + timedelta(seconds=1)))
    for _ in range(50):  # the server notices the dead connection and rolls its transaction back
        if await alerter.run_until_idle():
            break
        await asyncio.sleep(0.1)
    assert smtp.inbox.notification_ids() == [notification_id]
    assert await rows(db, "SELECT status, attempts FROM notifications") == [("sent", 1)]
    assert await rows(db, "SELECT ok FROM notification_attempts") == [(True,)]


async def test_digest_parts_queued_apart_go_out_as_one_message(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    at = NOW + timedelta(hours=20)
    parts = []
    for channel, to in (("email", "lea@example.com"), ("slack", "ULEA")):
        for n, account in ((1, "acme"), (2, "globex")):
            section = DigestSection(snapshot(account_id=account, name=account.title()), (item(n, account),))
            payload = digest_payload(date(2026, 11, 21), [section], to=to, locale="en", timezone="Europe/Paris")
            parts.append(OutboxRow("digest", channel, "kam-lea", "kam-lea", (n,), payload, at))
    await queue(db, parts)
    alerter = alerter_for(db, alert_settings, Clock(at))
    assert await alerter.run_until_idle() == 2  # one claim per channel, each with both parts
    [mail] = smtp.inbox.messages
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Acme" in text
    assert "Globex" in text
    assert "2 alerts on 2 accounts" in str(mail["Subject"])
    [post] = slack.requests
    assert post.body["channel"] == "ULEA"
    assert "2 alerts on 2 accounts" in post.body["text"]
    assert await rows(db, "SELECT DISTINCT status FROM notifications") == [("sent",)]


async def test_the_incoming_webhook_carries_the_block_kit_payload(
    db: Database, alert_settings: Settings, slack: SlackStandIn
) -> None:
    settings = alert_settings.model_copy(
        update={"slack_bot_token": None, "slack_webhook_url": SecretStr(slack.webhook_url)}
    )
    message = AlertMessage("immediate", snapshot(), (item(7),))
    payload = message_payload(message, to="ULEA", locale="fr", timezone="Europe/Paris")
    await queue(db, [OutboxRow("immediate", "slack", "kam-lea", "kam-lea", (7,), payload, NOW)])
    assert await alerter_for(db, settings, Clock(NOW)).run_until_idle() == 1
    [post] = slack.requests
    assert post.path == "/webhook"
    assert post.body["blocks"][0]["type"] == "header"
    assert "Acme SA" in post.body["blocks"][0]["text"]["text"]
