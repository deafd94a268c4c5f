"""The history ``kamwatch tune`` learns from, loaded from a real database: outcomes, and when lost accounts
closed (a churned account stays closed unless a later account event reopens it), so the in-memory replay stops
where the service stops."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.flows.ingest import Pipeline
from services.flows.outcome_history import history_of_database
from services.platform.database import Database
from tests.events import event, records
from tests.integration.scenario import START, history

CHURN = START + timedelta(days=60, hours=10)


def outcome(account: str, kind: str) -> dict[str, Any]:
    return event("outcome", account, CHURN, {"outcome": kind, "arr_before": "480000", "arr_after": "0"})


async def test_lost_accounts_close_in_the_history_unless_reopened(db: Database) -> None:
    reopened = {"name": "Initech", "owner_kam_id": "kam-lea", "arr": "90000", "currency": "EUR", "tier": "key"}
    events = [
        *history("acme", days=90),
        *history("initech", days=90),
        *history("globex", days=90),
        outcome("acme", "churned"),
        outcome("initech", "churned"),
        event("account", "initech", CHURN + timedelta(days=5), reopened),
        outcome("globex", "renewed"),
    ]
    await Pipeline(db).ingest(records(*events), ingress="http", as_of=START + timedelta(days=90))

    loaded = await history_of_database(db)

    assert {a: o.kind for a, o in loaded.outcomes.items()} == {
        "acme": "churned",
        "initech": "churned",
        "globex": "renewed",
    }
    assert dict(loaded.closed_at) == {"acme": CHURN}
    assert dict(loaded.only(["globex", "acme"]).closed_at) == {"acme": CHURN}
