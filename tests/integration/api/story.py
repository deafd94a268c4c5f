"""A portfolio that tells a story, scored as lived through the real pipeline: a strategic account going
critical through mixed signals (Acme), a key account lost three weeks ago after its KAM was warned (Globex,
in pounds), a healthy one in dollars (Initech) and one renewed with an expansion (Umbrella)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import insert, select

from alerts.repository import lifecycle
from health_engine.access import create_key
from schemas.tables import alert_transitions, alerts, notifications
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.flows.replay import replay_as_lived
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import event
from tests.integration.scenario import SCORING

NOW = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
START = NOW - timedelta(days=220)
LOST_AT = NOW - timedelta(days=21)

KAMS = {
    "kam-lea": {"name": "Léa Dubois", "email": "lea@example.com", "slack_user_id": "ULEA", "locale": "fr"},
    "kam-tom": {"name": "Tom Baker", "email": "tom@example.com", "slack_user_id": "UTOM", "locale": "en"},
    "kam-marc": {"name": "Marc Petit", "email": "marc@example.com", "locale": "en"},
}


@dataclass
class Story:
    admin_key: str
    rates: Path


def _kams() -> Iterator[dict[str, Any]]:
    for kam_id, profile in KAMS.items():
        manager = {"manager_kam_id": "kam-marc"} if kam_id != "kam-marc" else {}
        yield event("kam", kam_id, START, {**profile, **manager, "timezone": "Europe/Paris"})


def _usage(account: str, days: range, decline_from: int | None, users: int, daily: int) -> Iterator[dict[str, Any]]:
    for day in days:
        moment = START + timedelta(days=day)
        if moment.weekday() >= 5 or moment >= NOW:
            continue
        factor = 1.0 if decline_from is None or day < decline_from else 0.88 ** (day - decline_from)
        active = max(1, round(users * factor)) if factor > 0.05 else 0
        for user in range(active):
            quantity = max(1, round(daily * factor))
            yield event(
                "usage", account, moment + timedelta(hours=9 + user % 8), {"quantity": quantity, "user_id": f"u{user}"}
            )


def _contacts(account: str, people: list[tuple[str, str, str, str]]) -> Iterator[dict[str, Any]]:
    for contact_id, name, role, title in people:
        data = {"contact_id": contact_id, "change": "added", "role": role, "name": name, "title": title}
        yield event("contact_change", account, START + timedelta(hours=1), data)


def _days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def acme() -> list[dict[str, Any]]:
    """Strategic, EUR 480k, renewal in 70 days: usage fading for a month, an urgent outage ticket escalated,
    the champion gone, an NPS detractor, a business review declined, an invoice overdue, a new sponsor not met."""
    found = [
        event(
            "account",
            "acme",
            START,
            {
                "name": "Acme SA",
                "owner_kam_id": "kam-lea",
                "arr": "480000",
                "currency": "EUR",
                "tier": "strategic",
                "renewal_date": (NOW + timedelta(days=70)).date().isoformat(),
                "segment": "enterprise",
                "industry": "retail",
            },
        )
    ]
    found += _contacts(
        "acme",
        [
            ("acme-c1", "Claire Martin", "champion", "Head of Operations"),
            ("acme-c2", "Paul Roux", "executive_sponsor", "COO"),
            ("acme-c3", "Nina Weber", "decision_maker", "Procurement Director"),
            ("acme-c4", "Hugo Lambert", "technical_evaluator", "IT Architect"),
        ],
    )
    for day in (30, 95, 160):
        found.append(
            event("engagement", "acme", START + timedelta(days=day), {"kind": "business_review", "outcome": "attended"})
        )
    found += _usage("acme", range(220), 185, 6, 10)
    found += [
        event(
            "support_ticket",
            "acme",
            START + timedelta(days=40),
            {"ticket_id": "T-412", "status": "opened", "priority": "normal", "category": "billing"},
        ),
        event(
            "support_ticket",
            "acme",
            START + timedelta(days=43),
            {"ticket_id": "T-412", "status": "resolved", "priority": "normal", "csat": 5},
        ),
        event(
            "payment",
            "acme",
            START + timedelta(days=10),
            {
                "invoice_id": "INV-2026-04",
                "status": "issued",
                "amount": "120000.00",
                "currency": "EUR",
                "due_date": (START + timedelta(days=40)).date().isoformat(),
            },
        ),
        event(
            "payment",
            "acme",
            START + timedelta(days=38),
            {
                "invoice_id": "INV-2026-04",
                "status": "paid",
                "amount": "120000.00",
                "currency": "EUR",
                "due_date": (START + timedelta(days=40)).date().isoformat(),
            },
        ),
        event(
            "payment",
            "acme",
            _days_ago(50),
            {
                "invoice_id": "INV-2026-10",
                "status": "issued",
                "amount": "120000.00",
                "currency": "EUR",
                "due_date": _days_ago(20).date().isoformat(),
            },
        ),
        event(
            "contact_change",
            "acme",
            _days_ago(20),
            {"contact_id": "acme-c1", "change": "left_company", "role": "champion", "name": "Claire Martin"},
        ),
        event("engagement", "acme", _days_ago(15), {"kind": "nps_survey", "outcome": "responded", "nps_score": 3}),
        event("engagement", "acme", _days_ago(12), {"kind": "business_review", "outcome": "declined"}),
        event(
            "support_ticket",
            "acme",
            _days_ago(9),
            {"ticket_id": "T-981", "status": "opened", "priority": "urgent", "category": "outage"},
        ),
        event(
            "support_ticket",
            "acme",
            _days_ago(6),
            {"ticket_id": "T-981", "status": "escalated", "priority": "urgent", "category": "outage"},
        ),
        event(
            "contact_change",
            "acme",
            _days_ago(8),
            {
                "contact_id": "acme-c5",
                "change": "added",
                "role": "executive_sponsor",
                "name": "Marc Dupont",
                "title": "New COO",
            },
        ),
    ]
    return found


def globex() -> list[dict[str, Any]]:
    """Key, GBP 200k: the champion leaves, usage fades, an urgent ticket, a review missed, then lost."""
    lost = (LOST_AT - START).days
    found = [
        event(
            "account",
            "globex",
            START,
            {
                "name": "Globex Ltd",
                "owner_kam_id": "kam-tom",
                "arr": "200000",
                "currency": "GBP",
                "tier": "key",
                "renewal_date": LOST_AT.date().isoformat(),
                "segment": "enterprise",
            },
        )
    ]
    found += _contacts(
        "globex",
        [
            ("globex-c1", "Sarah Connor", "champion", "VP Engineering"),
            ("globex-c2", "James Wood", "decision_maker", "CFO"),
        ],
    )
    found.append(
        event("engagement", "globex", START + timedelta(days=20), {"kind": "business_review", "outcome": "attended"})
    )
    found += _usage("globex", range(lost), lost - 70, 4, 8)
    found += [
        event(
            "contact_change",
            "globex",
            LOST_AT - timedelta(days=75),
            {"contact_id": "globex-c1", "change": "left_company", "role": "champion", "name": "Sarah Connor"},
        ),
        event(
            "support_ticket",
            "globex",
            LOST_AT - timedelta(days=55),
            {"ticket_id": "G-77", "status": "opened", "priority": "urgent", "category": "data loss"},
        ),
        event(
            "support_ticket",
            "globex",
            LOST_AT - timedelta(days=50),
            {"ticket_id": "G-77", "status": "resolved", "priority": "urgent", "csat": 1},
        ),
        event("engagement", "globex", LOST_AT - timedelta(days=45), {"kind": "business_review", "outcome": "no_show"}),
        event(
            "engagement",
            "globex",
            LOST_AT - timedelta(days=40),
            {"kind": "nps_survey", "outcome": "responded", "nps_score": 2},
        ),
        event(
            "outcome",
            "globex",
            LOST_AT,
            {"outcome": "churned", "arr_before": "200000", "arr_after": "0", "reason": "moved to a competitor"},
        ),
    ]
    return found


def initech() -> list[dict[str, Any]]:
    found = [
        event(
            "account",
            "initech",
            START,
            {
                "name": "Initech Inc.",
                "owner_kam_id": "kam-lea",
                "arr": "90000",
                "currency": "USD",
                "tier": "standard",
                "renewal_date": (NOW + timedelta(days=200)).date().isoformat(),
            },
        )
    ]
    found += _contacts(
        "initech",
        [("initech-c1", "Bill Lumbergh", "champion", "VP"), ("initech-c2", "Peter Gibbons", "user", "Engineer")],
    )
    found += _usage("initech", range(220), None, 3, 6)
    return found


def umbrella() -> list[dict[str, Any]]:
    found = [
        event(
            "account",
            "umbrella",
            START,
            {
                "name": "Umbrella SE",
                "owner_kam_id": "kam-tom",
                "arr": "150000",
                "currency": "EUR",
                "tier": "key",
                "renewal_date": (NOW + timedelta(days=335)).date().isoformat(),
            },
        )
    ]
    found += _contacts(
        "umbrella",
        [
            ("umb-c1", "Alice Abernathy", "champion", "Director"),
            ("umb-c2", "Albert Wesker", "executive_sponsor", "CEO"),
        ],
    )
    found += _usage("umbrella", range(220), None, 4, 9)
    found.append(
        event(
            "outcome",
            "umbrella",
            NOW - timedelta(days=30),
            {"outcome": "expanded", "arr_before": "150000", "arr_after": "180000"},
        )
    )
    return found


async def build(db: Database, settings: Settings, tmp_path: Path) -> Story:
    """Replay the story as lived, then what people did: Globex's KAM told and acting on its alerts."""
    documents = sorted([*_kams(), *acme(), *globex(), *initech(), *umbrella()], key=lambda d: d["time"])
    path = tmp_path / "story.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in documents))
    engine = HealthEngine(db, SCORING, on_scores=build_alerting(settings, notify="none"))
    await replay_as_lived(Pipeline(db), engine, path, batch_size=2000)
    await engine.sweep(NOW, shards=1)
    async with db.unit_of_work() as conn:
        lost_alerts = (
            await conn.execute(
                select(alerts.c.id, alerts.c.fired_at, alerts.c.severity)
                .where(alerts.c.account_id == "globex", alerts.c.fired_at <= LOST_AT)
                .order_by(alerts.c.fired_at)
            )
        ).all()
        for alert_id, fired_at, _ in lost_alerts:
            for channel, recipient in (("slack", "UTOM"), ("email", "tom@example.com")):
                await conn.execute(
                    insert(notifications).values(
                        kind="immediate",
                        channel=channel,
                        recipient=recipient,
                        kam_id="kam-tom",
                        alert_ids=[alert_id],
                        payload={},
                        status="sent",
                        created_at=fired_at,
                        send_after=fired_at,
                        attempts=1,
                        sent_at=fired_at + timedelta(minutes=2),
                    )
                )
        if lost_alerts:
            first_id, first_at, _ = lost_alerts[0]
            await conn.execute(
                insert(alert_transitions).values(
                    alert_id=first_id,
                    at=first_at + timedelta(days=2),
                    from_state="firing",
                    to_state="acknowledged",
                    actor="kam-tom",
                    via="slack",
                )
            )
        key = await create_key(conn, name="story", scopes=["admin"], kam_id=None, created_by="tests", at=NOW)
    async with db.transaction() as driver:
        open_acme = await driver.fetch(
            "SELECT id FROM alerts WHERE account_id = 'acme' AND state = 'firing' ORDER BY id"
        )
        if len(open_acme) > 1:
            await lifecycle.transition(
                driver, open_acme[-1]["id"], "acknowledged", actor="kam-lea", via="slack", at=NOW - timedelta(hours=3)
            )
    rates = tmp_path / "rates.yaml"
    rates.write_text("as_of: '2026-11-19'\nrates:\n  GBP: 1.17\n  USD: 0.92\n")
    return Story(key.key, rates)
