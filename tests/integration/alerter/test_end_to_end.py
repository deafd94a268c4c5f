"""From events to a KAM's inbox: the engine's hook opens alerts and queues notifications in its transaction,
the alerter delivers them to a real SMTP server and a Slack stand-in; when the condition clears, the alerts
resolve themselves and a short "resolved" message follows. Also the notify modes of replay."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import orjson

from alerts.messages import ACK_ACTION, SNOOZE_ACTION
from alerts.policy import next_digest_time
from services.alerter.delivery import Alerter
from services.flows.alerting import build_alerting
from services.flows.evaluation import ScoresHook
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import records
from tests.integration.scenario import Clock, go_critical, replacements, rows, rules_with_hold
from tests.integration.servers import SlackStandIn, SmtpServer


async def test_critical_account_reaches_slack_and_email_then_resolves(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    # No hold before resolving: the alerts resolve as soon as their condition clears (the hold has its own tests).
    hook = build_alerting(alert_settings, notify="send", config=rules_with_hold(0))
    engine, as_of = await go_critical(db, hook)

    alerts = await rows(db, "SELECT dedup_key, severity, state, delivery FROM alerts ORDER BY dedup_key")
    assert alerts == [
        ("acme:champion_left:c1", "critical", "firing", "immediate"),
        ("acme:risk_level", "critical", "firing", "immediate"),
        # a warning while the account has a critical alert firing: folded into it, listed in its message
        ("acme:single_threaded", "warning", "firing", "folded"),
        ("acme:sponsor_left:c2", "critical", "firing", "immediate"),
    ]
    [(folded_into,)] = await rows(db, "SELECT folded_into FROM alerts WHERE dedup_key = 'acme:single_threaded'")
    assert folded_into is not None
    assert await rows(db, "SELECT count(*) FROM alert_transitions WHERE to_state = 'firing' AND via = 'engine'") == [
        (4,)
    ]
    # One message about the account per channel: a DM, an email, and the team channel (strategic account).
    queued = await rows(db, "SELECT kind, channel, recipient, cardinality(alert_ids) FROM notifications ORDER BY 2")
    assert queued == [
        ("immediate", "email", "kam-lea", 4),
        ("immediate", "slack", "kam-lea", 4),
        ("immediate", "team_channel", "#key-accounts-alerts", 4),
    ]

    alerter = Alerter.from_settings(db, alert_settings, clock=Clock(as_of + timedelta(seconds=5)))
    assert await alerter.run_until_idle() == 3
    assert await rows(db, "SELECT DISTINCT status, attempts FROM notifications") == [("sent", 1)]

    # Slack: chat.postMessage to the KAM's user id (a DM) and to the team channel, Block Kit with the buttons.
    posts = {r.body["channel"]: r for r in slack.requests}
    assert set(posts) == {"ULEA", "#key-accounts-alerts"}
    dm = posts["ULEA"]
    assert dm.path == "/api/chat.postMessage"
    assert dm.headers["Authorization"] == "Bearer xoxb-test"
    blocks = orjson.loads(dm.body["blocks"]) if isinstance(dm.body["blocks"], str) else dm.body["blocks"]
    assert blocks[0]["type"] == "header"
    assert "Acme SA" in blocks[0]["text"]["text"]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    alert_ids = {r[0] for r in await rows(db, "SELECT id FROM alerts WHERE severity = 'critical'")}
    assert {int(b["value"]) for b in buttons if b["action_id"] == ACK_ACTION} == alert_ids
    assert {b["action_id"] for b in buttons} >= {ACK_ACTION, SNOOZE_ACTION}
    text = orjson.dumps(blocks).decode()
    assert "Claire Martin" in text  # the top driver, in words
    assert "Également sur ce compte" in text  # in Léa's locale, with the folded alert listed

    # Email: multipart/alternative, text and HTML, in French, to Léa.
    [mail] = smtp.inbox.messages
    assert mail["To"] == "lea@example.com"
    assert mail["From"] == "kamwatch <alerts@example.com>"
    # RFC 5322 and 3834: dated, identified on the sender's domain, marked as written by a machine.
    assert parsedate_to_datetime(str(mail["Date"])).tzinfo is not None
    assert str(mail["Message-ID"]).endswith("@example.com>")
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "Acme SA" in str(mail["Subject"])
    assert mail.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert "Claire Martin" in parts["text/plain"]
    assert "https://kamwatch.example.com/widget/accounts/acme" in parts["text/html"]

    # New contacts, and 80 days later the departures have faded: every alert resolves by itself, and Léa is
    # told at once of the critical ones.
    later = as_of + timedelta(days=80)
    await Pipeline(db, engine=engine).ingest(
        records(*replacements(as_of + timedelta(days=30))), ingress="http", as_of=later
    )
    gone = await rows(db, "SELECT dedup_key, resolved_at FROM alerts WHERE state = 'resolved' ORDER BY 1")
    assert [k for k, _ in gone] == [k for k, *_ in alerts]
    assert {at for _, at in gone} == {later}
    transitions = await rows(db, "SELECT from_state, to_state, via FROM alert_transitions WHERE to_state = 'resolved'")
    assert transitions == [("firing", "resolved", "engine")] * 4
    # The folded warning was never sent on its own: no "resolved" news about it.
    resolved = await rows(
        db, "SELECT channel, cardinality(alert_ids) FROM notifications WHERE kind = 'resolved' ORDER BY 1"
    )
    assert resolved == [("email", 3), ("slack", 3), ("team_channel", 3)]
    # Meanwhile the new sponsor has not been met: a warning, for tomorrow's 9:00 (Paris) digest.
    assert await rows(db, "SELECT dedup_key, delivery FROM alerts WHERE state = 'firing'") == [
        ("acme:new_executive_unengaged", "digest")
    ]
    digest_at = next_digest_time("Europe/Paris", 9, later)
    assert await rows(db, "SELECT channel, send_after FROM notifications WHERE kind = 'digest' ORDER BY 1") == [
        ("email", digest_at),
        ("slack", digest_at),
    ]

    alerter.clock = Clock(later + timedelta(seconds=5))
    assert await alerter.run_until_idle() == 3  # the digest waits for its hour
    assert len(smtp.inbox.messages) == 2
    assert "✅" in orjson.dumps(slack.requests[-1].body).decode()
    alerter.clock = Clock(digest_at)
    assert await alerter.run_until_idle() == 2
    digest = smtp.inbox.messages[-1]
    assert "Résumé" in str(digest["Subject"])
    assert await rows(db, "SELECT DISTINCT status FROM notifications") == [("sent",)]


async def test_notify_none_records_alerts_and_their_delivery_but_queues_nothing(
    db: Database, alert_settings: Settings
) -> None:
    hook: ScoresHook = build_alerting(alert_settings, notify="none")  # what replay and backtest pass the engine
    await go_critical(db, build_alerting(alert_settings, notify="none"))
    assert hook is not None
    deliveries = await rows(db, "SELECT delivery, count(*), count(last_notified_at) FROM alerts GROUP BY 1 ORDER BY 1")
    assert deliveries == [("folded", 1, 0), ("immediate", 3, 3)]
    assert await rows(db, "SELECT count(*) FROM notifications") == [(0,)]


async def test_notify_file_appends_the_rendered_messages(
    db: Database, alert_settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "notifications.ndjson"
    await go_critical(db, build_alerting(alert_settings, notify="file", file=out))
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert sorted(line["channel"] for line in lines) == ["email", "slack", "team_channel"]
    email = next(line for line in lines if line["channel"] == "email")
    assert email["to"] == "lea@example.com"
    assert "Acme SA" in email["email"]["subject"]
    assert await rows(db, "SELECT count(*) FROM notifications") == [(0,)]
