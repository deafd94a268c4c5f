"""A key account that goes critical, its KAM and her manager, and the plumbing around them for the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from alerts.config import AlertsConfig, load_rules_config
from health_engine.config import load_scoring_config
from services.flows.alerting import Alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database
from tests.configs import RULES_PATH, SCORING_PATH
from tests.events import event, records

SCORING = load_scoring_config(SCORING_PATH)
START = datetime(2026, 1, 5, tzinfo=UTC)
DEPARTURE = START + timedelta(days=70)
LEA = {
    "name": "Léa Dubois",
    "email": "lea@example.com",
    "slack_user_id": "ULEA",
    "manager_kam_id": "kam-marc",
    "locale": "fr",
    "timezone": "Europe/Paris",
}
MARC = {"name": "Marc Petit", "email": "marc@example.com", "locale": "en", "timezone": "Europe/Paris"}


def rules_with_hold(days: float) -> AlertsConfig:
    """The tests' rules with another hold before auto-resolving (0: an alert resolves when its condition clears)."""
    config = load_rules_config(RULES_PATH)
    return config.model_copy(update={"policy": config.policy.model_copy(update={"resolve_hold_days": days})})


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def history(account: str = "acme", days: int = 200, tier: str = "strategic") -> list[dict[str, Any]]:
    """KAMs, a healthy strategic account with champion, sponsor and decision maker, steady daily usage."""
    profile = {"name": "Acme SA", "owner_kam_id": "kam-lea", "arr": "480000", "currency": "EUR", "tier": tier}
    found = [
        event("kam", "kam-lea", START, LEA),
        event("kam", "kam-marc", START, MARC),
        event("account", account, START, profile),
    ]
    for contact, role in (("c1", "champion"), ("c2", "executive_sponsor"), ("c3", "decision_maker")):
        found.append(event("contact_change", account, START, {"contact_id": contact, "change": "added", "role": role}))
    for day in range(days):
        for user in range(3):
            moment = START + timedelta(days=day, hours=9 + user)
            found.append(event("usage", account, moment, {"quantity": 10, "user_id": f"u{user}"}))
    return found


def departures(account: str = "acme") -> list[dict[str, Any]]:
    champion = {"contact_id": "c1", "change": "left_company", "role": "champion", "name": "Claire Martin"}
    sponsor = {"contact_id": "c2", "change": "left_company", "role": "executive_sponsor", "name": "Paul Roux"}
    return [event("contact_change", account, DEPARTURE, champion), event("contact_change", account, DEPARTURE, sponsor)]


def nps(at: datetime, score: int, account: str = "acme") -> dict[str, Any]:
    """An NPS survey answer (6 or less: a detractor)."""
    return event("engagement", account, at, {"kind": "nps_survey", "outcome": "responded", "nps_score": score})


def replacements(at: datetime, account: str = "acme") -> list[dict[str, Any]]:
    """A new champion and a new sponsor."""
    return [
        event("contact_change", account, at, {"contact_id": "c5", "change": "added", "role": "champion"}),
        event("contact_change", account, at, {"contact_id": "c6", "change": "added", "role": "executive_sponsor"}),
    ]


async def go_critical(db: Database, hook: Alerting, account: str = "acme") -> tuple[HealthEngine, datetime]:
    """Ingest the healthy history, then the champion and the sponsor leaving: the account turns critical.
    Returns the engine and the as-of time of the critical score."""
    engine = HealthEngine(db, SCORING, on_scores=hook)
    pipeline = Pipeline(db, engine=engine)
    await pipeline.ingest(records(*history(account)), ingress="http", as_of=DEPARTURE)
    as_of = DEPARTURE + timedelta(minutes=1)
    await pipeline.ingest(records(*departures(account)), ingress="http", as_of=as_of)
    return engine, as_of


async def rows(db: Database, query: str, **params: Any) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(r) for r in await conn.execute(text(query), params)]
