"""The ingestion pipeline on a real PostgreSQL: results, idempotency, dead letters, late events, merge rules,
partitions, the rescore queue, and order independence as a property."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ingestion.parsing import InboundRecord
from ingestion.pipeline import EventResult
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.dbutil import cloned_database
from tests.events import at, encode, event, records

NOW = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)


def pipeline_at_now(db: Database) -> Pipeline:
    return Pipeline(db, clock=lambda: NOW)


async def fetch(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


def ticket(
    subject: str,
    moment: datetime | str,
    ticket_id: str,
    status: str,
    priority: str = "high",
    *,
    id: str | None = None,
    **more: Any,
) -> dict[str, Any]:
    data = {"ticket_id": ticket_id, "status": status, "priority": priority, **more}
    return event("support_ticket", subject, moment, data, id=id)


def invoice(
    subject: str, moment: datetime | str, invoice_id: str, status: str, *, id: str | None = None, **more: Any
) -> dict[str, Any]:
    data = {"invoice_id": invoice_id, "status": status, "amount": "100.00", "currency": "EUR", "due_date": "2026-03-31"}
    return event("payment", subject, moment, {**data, **more}, id=id)


def contact(
    subject: str, moment: datetime | str, contact_id: str, change: str, role: str, **more: Any
) -> dict[str, Any]:
    return event("contact_change", subject, moment, {"contact_id": contact_id, "change": change, "role": role, **more})


def kam(kam_id: str, moment: datetime | str) -> dict[str, Any]:
    return event("kam", kam_id, moment, {"name": "Kim", "email": f"{kam_id}@example.com"})


# --- results, duplicates, dead letters ----------------------------------------------------------------


async def test_every_record_gets_its_result_in_order(db: Database) -> None:
    usage = event("usage", "acme", at(2), {"user_id": "u1"}, id="u-1")
    escalated = ticket("acme", at(3), "T", "escalated", id="t-1")
    no_invoice = event("payment", "acme", at(3), {"status": "paid", "amount": 1, "currency": "EUR"}, id="p-1")
    negative = event("usage", "acme", at(3), {"quantity": -2}, id="u-2")
    result = await pipeline_at_now(db).ingest(
        records(usage, escalated, usage, no_invoice, b"{oops", negative, kam("kam-1", at(4))), ingress="http"
    )

    accepted_usage = EventResult("accepted", "tests", "u-1", "kamwatch.usage.v1")
    assert result.results[:3] == (
        accepted_usage,
        EventResult("accepted", "tests", "t-1", "kamwatch.support_ticket.v1"),
        accepted_usage._replace(status="duplicate"),
    )
    missing, not_json, out_of_range = result.results[3:6]
    assert missing == EventResult("rejected", reason="missing required attribute", field="data.invoice_id")
    assert (not_json.status, not_json.field) == ("rejected", None)
    assert not_json.reason is not None
    assert not_json.reason.startswith("invalid JSON")
    assert (out_of_range.status, out_of_range.field) == ("rejected", "data.quantity")
    assert out_of_range.reason is not None
    assert "greater than or equal to 0" in out_of_range.reason
    assert result.results[6].status == "accepted"
    assert (result.count("accepted"), result.count("duplicate"), result.count("rejected")) == (3, 1, 3)
    assert [e.id for e in result.fresh_events] == ["u-1", "t-1", result.results[6].id]


async def test_duplicates_within_and_across_batches_are_acknowledged_and_ignored(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    usage = event("usage", "acme", at(2), {"quantity": "2.5", "user_id": "u1"}, id="u-1")
    escalated = ticket("acme", at(2), "T", "escalated", id="t-1")
    failed = invoice("acme", at(2), "I", "failed", id="i-1")

    first = await pipeline.ingest(records(usage, escalated, failed, escalated, usage, failed), ingress="kafka")
    again = await pipeline.ingest(records(failed, usage, escalated), ingress="kafka")
    # the same (source, id) with another body (a producer bug) is a conflict: the first one stays, the other is
    # reported and recorded as a dead letter
    altered = await pipeline.ingest(records({**usage, "data": {"quantity": 100, "user_id": "u9"}}), ingress="http")

    assert [r.status for r in first.results] == ["accepted"] * 3 + ["duplicate"] * 3
    assert [r.status for r in again.results] == ["duplicate"] * 3
    assert [(r.status, r.field) for r in altered.results] == [("conflict", "id")]
    assert await fetch(db, "SELECT ingress, field, reason LIKE 'conflict:%' FROM dead_letters") == [
        ("http", "id", True)
    ]
    assert again.touched_accounts == altered.touched_accounts == frozenset()
    assert again.fresh_events == altered.fresh_events == ()
    assert await fetch(db, "SELECT quantity::text, events, users FROM usage_daily") == [("2.5", 1, ["u1"])]
    assert await fetch(db, "SELECT escalations FROM tickets") == [(1,)]
    assert await fetch(db, "SELECT failures FROM invoices") == [(1,)]
    assert await fetch(db, "SELECT event_id, payload -> 'data' ->> 'quantity' FROM raw_events ORDER BY 1") == [
        ("i-1", None),
        ("t-1", None),
        ("u-1", "2.5"),
    ]
    assert await fetch(db, "SELECT count(*) FROM event_keys") == [(3,)]
    assert await fetch(db, "SELECT count(*) FROM rescore_queue") == [(1,)]


async def test_a_same_id_with_other_content_is_a_conflict_however_the_same_content_is_spelled(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    usage = event("usage", "acme", at(2), {"quantity": 2, "user_id": "u1"}, id="u-1")
    spelled = orjson.dumps(usage)
    # the same JSON value spelled otherwise: keys in another order, spaces, 2.0 for 2
    respelled = (
        b"{ " + b" , ".join(orjson.dumps(k) + b" : " + orjson.dumps(v) for k, v in reversed(usage.items())) + b" }"
    )
    respelled = respelled.replace(b'"quantity":2', b'"quantity":2.0')
    assert respelled != spelled
    assert b"2.0" in respelled
    other = orjson.dumps({**usage, "data": {"quantity": 3, "user_id": "u1"}})
    moved = orjson.dumps({**usage, "time": at(3).isoformat()})

    first = await pipeline.ingest([InboundRecord(spelled)], ingress="http")
    # in one batch: the same again, respelled, another content, another time, and the other content twice
    later = await pipeline.ingest(
        [InboundRecord(p) for p in (spelled, respelled, other, moved, other)], ingress="kafka"
    )
    # new key, two versions in one batch: the first is stored, the second is the conflict
    fresh = orjson.dumps({**usage, "id": "u-2"})
    fresh_other = orjson.dumps({**usage, "id": "u-2", "data": {"quantity": 9}})
    within = await pipeline.ingest([InboundRecord(fresh), InboundRecord(fresh_other)], ingress="kafka")

    assert [r.status for r in first.results] == ["accepted"]
    assert [r.status for r in later.results] == ["duplicate", "duplicate", "conflict", "conflict", "conflict"]
    assert [r.status for r in within.results] == ["accepted", "conflict"]
    assert later.count("conflict") == 3
    assert later.count("duplicate") == 2
    assert await fetch(db, "SELECT quantity::text FROM usage_daily") == [("4",)]
    assert await fetch(db, "SELECT count(*), count(DISTINCT md5(raw)) FROM dead_letters WHERE field = 'id'") == [(4, 3)]


async def test_a_batch_mixing_stored_and_new_events_stores_exactly_the_new_ones(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    seen = event("usage", "acme", at(2), {"quantity": 2, "user_id": "u1"}, id="u-1")
    await pipeline.ingest(records(seen), ingress="kafka")
    usage = event("usage", "acme", at(3), {"quantity": 5, "user_id": "u2"}, id="u-2")

    mixed = await pipeline.ingest(records(usage, seen, invoice("beta", at(3), "I", "issued")), ingress="kafka")

    assert [r.status for r in mixed.results] == ["accepted", "duplicate", "accepted"]
    assert mixed.touched_accounts == frozenset({"acme", "beta"})
    assert await fetch(db, "SELECT day::text, quantity::text, events FROM usage_daily ORDER BY day") == [
        ("2026-03-02", "2", 1),
        ("2026-03-03", "5", 1),
    ]
    assert await fetch(db, "SELECT account_id FROM invoices") == [("beta",)]
    assert await fetch(db, "SELECT count(*) FROM raw_events") == [(3,)]
    assert await fetch(db, "SELECT count(*) FROM event_keys") == [(3,)]


async def test_the_same_id_from_two_sources_is_two_events(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    from_crm = event("usage", "acme", at(2), {"user_id": "u1"}, id="e-1", source="crm")
    from_app = event("usage", "acme", at(2), {"user_id": "u2"}, id="e-1", source="app")

    first = [await pipeline.ingest(records(document), ingress="kafka") for document in (from_crm, from_app)]
    again = await pipeline.ingest(records(from_app, from_crm), ingress="kafka")

    assert [r.status for batch in first for r in batch.results] == ["accepted", "accepted"]
    assert [r.status for r in again.results] == ["duplicate", "duplicate"]
    assert await fetch(db, "SELECT source, event_id FROM event_keys ORDER BY 1") == [("app", "e-1"), ("crm", "e-1")]
    assert await fetch(db, "SELECT count(*) FROM raw_events") == [(2,)]
    assert await fetch(db, "SELECT events, users FROM usage_daily") == [(2, ["u1", "u2"])]


async def test_dead_letters_keep_raw_bytes_reason_field_and_origin_once_per_origin(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    before = datetime.now(UTC)
    bad = encode(invoice("acme", at(2), "I", "lost"))
    not_json = b'{"specversion": "1.0", '

    first = await pipeline.ingest(
        [InboundRecord(bad, "kafka:payments/0@41"), InboundRecord(not_json, "kafka:payments/0@42")], ingress="kafka"
    )
    redelivered = await pipeline.ingest([InboundRecord(bad, "kafka:payments/0@41")], ingress="kafka")
    await pipeline.ingest([InboundRecord(bad, "kafka:payments/1@7")], ingress="kafka")  # same bytes, elsewhere
    await pipeline.ingest([InboundRecord(bad, "kafka:payments/0@41")], ingress="replay")  # same origin, other ingress

    assert [r.status for r in first.results + redelivered.results] == ["rejected"] * 3
    assert redelivered.results[0] == first.results[0]
    letters = await fetch(
        db, "SELECT ingress, origin, field, reason, raw, received_at, replayed_at FROM dead_letters ORDER BY 1, 2"
    )
    assert [(i, o, f, bytes(raw), replayed) for i, o, f, _, raw, _, replayed in letters] == [
        ("kafka", "kafka:payments/0@41", "data.status", bad, None),
        ("kafka", "kafka:payments/0@42", None, not_json, None),
        ("kafka", "kafka:payments/1@7", "data.status", bad, None),
        ("replay", "kafka:payments/0@41", "data.status", bad, None),
    ]
    # stamped by the database when stored: once per batch, after the first batch for the later ones
    first_batch, *later = [letters[0][5], letters[1][5], letters[2][5], letters[3][5]]
    assert before <= first_batch == later[0] < later[1] < later[2] <= datetime.now(UTC)
    assert "'issued'" in letters[0][3]  # the reason lists what is allowed
    assert letters[1][3].startswith("invalid JSON")
    assert await fetch(db, "SELECT count(*) FROM raw_events") == [(0,)]
    assert await fetch(db, "SELECT count(*) FROM rescore_queue") == [(0,)]


async def test_records_postgresql_cannot_store_are_dead_lettered_without_failing_the_batch(db: Database) -> None:
    good = encode(event("usage", "acme", at(2), id="good"))
    nul = encode(event("usage", "acme", at(2), {"user_id": "u\u0000"}, id="nul"))
    huge = encode(event("usage", "acme", at(2), {"x": 0}, id="huge")).replace(b'"x":0', b'"x":1e200000')
    year_one = encode(event("usage", "acme", "0001-01-01T00:00:00+01:00", id="year-one"))
    origins = ["a", "b", "c", "d"]
    batch = [InboundRecord(p, o) for p, o in zip([nul, good, huge, year_one], origins, strict=True)]

    result = await pipeline_at_now(db).ingest(batch, ingress="replay")

    assert [(r.status, r.field) for r in result.results] == [
        ("rejected", "data.user_id"),
        ("accepted", None),
        ("rejected", "data.x"),
        ("rejected", "time"),
    ]
    assert await fetch(db, "SELECT event_id FROM raw_events") == [("good",)]
    stored = await fetch(db, "SELECT origin, field, raw FROM dead_letters ORDER BY 1")
    assert [(o, f, bytes(raw)) for o, f, raw in stored] == [
        ("a", "data.user_id", nul),
        ("c", "data.x", huge),
        ("d", "time", year_one),
    ]


# --- time ------------------------------------------------------------------------------------------------


async def test_late_events_land_on_their_own_utc_day_not_today(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    before = datetime.now(UTC)
    await pipeline.ingest(records(event("usage", "acme", NOW, {"quantity": 5})), ingress="kafka")
    late = records(
        event("usage", "acme", "2026-03-06T10:00:00+00:00", {"quantity": 2}),  # two weeks late
        event("usage", "acme", "2026-03-03T23:30:00-02:00", {"quantity": "1.5", "user_id": "u2"}),  # 4 March UTC
        event("usage", "acme", "2026-03-05T00:30:00+01:00", {"quantity": 0.25, "user_id": "u1"}),  # 4 March UTC
    )
    await pipeline.ingest(late, ingress="kafka")

    assert await fetch(db, "SELECT day::text, quantity::text, events, users FROM usage_daily ORDER BY day") == [
        ("2026-03-04", "1.75", 2, ["u1", "u2"]),
        ("2026-03-06", "2", 1, []),
        ("2026-03-20", "5", 1, []),  # today's row holds today's event only
    ]
    # late or not, each is stamped with its arrival (the database's time of its batch), not its event time
    (first, one), (then, three) = await fetch(db, "SELECT received_at, count(*) FROM raw_events GROUP BY 1 ORDER BY 1")
    assert (one, three) == (1, 3)
    assert before <= first < then <= datetime.now(UTC)


# --- merge rules: the stored row is the state of the latest event, whatever the arrival order ------------

EXPECTED_TICKET = ("reopened", "high", "outage", 2, at(1), at(1), at(5), 1, 1, at(6))
EXPECTED_INVOICE = ("paid", Decimal("100.00"), 2, at(1), datetime(2026, 3, 15, 17, tzinfo=UTC), at(15))
EXPECTED_CONTACT = ("executive_sponsor", None, "left_company", False, "Ann", "ann@acme.example", "CEO", at(1), at(9))


def entity_histories(k: int) -> list[Any]:
    """One ticket, one invoice and one contact, each with several events (ids and entity ids suffixed by k)."""
    t, i, c = f"T{k}", f"I{k}", f"C{k}"
    history = [
        ticket("acme", at(1), t, "opened", "normal"),
        ticket("acme", at(2), t, "escalated", "urgent", category="billing"),
        ticket("acme", at(4), t, "updated", "urgent", category="outage"),
        ticket("acme", at(5), t, "resolved", "urgent", csat=2),
        ticket("acme", at(6), t, "reopened", "high"),
        invoice("acme", at(1), i, "issued"),
        invoice("acme", at(10), i, "failed"),
        invoice("acme", at(12), i, "failed"),
        invoice("acme", at(14), i, "disputed"),
        invoice("acme", at(15), i, "paid", paid_at="2026-03-15T18:00:00+01:00"),
        contact("acme", at(1), c, "added", "champion", name="Ann", title="CTO"),
        contact(
            "acme", at(5), c, "role_changed", "executive_sponsor", previous_role="champion", email="ann@acme.example"
        ),
        contact("acme", at(7), c, "updated", "executive_sponsor", title="CEO"),
        contact("acme", at(9), c, "left_company", "executive_sponsor"),
    ]
    for n, document in enumerate(history):
        document["id"] = f"h{k}-{n}"
    return history


async def test_entities_take_the_state_of_their_latest_event_whatever_the_arrival_order(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    rng = random.Random(7)
    plans: list[tuple[str, int]] = [("chronological", 1), ("newest first", 1), ("newest first", 100)]
    plans += [("shuffled", size) for size in (1, 2, 3, 100)]
    plans += [("shuffled, every event twice", size) for size in (1, 4)]
    for k, (order, batch_size) in enumerate(plans):
        documents = entity_histories(k)
        if order == "newest first":
            documents.reverse()
        elif order.startswith("shuffled"):
            documents = documents * (2 if "twice" in order else 1)
            rng.shuffle(documents)
        for start in range(0, len(documents), batch_size):
            await pipeline.ingest(records(*documents[start : start + batch_size]), ingress="replay")

    tickets = await fetch(
        db,
        "SELECT ticket_id, status, priority, category, csat, first_seen_at, opened_at, resolved_at, escalations, "
        "reopenings, last_event_time FROM tickets ORDER BY 1",
    )
    invoices = await fetch(
        db, "SELECT invoice_id, status, amount, failures, issued_at, paid_at, last_event_time FROM invoices ORDER BY 1"
    )
    contacts = await fetch(
        db,
        "SELECT contact_id, role, previous_role, last_change, active, name, email, title, added_at, left_at "
        "FROM contacts ORDER BY 1",
    )
    assert tickets == [(f"T{k}", *EXPECTED_TICKET) for k in range(len(plans))]
    assert invoices == [(f"I{k}", *EXPECTED_INVOICE) for k in range(len(plans))]
    assert contacts == [(f"C{k}", *EXPECTED_CONTACT) for k in range(len(plans))]


async def test_events_at_the_same_instant_merge_the_same_whatever_the_arrival_order(db: Database) -> None:
    """Ties on time: ``latest`` attributes follow the greater event id, ``sticky`` ones the greater value."""
    pipeline = pipeline_at_now(db)
    for k, (first, second, together) in enumerate([(0, 1, True), (1, 0, True), (0, 1, False), (1, 0, False)]):
        same_instant = [
            ticket("acme", "2026-03-02T12:00:00+00:00", f"T{k}", "resolved", category="a", id=f"b-{k}"),
            ticket("acme", "2026-03-02T13:00:00+01:00", f"T{k}", "escalated", category="b", id=f"a-{k}"),
        ]
        pair = [same_instant[first], same_instant[second]]
        for batch in [pair] if together else [[pair[0]], [pair[1]]]:
            await pipeline.ingest(records(*batch), ingress="http")

    assert await fetch(db, "SELECT status, category, escalations, last_event_id FROM tickets ORDER BY ticket_id") == [
        ("resolved", "b", 1, f"b-{k}") for k in range(4)
    ]


# --- partitions and the rescore queue --------------------------------------------------------------------

PARTITION_ROWS = """
SELECT c.relname, (SELECT count(*) FROM raw_events r WHERE r.tableoid = c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'raw_events'::regclass ORDER BY 1
"""


async def test_raw_events_land_in_the_partition_of_their_utc_month(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    await pipeline.ingest(
        records(
            event("usage", "acme", "2026-01-31T23:30:00-01:00"),  # 1 February in UTC
            event("usage", "acme", "2026-03-15T12:00:00Z"),
            kam("kam-1", "2025-12-31T23:59:59Z"),
        ),
        ingress="replay",
    )
    assert await fetch(db, PARTITION_ROWS) == [
        ("raw_events_2025_12", 1),
        ("raw_events_2026_02", 1),
        ("raw_events_2026_03", 1),
    ]

    # A wild time (a producer's epoch default) creates its own month, not every month since 1970.
    await pipeline.ingest(
        records(event("usage", "acme", "1970-01-01T00:00:00Z"), event("usage", "acme", "2026-03-16T12:00:00Z")),
        ingress="replay",
    )
    assert await fetch(db, PARTITION_ROWS) == [
        ("raw_events_1970_01", 1),
        ("raw_events_2025_12", 1),
        ("raw_events_2026_02", 1),
        ("raw_events_2026_03", 2),
    ]


async def test_rescore_queue_gets_the_accounts_of_fresh_events_only(db: Database) -> None:
    pipeline = pipeline_at_now(db)
    usage = event("usage", "acme", at(2))
    first = await pipeline.ingest(
        records(
            usage,
            ticket("globex", at(5), "T", "opened"),
            event("engagement", "acme", at(3), {"kind": "meeting", "outcome": "attended"}),
            kam("kam-1", at(9)),  # a KAM is not an account
            invoice("initech", at(8), "I", "lost"),  # rejected
        ),
        ingress="kafka",
    )
    nothing_new = await pipeline.ingest(records(usage, kam("kam-2", at(10))), ingress="kafka")
    later = await pipeline.ingest(records(event("outcome", "initech", at(7), {"outcome": "churned"})), ingress="kafka")

    assert first.touched_accounts == {"acme", "globex"}
    assert nothing_new.touched_accounts == frozenset()
    assert later.touched_accounts == {"initech"}
    queued = "SELECT a, max(latest_event_time) FROM rescore_queue, unnest(account_ids) a GROUP BY a ORDER BY a"
    assert await fetch(db, queued) == [("acme", at(5)), ("globex", at(5)), ("initech", at(7))]


# --- order independence, as a property ---------------------------------------------------------------------

# Everything ingestion derives, as text (exact: numeric scale, array order), minus arrival bookkeeping.
STATE_QUERIES = {
    "usage_daily": "SELECT t::text FROM usage_daily t ORDER BY account_id, day, metric",
    "tickets": "SELECT t::text FROM tickets t ORDER BY account_id, ticket_id",
    "invoices": "SELECT t::text FROM invoices t ORDER BY account_id, invoice_id",
    "contacts": "SELECT t::text FROM contacts t ORDER BY account_id, contact_id",
    "engagements": "SELECT t::text FROM engagements t ORDER BY account_id, event_time, source, event_id",
    "accounts": "SELECT t::text FROM accounts t ORDER BY account_id",
    "kams": "SELECT t::text FROM kams t ORDER BY kam_id",
    "outcomes": "SELECT t::text FROM outcomes t ORDER BY account_id, event_time, source, event_id",
    "event_keys": "SELECT t::text FROM event_keys t ORDER BY source, event_id",
    "raw_events": "SELECT (event_time, source, event_id, type, subject, payload)::text FROM raw_events "
    "ORDER BY source, event_id",
    "dead_letters": "SELECT DISTINCT (ingress, reason, field, raw)::text FROM dead_letters ORDER BY 1",
    "touched_accounts": "SELECT DISTINCT unnest(account_ids) FROM rescore_queue ORDER BY 1",
}


async def state(db: Database) -> dict[str, list[Any]]:
    return {name: [row[0] for row in await fetch(db, query)] for name, query in STATE_QUERIES.items()}


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[Database]:
    """A new migrated database (a clone of the template), dropped on exit."""
    async with cloned_database(server_url) as url:
        db = await Database.open(Settings(database_url=url, db_pool_size=2))
        try:
            yield db
        finally:
            await db.close()


ACCOUNTS = ("acme", "globex", "initech")
KAMS = ("kam-1", "kam-2")
# Few instants, so that events of one entity often share one; they straddle a month end and UTC midnights.
INSTANTS = [datetime(2026, 2, 27, 20, tzinfo=UTC) + timedelta(hours=9 * k) for k in range(6)]
OFFSETS = [timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-8), timedelta(hours=14), timedelta(hours=-3)]


def some(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


times = st.builds(
    lambda i, o: i.astimezone(timezone(o)).isoformat(), st.sampled_from(INSTANTS), st.sampled_from(OFFSETS)
)
DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "usage": st.fixed_dictionaries(
        {},
        optional={
            "metric": some("activity", "API"),
            "quantity": some("0", "0.5", "1.25", "3", 2, 0.75, "1.000"),
            "user_id": some("u1", "U2", "u-3"),
        },
    ),
    "support_ticket": st.fixed_dictionaries(
        {
            "ticket_id": some("T1"),  # one ticket per account: more events on each
            "status": some("opened", "updated", "escalated", "reopened", "resolved", "closed"),
            "priority": some("low", "normal", "high", "urgent"),
            "category": st.none() | some("billing", "Outage"),
            "csat": st.none() | st.integers(1, 3),
        },
    ),
    "payment": st.fixed_dictionaries(
        {
            "invoice_id": some("I1", "I2"),
            "status": some("issued", "paid", "failed", "disputed", "refunded", "written_off"),
            "amount": some("100", "100.50", "99.9", 12.5),
            "currency": some("EUR", "USD"),
            "due_date": some("2026-03-01", "2026-04-01"),
        },
        optional={"paid_at": st.none() | times},
    ),
    "contact_change": st.fixed_dictionaries(
        {
            "contact_id": some("C1"),
            "change": some("added", "updated", "role_changed", "removed", "left_company"),
            "role": some("champion", "executive_sponsor", "user"),
            "name": st.none() | some("Ann", "bob"),
            "email": st.none() | some("a@x.example", "B@x.example"),
            "title": st.none() | some("CTO", "cfo"),
        },
        optional={"previous_role": st.none() | some("champion", "user")},
    ),
    "engagement": st.fixed_dictionaries(
        {"kind": some("meeting", "nps_survey", "email"), "outcome": some("attended", "responded", "no_show")},
        optional={"nps_score": st.none() | st.integers(0, 10)},
    ),
    "account": st.fixed_dictionaries(
        {
            "name": some("Acme", "Globex"),
            "owner_kam_id": some(*KAMS),
            "arr": some("1000", "2500.50", 0),
            "currency": some("EUR", "USD"),
            "tier": some("strategic", "key", "standard"),
        },
        optional={
            "renewal_date": st.none() | some("2026-12-31", "2027-06-30"),
            "segment": st.none() | some("enterprise", "mid"),
            "growth_potential": some("low", "high"),
            "strategic_reference": st.booleans(),
            "parent_account_id": st.none() | some(*ACCOUNTS),
        },
    ),
    "kam": st.fixed_dictionaries(
        {"name": some("Kim", "Lou"), "email": some("k@x.example", "l@x.example")},
        optional={
            "slack_user_id": st.none() | some("U1", "U2"),
            "manager_kam_id": st.none() | some(*KAMS),
            "locale": some("en", "fr"),
            "timezone": some("UTC", "Europe/Paris"),
        },
    ),
    "outcome": st.fixed_dictionaries(
        {"outcome": some("renewed", "expanded", "downgraded", "churned")},
        optional={"arr_before": st.none() | some("100", "100.0"), "arr_after": some("50", 75.5), "reason": some("x")},
    ),
}
# Entity events merge by (time, id): two of them may not share both, see the note in ``histories``.
ENTITY_TYPES = {"support_ticket", "payment", "contact_change", "account", "kam"}
TYPES = ["usage", "usage", "engagement", "outcome", *sorted(ENTITY_TYPES), *sorted(ENTITY_TYPES)]
INVALID = [b"{oops", encode(event("usage", "acme", "2026-03-01T00:00:00", id="naive")), b"[]"]


@st.composite
def histories(draw: st.DrawFn) -> list[bytes]:
    """A stream for 2 or 3 accounts mixing every event type, with random times (often equal) and ids.

    Each (source, id) is one event. Ids are random strings (their byte order breaks ties on time), unique
    among entity events; a non-entity event may reuse an id under another source. Two entity events with
    the same time and id from two sources are left out: rows do not record the source, so such a tie has
    no order-independent winner."""
    accounts = ACCOUNTS[: draw(st.integers(2, 3))]
    count = draw(st.integers(1, 40))
    taken: set[tuple[str, str]] = set()
    entity_ids: set[str] = set()
    documents: list[bytes] = []
    for _ in range(count):
        type_ = draw(st.sampled_from(TYPES))
        source = draw(some("crm", "app"))
        id_ = draw(st.text(alphabet="aAbB-_9é", min_size=1, max_size=4))
        if (source, id_) in taken or (type_ in ENTITY_TYPES and id_ in entity_ids):
            continue
        taken.add((source, id_))
        if type_ in ENTITY_TYPES:
            entity_ids.add(id_)
        subject = draw(st.sampled_from(KAMS if type_ == "kam" else accounts))
        documents.append(encode(event(type_, subject, draw(times), draw(DATA[type_]), id=id_, source=source)))
    documents += draw(st.lists(st.sampled_from(INVALID), max_size=2))
    return documents


def chronological(documents: Sequence[bytes]) -> list[bytes]:
    """Sorted by event time; the invalid ones (without a usable time) first."""

    def moment(document: bytes) -> datetime:
        try:
            parsed = datetime.fromisoformat(orjson.loads(document)["time"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return datetime.min.replace(tzinfo=UTC)
        return parsed if parsed.tzinfo else datetime.min.replace(tzinfo=UTC)

    return sorted(documents, key=moment)


async def ingest_batches(db: Database, batches: Sequence[Sequence[bytes]]) -> None:
    pipeline = Pipeline(db)
    for batch in batches:
        await pipeline.ingest([InboundRecord(document) for document in batch], ingress="replay")


@settings(max_examples=25, deadline=None)
@given(history=histories(), rng=st.randoms(use_true_random=False))
async def test_shuffled_batched_redelivered_stream_gives_the_state_of_one_in_order_pass(
    server_url: str, history: list[bytes], rng: random.Random
) -> None:
    in_order = chronological(history)
    messy = history + [rng.choice(history) for _ in range(rng.randint(0, len(history)))]
    rng.shuffle(messy)
    batches: list[list[bytes]] = []
    while messy:
        size = rng.randint(1, 8)
        batches.append(messy[:size])
        messy = messy[size:]

    async with fresh_database(server_url) as once, fresh_database(server_url) as shuffled:
        await ingest_batches(once, [in_order])
        await ingest_batches(shuffled, batches)
        expected, got = await state(once), await state(shuffled)

    assert expected["event_keys"]  # not vacuous: events were stored
    assert got == expected
