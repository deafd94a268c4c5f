"""A warning that clears owes its KAM a short "cleared" note, but never a digest of its own: the note waits in
the database for the KAM's next digest with news, or goes out within seven days; ``kamwatch alerts list``
says which, all along. On real PostgreSQL, from events to the KAM's inbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alerts.policy import next_digest_time
from alerts.repository.reports import AlertFilters
from services.alerter.delivery import Alerter
from services.cli.alert_actions import list_alerts
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import event, records
from tests.integration.scenario import SCORING, START, Clock, history, nps, rows, rules_with_hold
from tests.integration.servers import SlackStandIn, SmtpServer

T1 = START + timedelta(days=100, hours=10)  # Wednesday 15 April 2026, noon in Paris


async def notes(db: Database) -> list[tuple[Any, ...]]:
    return await rows(
        db,
        "SELECT account_id, state, cleared_note_since, cleared_note_at FROM alerts "
        "WHERE rule = 'nps_detractor' ORDER BY id",
    )


async def resolved_rows(db: Database) -> list[tuple[Any, ...]]:
    return await rows(db, "SELECT channel, send_after, alert_ids FROM notifications WHERE kind = 'resolved' ORDER BY 1")


async def test_cleared_notes_wait_for_a_digest_with_news(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    # No hold before resolving: a detractor alert resolves as soon as a good answer comes (see test_resolve_hold).
    hook = build_alerting(alert_settings, notify="send", config=rules_with_hold(0))
    engine = HealthEngine(db, SCORING, on_scores=hook)
    pipeline = Pipeline(db, engine=engine)
    globex = {"name": "Globex", "owner_kam_id": "kam-lea", "arr": "120000", "currency": "EUR", "tier": "key"}
    accounts = [*history("acme", tier="key"), *history("globex", tier="key"), event("account", "globex", T1, globex)]
    await pipeline.ingest(records(*accounts), ingress="http", as_of=T1)
    # An NPS detractor at Acme: a warning, for Léa's next 9:00 (Paris) digest.
    await pipeline.ingest(records(nps(T1, 0, "acme")), ingress="http", as_of=T1 + timedelta(minutes=1))
    first_digest = next_digest_time("Europe/Paris", 9, T1)
    alerter = Alerter.from_settings(db, alert_settings, clock=Clock(first_digest))
    assert await alerter.run_until_idle() == 2  # Léa hears of it in Thursday's digest, by Slack and email

    # Friday, a glowing NPS answer: the detractor alert resolves, and with it the risk level it raised. Léa is
    # owed two "cleared" notes, but there is no news: nothing is queued, the notes wait in the database.
    t2 = T1 + timedelta(days=2)
    await pipeline.ingest(records(nps(t2, 10, "acme")), ingress="http", as_of=t2 + timedelta(minutes=1))
    assert await notes(db) == [("acme", "resolved", t2 + timedelta(minutes=1), None)]
    assert await resolved_rows(db) == []
    listed = {a["rule"]: a for a in await list_alerts(db, AlertFilters(account_id="acme"))}
    assert listed["nps_detractor"]["cleared_note_since"] == (t2 + timedelta(minutes=1)).isoformat()
    assert listed["nps_detractor"]["cleared_note_at"] is None  # waiting, and the list says so
    assert listed["nps_detractor"]["delivery"] == "digest"  # how the alert itself reached Léa

    # Saturday, news: a detractor at Globex. Sunday's digest carries it, and Acme's cleared notes ride with it.
    t3 = t2 + timedelta(days=1)
    await pipeline.ingest(records(nps(t3, 0, "globex")), ingress="http", as_of=t3 + timedelta(minutes=1))
    digest_at = next_digest_time("Europe/Paris", 9, t3)
    acme_ids = [r[0] for r in await rows(db, "SELECT id FROM alerts WHERE account_id = 'acme' ORDER BY dedup_key")]
    assert await resolved_rows(db) == [("email", digest_at, acme_ids), ("slack", digest_at, acme_ids)]
    assert await notes(db) == [
        ("acme", "resolved", t2 + timedelta(minutes=1), digest_at),
        ("globex", "firing", None, None),
    ]
    listed = {a["rule"]: a for a in await list_alerts(db, AlertFilters(account_id="acme"))}
    assert listed["nps_detractor"]["cleared_note_at"] == digest_at.isoformat()

    # One digest per channel, in Léa's French: Globex's new alerts, Acme's cleared ones.
    alerter.clock = Clock(digest_at)
    assert await alerter.run_until_idle() == 2
    mail = smtp.inbox.messages[-1]
    assert "Résumé" in str(mail["Subject"])
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    acme, globex = text.split("== Acme SA ==")[1], text.split("== Globex ==")[1].split("== Acme SA ==")[0]
    assert "Résolue" not in globex  # the news first
    assert globex.count("[Avertissement — ") == 2
    assert acme.count("Résolue\u00a0:") == 2
    assert "[Avertissement" not in acme
    assert "Resolved" not in text
    assert await rows(db, "SELECT DISTINCT status FROM notifications") == [("sent",)]

    # Globex's answer improves on Monday: that note waits, and with no news at all it still goes out within 7
    # days, in the last digest before they run out. A sweep every midnight, as the worker would.
    t4 = digest_at + timedelta(days=1, hours=3)
    await pipeline.ingest(records(nps(t4, 10, "globex")), ingress="http", as_of=t4)
    assert await resolved_rows(db) == [("email", digest_at, acme_ids), ("slack", digest_at, acme_ids)]
    midnight = t4.replace(hour=0) + timedelta(days=1)
    for day in range(8):
        await engine.sweep(midnight + timedelta(days=day), shards=1)
        queued = [r for r in await resolved_rows(db) if r[1] != digest_at]
        if queued:
            break
    flushed_at = queued[0][1]
    assert t4 + timedelta(days=6) < flushed_at <= t4 + timedelta(days=7)
    globex_ids = [r[0] for r in await rows(db, "SELECT id FROM alerts WHERE account_id = 'globex' ORDER BY dedup_key")]
    assert queued == [("email", flushed_at, globex_ids), ("slack", flushed_at, globex_ids)]
    assert await rows(
        db, "SELECT count(*) FROM alerts WHERE cleared_note_since IS NOT NULL AND cleared_note_at IS NULL"
    ) == [(0,)]
