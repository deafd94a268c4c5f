"""A churned account is closed: its alerts resolve with the reason, nothing more is told about it (no reminder,
escalation, team channel, digest or "cleared" note, not even one queued before the churn), it is no longer
scored, its ARR counts as lost rather than at risk; a later account event reopens it. On real PostgreSQL, with
the real local SMTP server and Slack stand-in."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from alerts.policy import next_digest_time
from services.alerter.delivery import Alerter
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.currency import ExchangeRates
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.observability import sample
from services.platform.settings import Settings
from tests.events import event, records
from tests.integration.scenario import SCORING, START, Clock, history, nps, rows, rules_with_hold
from tests.integration.servers import SlackStandIn, SmtpServer

T1 = START + timedelta(days=100, hours=10)  # Wednesday 15 April 2026, noon in Paris
CHURN = T1 + timedelta(hours=3)


def departures(at: datetime) -> list[dict[str, Any]]:
    champion = {"contact_id": "c1", "change": "left_company", "role": "champion", "name": "Claire Martin"}
    sponsor = {"contact_id": "c2", "change": "left_company", "role": "executive_sponsor", "name": "Paul Roux"}
    return [event("contact_change", "acme", at, champion), event("contact_change", "acme", at, sponsor)]


def churned(account: str, at: datetime) -> dict[str, Any]:
    data = {"outcome": "churned", "arr_before": "480000", "arr_after": "0", "reason": "moved to a competitor"}
    return event("outcome", account, at, data)


async def test_a_churned_account_is_closed_and_nothing_more_is_told_about_it(
    db: Database, alert_settings: Settings, smtp: SmtpServer, slack: SlackStandIn
) -> None:
    hook = build_alerting(alert_settings, notify="send", config=rules_with_hold(0))
    engine = HealthEngine(db, SCORING, on_scores=hook)
    pipeline = Pipeline(db, engine=engine)
    globex = {"name": "Globex", "owner_kam_id": "kam-lea", "arr": "120000", "currency": "EUR", "tier": "key"}
    accounts = [*history("acme"), *history("globex", tier="key"), event("account", "globex", START, globex)]
    await pipeline.ingest(records(*accounts), ingress="http", as_of=T1)
    # Globex: an NPS detractor, a warning for tomorrow's 9:00 digest. Acme: champion and sponsor gone, critical.
    await pipeline.ingest(records(nps(T1, 0, "globex")), ingress="http", as_of=T1 + timedelta(minutes=1))
    await pipeline.ingest(records(*departures(T1)), ingress="http", as_of=T1 + timedelta(minutes=2))
    alerter = Alerter.from_settings(db, alert_settings, clock=Clock(T1 + timedelta(minutes=3)))
    assert await alerter.run_until_idle() == 3  # Léa's DM and email, the team channel: about Acme
    digest_at = next_digest_time("Europe/Paris", 9, T1)
    assert await rows(db, "SELECT count(*) FROM notifications WHERE status = 'pending' AND kind = 'digest'") == [(2,)]
    open_before = await rows(db, "SELECT id FROM alerts WHERE state <> 'resolved' ORDER BY id")
    assert len(open_before) >= 4

    # Both churn three hours later.
    await pipeline.ingest(
        records(churned("acme", CHURN), churned("globex", CHURN)), ingress="http", as_of=CHURN + timedelta(minutes=1)
    )
    assert await rows(db, "SELECT count(*) FROM alerts WHERE state <> 'resolved'") == [(0,)]
    closing = await rows(
        db,
        "SELECT DISTINCT a.resolved_at, t.note, t.via FROM alerts a JOIN alert_transitions t ON t.alert_id = a.id "
        "WHERE t.to_state = 'resolved'",
    )
    assert closing == [(CHURN, "account lost on 2026-04-15: moved to a competitor", "engine")]
    assert await rows(db, "SELECT count(*) FROM notifications WHERE created_at > :c", c=T1 + timedelta(minutes=2)) == [
        (0,)
    ]

    # No escalation a day later, no digest the next morning (the one queued before the churn is cancelled).
    alerter.clock = Clock(CHURN + timedelta(hours=25))
    assert await alerter.check_escalations() == 0
    sent_before = (len(smtp.inbox.messages), len(slack.requests))
    alerter.clock = Clock(digest_at)
    assert await alerter.run_until_idle() == 2  # the digest, by Slack and by email: claimed, then cancelled
    assert (len(smtp.inbox.messages), len(slack.requests)) == sent_before
    assert await rows(db, "SELECT DISTINCT status FROM notifications WHERE kind = 'digest'") == [("cancelled",)]
    assert await rows(db, "SELECT count(*) FROM notifications WHERE sent_at > :c", c=CHURN) == [(0,)]

    # Sweeps go on: the closed accounts are neither scored nor alerted on.
    scored = await rows(db, "SELECT account_id, as_of FROM account_health ORDER BY 1")
    for day in range(1, 4):
        await engine.sweep(CHURN.replace(hour=0) + timedelta(days=day), shards=1)
    assert await rows(db, "SELECT account_id, as_of FROM account_health ORDER BY 1") == scored
    assert await rows(db, "SELECT count(*) FROM alerts WHERE state <> 'resolved'") == [(0,)]
    assert await rows(db, "SELECT count(*) FROM notifications WHERE created_at > :c", c=CHURN) == [(0,)]

    # Lost, not at risk.
    metrics = Metrics.create()
    await sample(db, metrics, CHURN + timedelta(days=4), ExchangeRates("EUR"))
    assert metrics.arr_at_risk.labels(tier="strategic", currency="EUR")._value.get() == 0.0
    assert metrics.accounts.labels(level="lost", tier="strategic")._value.get() == 1
    assert await rows(db, "SELECT account_id, status, outcome_reason FROM account_state ORDER BY 1") == [
        ("acme", "closed", "moved to a competitor"),
        ("globex", "closed", "moved to a competitor"),
    ]

    # Acme signs again: a new profile event reopens it, and the next sweep scores it.
    back = CHURN + timedelta(days=10)
    acme = {"name": "Acme SA", "owner_kam_id": "kam-lea", "arr": "300000", "currency": "EUR", "tier": "strategic"}
    await pipeline.ingest(records(event("account", "acme", back, acme)), ingress="http", as_of=back)
    assert await rows(db, "SELECT status, arr::int FROM account_state WHERE account_id = 'acme'") == [("open", 300000)]
    [(acme_scored,)] = await rows(db, "SELECT as_of FROM account_health WHERE account_id = 'acme'")
    assert acme_scored == back


async def test_a_renewal_carries_its_arr_and_the_next_renewal_until_a_newer_profile(
    db: Database, alert_settings: Settings
) -> None:
    profile = {
        "name": "Acme SA",
        "owner_kam_id": "kam-lea",
        "arr": "480000",
        "currency": "EUR",
        "tier": "strategic",
        "renewal_date": "2026-03-31",
    }
    outcome = {"outcome": "expanded", "arr_before": "480000", "arr_after": "530000", "reason": "added seats"}
    pipeline = Pipeline(db)
    await pipeline.ingest(
        records(*history("acme", days=5), event("account", "acme", START + timedelta(minutes=1), profile)),
        ingress="http",
    )
    await pipeline.ingest(records(event("outcome", "acme", T1, outcome)), ingress="http")
    assert await rows(db, "SELECT status, arr::int, renewal_date::text FROM account_state") == [
        ("open", 530000, "2027-03-31")
    ]
    newer = profile | {"arr": "500000", "renewal_date": "2027-06-30"}
    await pipeline.ingest(records(event("account", "acme", T1 + timedelta(days=1), newer)), ingress="http")
    assert await rows(db, "SELECT status, arr::int, renewal_date::text FROM account_state") == [
        ("open", 500000, "2027-06-30")
    ]
