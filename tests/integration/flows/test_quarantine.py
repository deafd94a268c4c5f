"""One account never stops the others: a poisoned account (planted in the tables, as an unforeseen bug would
leave it) is set aside by the drain, the sweep and HTTP-style ingestion, which go on with every other account;
it is skipped until released, and ``retry_quarantined`` takes it back once fixed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from health_engine.config import load_scoring_config
from health_engine.quarantine import list_quarantined
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from tests.events import event, records
from tests.integration.scenario import rows

START = datetime(2026, 1, 5, tzinfo=UTC)
AS_OF = START + timedelta(days=30)
ACCOUNTS = ("acme", "globex", "initech", "umbrella")


def profile(subject: str, owner: str) -> dict[str, Any]:
    data = {"name": subject.title(), "owner_kam_id": owner, "arr": "100000", "currency": "EUR", "tier": "strategic"}
    return event("account", subject, START, data)


def kam(kam_id: str, timezone: str = "Europe/Paris") -> dict[str, Any]:
    data = {"name": kam_id, "email": f"{kam_id}@example.com", "locale": "fr", "timezone": timezone}
    return event("kam", kam_id, START, data)


def activity(subject: str, day: int) -> list[dict[str, Any]]:
    invoice = {"invoice_id": f"I-{subject}", "status": "paid", "amount": "10", "currency": "EUR"}
    return [
        event("usage", subject, START + timedelta(days=day, hours=10), {"quantity": 5, "user_id": "u1"}),
        event("payment", subject, START + timedelta(days=day), {**invoice, "due_date": "2026-01-20"}),
    ]


async def seeded(db: Database) -> Pipeline:
    """Four accounts, two KAMs; stored only (nothing scored yet)."""
    documents = [kam("kam-1"), kam("kam-2"), *(profile(a, "kam-2" if a == "umbrella" else "kam-1") for a in ACCOUNTS)]
    for account in ACCOUNTS:
        documents += activity(account, 3)
    store = Pipeline(db)
    await store.ingest(records(*documents), ingress="kafka")
    return store


async def poison_payment(db: Database, account: str) -> None:
    """A payment time no event can carry any more (after 9999-12-31 in UTC): loading it overflows."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE invoices SET paid_at = '9999-12-31 23:59:59-05' WHERE account_id = $1", account)


async def health(db: Database) -> dict[str, datetime]:
    return dict(await rows(db, "SELECT account_id, as_of FROM account_health"))


async def quarantined(db: Database) -> dict[str, tuple[str, str, int]]:
    async with db.transaction() as conn:
        return {q.account_id: (q.stage, q.trigger, q.failures) for q in await list_quarantined(conn)}


async def test_a_poisoned_account_is_set_aside_and_the_drain_the_sweep_and_later_ingests_go_on(
    db: Database, settings: Settings
) -> None:
    await seeded(db)
    await poison_payment(db, "globex")
    metrics = Metrics.create()
    engine = HealthEngine(db, load_scoring_config(None), metrics=metrics)

    scored = await engine.rescore_pending(AS_OF)

    assert scored == 3
    assert await health(db) == {"acme": AS_OF, "initech": AS_OF, "umbrella": AS_OF}
    assert await quarantined(db) == {"globex": ("scoring", "event", 1)}
    assert await rows(db, "SELECT count(*) FROM rescore_queue") == [(0,)]
    async with db.transaction() as conn:
        [entry] = await list_quarantined(conn)
    assert "Error" in entry.error or "Overflow" in entry.error
    assert entry.as_of == AS_OF
    assert len(entry.events) == 3
    assert [e["type"] for e in entry.events][-1] == "kamwatch.account.v1"  # its events, newest first
    assert metrics.quarantines_total.labels(stage="scoring")._value.get() == 1

    # Later ingestion (HTTP style: rescored before answering) for the poisoned account and another one.
    later = AS_OF + timedelta(days=1)
    pipeline = Pipeline(db, engine=engine)
    result = await pipeline.ingest(records(*activity("globex", 20), *activity("acme", 20)), ingress="http", as_of=later)
    assert [r.status for r in result.results] == ["accepted"] * 4
    assert (await health(db))["acme"] == later
    assert "globex" not in await health(db)
    assert (await quarantined(db))["globex"][2] == 1  # skipped, not failing again and again

    # The sweep covers every shard and every other account.
    swept_at = AS_OF + timedelta(days=2)
    report = await engine.sweep(swept_at, shards=4)
    assert report.shards == 4
    assert report.accounts == 4  # the shard's accounts, the quarantined one skipped inside
    assert await health(db) == {"acme": swept_at, "initech": swept_at, "umbrella": swept_at}

    # Fixed, it is taken back.
    async with db.transaction() as conn:
        await conn.execute("UPDATE invoices SET paid_at = NULL, due_date = '2026-01-20' WHERE account_id = 'globex'")
    released, still = await engine.retry_quarantined([], swept_at)
    assert (released, still) == (["globex"], [])
    assert await quarantined(db) == {}
    assert (await health(db))["globex"] == swept_at


async def test_an_account_whose_alerting_fails_is_set_aside_and_the_others_are_alerted(
    db: Database, settings: Settings
) -> None:
    store = await seeded(db)
    # umbrella's champion leaves (a strategic account: high risk, an alert to plan for its KAM)
    added = {"contact_id": "c1", "change": "added", "role": "champion", "name": "Ann"}
    left = {**added, "change": "left_company"}
    departure = [event("contact_change", "umbrella", START, added), event("contact_change", "umbrella", AS_OF, left)]
    await store.ingest(records(*departure), ingress="kafka")
    # A KAM time zone no event can carry any more: planning that KAM's notifications fails.
    async with db.transaction() as conn:
        await conn.execute("UPDATE kams SET timezone = 'Mars/Olympus' WHERE kam_id = 'kam-2'")
    engine = HealthEngine(db, load_scoring_config(None), build_alerting(settings, notify="none"))

    assert await engine.rescore_pending(AS_OF) == 3

    assert await quarantined(db) == {"umbrella": ("alerting", "event", 1)}
    # the alerting step's writes for the others were kept, the failed account's scores were rolled back with it
    assert set(await health(db)) == {"acme", "globex", "initech"}

    # Still broken: a retry keeps it, counting the failure, and says so.
    released, still = await engine.retry_quarantined(["umbrella"], AS_OF)
    assert (released, still) == ([], ["umbrella"])
    assert (await quarantined(db))["umbrella"] == ("alerting", "manual", 2)


async def test_infrastructure_failures_are_not_blamed_on_an_account(db: Database) -> None:
    await seeded(db)
    engine = HealthEngine(db, load_scoring_config(None))
    failed = False
    try:
        async with db.transaction() as conn:
            # the chunk's connection is killed under it: the unit of work fails, nothing is quarantined
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            async with db.transaction() as other:
                await other.execute("SELECT pg_terminate_backend($1)", pid)
            await engine.score_chunk(conn, list(ACCOUNTS), AS_OF, trigger="sweep")
    except Exception:
        failed = True
    assert failed
    assert await quarantined(db) == {}
