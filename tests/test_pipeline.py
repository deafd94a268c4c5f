"""The ingestion pipeline on a real PostgreSQL: idempotency, order independence, late events, partitions."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ingestion.parsing import InboundRecord
from services.database import Database
from services.pipeline import Pipeline
from services.settings import Settings
from tests.dbutil import cloned_database, snapshot
from tests.events import at, encode, event, records


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


async def test_results_per_record_and_duplicates_within_and_across_batches(db: Database) -> None:
    pipeline = Pipeline(db)
    first = event("usage", "acme", at(2), {"user_id": "u1"}, id="same")
    other_source = event("usage", "acme", at(2), {"user_id": "u2"}, id="same", source="elsewhere")
    result = await pipeline.ingest(records(first, first, other_source, b"{oops"), ingress="http")
    again = await pipeline.ingest(records(first), ingress="replay")

    assert [r.status for r in result.results] == ["accepted", "duplicate", "accepted", "rejected"]
    assert again.results[0].status == "duplicate"
    assert await rows(db, "SELECT events, users FROM usage_daily") == [(2, ["u1", "u2"])]
    assert result.touched_accounts == {"acme"}
    assert again.touched_accounts == frozenset()


async def test_dead_letters_keep_raw_bytes_reason_field_and_origin_once(db: Database) -> None:
    pipeline = Pipeline(db)
    bad = encode(event("payment", "acme", at(2), {"invoice_id": "I", "status": "lost"}))
    batch = [InboundRecord(bad, "file:history.ndjson:7")]
    await pipeline.ingest(batch, ingress="replay")
    await pipeline.ingest(batch, ingress="replay")  # replaying the file again

    stored = await rows(db, "SELECT ingress, origin, field, reason, raw FROM dead_letters")
    assert len(stored) == 1
    ingress, origin, field, reason, raw = stored[0]
    assert (ingress, origin, field, bytes(raw)) == ("replay", "file:history.ndjson:7", "data.status", bad)
    assert "issued" in reason


async def test_late_event_lands_on_its_own_day(db: Database) -> None:
    pipeline = Pipeline(db)
    await pipeline.ingest(records(event("usage", "acme", at(20), {"quantity": 5})), ingress="http")
    late = event("usage", "acme", "2026-03-03T23:30:00-02:00", {"quantity": 2})  # 4 March in UTC
    await pipeline.ingest(records(late), ingress="http")

    assert await rows(db, "SELECT day::text, quantity FROM usage_daily ORDER BY day") == [
        ("2026-03-04", 2),
        ("2026-03-20", 5),
    ]


async def test_entities_take_the_state_of_their_latest_event_whatever_the_arrival_order(db: Database) -> None:
    pipeline = Pipeline(db)
    ticket = [
        event("support_ticket", "acme", at(1), {"ticket_id": "T", "status": "opened", "priority": "normal"}),
        event(
            "support_ticket", "acme", at(2), {"ticket_id": "T", "status": "escalated", "priority": "urgent", "csat": 1}
        ),
        event("support_ticket", "acme", at(5), {"ticket_id": "T", "status": "resolved", "priority": "urgent"}),
        event("support_ticket", "acme", at(6), {"ticket_id": "T", "status": "reopened", "priority": "high"}),
    ]
    invoice = [
        event(
            "payment",
            "acme",
            at(1),
            {"invoice_id": "I", "status": "issued", "amount": "100", "currency": "EUR", "due_date": "2026-03-31"},
        ),
        event(
            "payment",
            "acme",
            at(10),
            {"invoice_id": "I", "status": "failed", "amount": "100", "currency": "EUR", "due_date": "2026-03-31"},
        ),
    ]
    contact = [
        event("contact_change", "acme", at(1), {"contact_id": "C", "change": "added", "role": "champion", "name": "A"}),
        event("contact_change", "acme", at(9), {"contact_id": "C", "change": "left_company", "role": "champion"}),
    ]
    newest_first = list(reversed(ticket + invoice + contact))
    for document in newest_first:  # one batch each, newest first
        await pipeline.ingest(records(document), ingress="http")

    assert await rows(
        db, "SELECT status, priority, csat, escalations, reopenings, opened_at = first_seen_at FROM tickets"
    ) == [("reopened", "high", 1, 1, 1, True)]
    assert await rows(db, "SELECT status, failures, issued_at IS NOT NULL FROM invoices") == [("failed", 1, True)]
    assert await rows(db, "SELECT active, last_change, name, left_at IS NOT NULL FROM contacts") == [
        (False, "left_company", "A", True)
    ]


async def test_raw_events_are_partitioned_by_month(db: Database) -> None:
    pipeline = Pipeline(db)
    batch = records(
        event("usage", "acme", at(31, month=1)),
        event("usage", "acme", "2026-04-01T00:30:00+02:00"),  # still March in UTC
        event("kam", "kam-1", at(2, month=6), {"name": "K", "email": "k@example.com"}),
    )
    await pipeline.ingest(batch, ingress="replay")

    partitions = await rows(
        db,
        "SELECT c.relname, count(r.*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "LEFT JOIN raw_events r ON r.tableoid = c.oid WHERE i.inhparent = 'raw_events'::regclass "
        "GROUP BY 1 ORDER BY 1",
    )
    counts = dict(partitions)
    assert counts["raw_events_2026_01"] == 1
    assert counts["raw_events_2026_03"] == 1
    assert counts["raw_events_2026_06"] == 1
    assert set(counts) >= {"raw_events_2026_02", "raw_events_2026_04", "raw_events_2026_05"}
    assert await rows(db, "SELECT account_ids FROM rescore_queue") == [(["acme"],)]  # the KAM is not an account


# --- order independence, as a property ------------------------------------------------------------------

T0 = datetime(2026, 2, 1, tzinfo=UTC)
ACCOUNTS = ("a", "b")


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """A small mixed stream where several events touch the same entities at different times."""
    count = draw(st.integers(min_value=1, max_value=40))
    documents: list[bytes] = []
    for n in range(count):
        subject = draw(st.sampled_from(ACCOUNTS))
        moment = T0 + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 40)))
        kind = draw(st.sampled_from(["usage", "ticket", "invoice", "contact", "engagement", "account"]))
        entity = draw(st.sampled_from(["1", "2"]))
        maybe = draw(st.sampled_from([None, "x", "y"]))
        if kind == "usage":
            data: dict[str, Any] = {"quantity": draw(st.integers(0, 9)), "user_id": maybe}
            document = event("usage", subject, moment, data, id=f"e{n}")
        elif kind == "ticket":
            status = draw(st.sampled_from(["opened", "updated", "escalated", "reopened", "resolved", "closed"]))
            priority = draw(st.sampled_from(["low", "normal", "high", "urgent"]))
            data = {"ticket_id": entity, "status": status, "priority": priority, "category": maybe}
            document = event("support_ticket", subject, moment, data, id=f"e{n}")
        elif kind == "invoice":
            status = draw(st.sampled_from(["issued", "paid", "failed", "disputed"]))
            amount = str(draw(st.integers(1, 5)) * 100)
            data = {
                "invoice_id": entity,
                "status": status,
                "amount": amount,
                "currency": "EUR",
                "due_date": "2026-03-01",
            }
            document = event("payment", subject, moment, data, id=f"e{n}")
        elif kind == "contact":
            change = draw(st.sampled_from(["added", "updated", "role_changed", "removed", "left_company"]))
            role = draw(st.sampled_from(["champion", "executive_sponsor", "user"]))
            document = event(
                "contact_change",
                subject,
                moment,
                {"contact_id": entity, "change": change, "role": role, "name": maybe},
                id=f"e{n}",
            )
        elif kind == "engagement":
            outcome = draw(st.sampled_from(["attended", "declined", "no_show"]))
            document = event("engagement", subject, moment, {"kind": "meeting", "outcome": outcome}, id=f"e{n}")
        else:
            tier = draw(st.sampled_from(["strategic", "key"]))
            data = {"name": f"Acc {maybe}", "owner_kam_id": "k", "arr": "10", "currency": "EUR", "tier": tier}
            document = event("account", subject, moment, data, id=f"e{n}")
        documents.append(encode(document))
    return documents


async def ingest_in_batches(db: Database, documents: Sequence[bytes], sizes: Sequence[int]) -> None:
    pipeline = Pipeline(db)
    start, turn = 0, 0
    while start < len(documents):
        size = sizes[turn % len(sizes)]
        await pipeline.ingest([InboundRecord(d) for d in documents[start : start + size]], ingress="replay")
        start, turn = start + size, turn + 1


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=streams(), seed=st.integers(0, 2**32), sizes=st.lists(st.integers(1, 7), min_size=1, max_size=4))
async def test_shuffled_redelivered_stream_equals_one_in_order_pass(
    server_url: str, stream: list[bytes], seed: int, sizes: list[int]
) -> None:
    rng = random.Random(seed)
    messy = rng.sample(stream, len(stream)) + rng.choices(stream, k=len(stream) // 2)
    async with cloned_database(server_url) as in_order_url, cloned_database(server_url) as messy_url:
        in_order = await Database.open(Settings(database_url=in_order_url))
        shuffled = await Database.open(Settings(database_url=messy_url))
        try:
            await ingest_in_batches(in_order, stream, [len(stream)])
            await ingest_in_batches(shuffled, messy, sizes)
            assert await snapshot(shuffled) == await snapshot(in_order)
        finally:
            await in_order.close()
            await shuffled.close()
