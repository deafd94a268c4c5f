"""The Kafka worker driven through FastStream's TestKafkaBroker, on a real PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from aiokafka import TopicPartition
from faststream.kafka import KafkaBroker, TestKafkaBroker
from sqlalchemy import text

from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from services.worker.consumer import build_broker
from tests.dbutil import cloned_database, snapshot
from tests.events import at, encode, event

TOPIC_EXAMPLES: dict[str, dict[str, Any]] = {
    "kamwatch.usage": event("usage", "acme", at(2), {"quantity": 4, "user_id": "u1"}),
    "kamwatch.support_tickets": event(
        "support_ticket", "acme", at(2), {"ticket_id": "T1", "status": "opened", "priority": "urgent"}
    ),
    "kamwatch.payments": event(
        "payment",
        "acme",
        at(2),
        {"invoice_id": "I1", "status": "issued", "amount": "10.5", "currency": "EUR", "due_date": "2026-04-01"},
    ),
    "kamwatch.contacts": event(
        "contact_change", "acme", at(2), {"contact_id": "C1", "change": "added", "role": "champion"}
    ),
    "kamwatch.engagement": event("engagement", "acme", at(2), {"kind": "business_review", "outcome": "no_show"}),
    "kamwatch.accounts": event(
        "account",
        "acme",
        at(1),
        {"name": "Acme", "owner_kam_id": "k1", "arr": "1000", "currency": "EUR", "tier": "key"},
    ),
    "kamwatch.outcomes": event("outcome", "acme", at(20), {"outcome": "renewed"}),
}


@dataclass
class RecordingConsumer:
    """Stands in for aiokafka's consumer: records commits (with what the database held then) and seeks. Like
    aiokafka's after a rebalance, it asserts on ``highwater`` of a partition it no longer holds (all of them)."""

    db: Database
    commits: list[int] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)  # filled by a real nack

    async def commit(self) -> None:
        async with self.db.unit_of_work() as conn:
            self.commits.append(int((await conn.execute(text("SELECT count(*) FROM event_keys"))).scalar_one()))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def highwater(self, partition: TopicPartition) -> int:
        raise AssertionError("Partition is not assigned")


@dataclass
class Harness:
    broker: KafkaBroker
    consumer: RecordingConsumer


@pytest.fixture
async def worker(settings: Settings, db: Database) -> AsyncIterator[Harness]:
    broker = build_broker(
        settings.model_copy(update={"kafka_retry_backoff_s": 0.0}),
        partial(Pipeline(db).ingest, ingress="kafka"),
        Metrics.create(),
    )
    consumer = RecordingConsumer(db)
    async with TestKafkaBroker(broker):
        for subscriber in broker.subscribers:
            subscriber.parser._setup(consumer)  # type: ignore[attr-defined]
        yield Harness(broker, consumer)


async def execute(db: Database, statement: str) -> None:
    async with db.unit_of_work() as conn:
        await conn.execute(text(statement))


async def rows(db: Database, query: str) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(row) for row in await conn.execute(text(query))]


async def test_every_topic_lands_in_its_tables(worker: Harness, db: Database) -> None:
    for topic, document in TOPIC_EXAMPLES.items():
        await worker.broker.publish_batch(encode(document), topic=topic)

    assert await rows(db, "SELECT count(*) FROM raw_events") == [(len(TOPIC_EXAMPLES),)]
    for table in ("usage_daily", "tickets", "invoices", "contacts", "engagements", "accounts", "outcomes"):
        assert await rows(db, f"SELECT count(*) FROM {table}") == [(1,)], table
    assert worker.consumer.commits == [1, 2, 3, 4, 5, 6, 7]


async def test_offsets_are_committed_only_after_the_batch_is_stored(worker: Harness, db: Database) -> None:
    batch = [encode(event("usage", "acme", at(day), {"user_id": f"u{day}"})) for day in range(1, 6)]
    await execute(db, "ALTER TABLE usage_daily RENAME TO usage_daily_away")

    with pytest.raises(Exception, match="usage_daily"):
        await worker.broker.publish_batch(*batch, topic="kamwatch.usage", partition=0)

    # Not committed. (The rewind to the batch's first offset is FastStream's KafkaAckableMessage.nack; the
    # in-memory broker hands batches over as lists where aiokafka gives tuples, so it cannot be seen here.)
    assert worker.consumer.commits == []
    assert await rows(db, "SELECT count(*) FROM event_keys") == [(0,)]

    await execute(db, "ALTER TABLE usage_daily_away RENAME TO usage_daily")
    await worker.broker.publish_batch(*batch, topic="kamwatch.usage", partition=0)  # the redelivery

    assert worker.consumer.commits == [5]  # committed once, with the 5 events already in the database
    assert await rows(db, "SELECT sum(events) FROM usage_daily") == [(5,)]


async def test_rejected_records_become_dead_letters_in_the_batch_and_await_the_dlq_relay(
    worker: Harness, db: Database
) -> None:
    good = encode(event("usage", "acme", at(3)))
    missing_field = encode(event("support_ticket", "acme", at(3), {"status": "opened", "priority": "low"}))
    unknown_type = encode(event("weather", "acme", at(3), {}))
    await worker.broker.publish_batch(good, b"{not json", missing_field, unknown_type, b"", topic="kamwatch.usage")

    stored = await rows(db, "SELECT raw, reason, field, origin, published_at FROM dead_letters ORDER BY id")
    reasons = {bytes(raw): (reason, field) for raw, reason, field, _, _ in stored}
    assert set(reasons) == {b"{not json", missing_field, unknown_type, b""}
    assert reasons[b"{not json"][0].startswith("invalid JSON")
    assert reasons[missing_field][1] == "data.ticket_id"
    assert reasons[unknown_type][1] == "type"
    assert reasons[b""][0] == "empty message"
    assert all(origin.startswith("kafka:kamwatch.usage/") for _, _, _, origin, _ in stored)
    assert all(published_at is None for *_, published_at in stored)  # the relay's, after the commit
    assert await rows(db, "SELECT count(*) FROM raw_events") == [(1,)]  # the poison did not block the good one
    assert worker.consumer.commits == [1]


async def test_a_binary_mode_event_is_stored_and_a_bad_one_keeps_its_headers_and_key(
    worker: Harness, db: Database
) -> None:
    attributes = {
        "ce_specversion": "1.0",
        "ce_id": "bin-1",
        "ce_source": "crm",
        "ce_type": "kamwatch.support_ticket.v1",
        "ce_subject": "acme",
        "ce_time": "2026-03-03T12:00:00Z",
        "content-type": "application/json; charset=utf-8",
    }
    data = b'{"ticket_id": "T1", "status": "opened", "priority": "urgent"}'
    await worker.broker.publish(data, "kamwatch.support_tickets", key=b"acme", headers=attributes)
    bad = {**attributes, "ce_id": "bin-2"}
    await worker.broker.publish(b'{"status": "opened"}', "kamwatch.support_tickets", key=b"acme", headers=bad)

    assert await rows(db, "SELECT event_id, payload::jsonb -> 'data' ->> 'priority' FROM raw_events") == [
        ("bin-1", "urgent")
    ]
    ((raw, field, headers, key),) = await rows(db, "SELECT raw, field, headers, record_key FROM dead_letters")
    assert (bytes(raw), field, bytes(key)) == (b'{"status": "opened"}', "data.ticket_id", b"acme")
    assert dict(headers).items() >= bad.items()  # every attribute kept


async def test_metrics_cannot_fail_a_stored_batch(worker: Harness, db: Database) -> None:
    # After a rebalance, asking aiokafka about a partition just revoked asserts: a stored batch must not fail
    # (and be read again) for what is only its metrics.
    await worker.broker.publish_batch(encode(event("usage", "acme", at(3))), topic="kamwatch.usage", partition=0)
    assert worker.consumer.commits == [1]


async def test_duplicates_and_reordering_leave_the_state_of_one_clean_delivery(
    worker: Harness, db: Database, server_url: str
) -> None:
    stream = [
        encode(event("usage", f"acc-{n % 3}", at(1 + n % 20, hour=n % 24), {"quantity": n % 4, "user_id": f"u{n % 5}"}))
        for n in range(60)
    ]
    stream += [
        encode(event("support_ticket", "acc-0", at(day), {"ticket_id": "T", "status": status, "priority": priority}))
        for day, status, priority in [(2, "opened", "normal"), (3, "escalated", "urgent"), (9, "resolved", "urgent")]
    ]
    stream += [
        encode(event("contact_change", "acc-1", at(day), {"contact_id": "C", "change": change, "role": "champion"}))
        for day, change in [(1, "added"), (5, "updated"), (12, "left_company")]
    ]

    async with cloned_database(server_url) as reference_url:
        reference = await Database.open(Settings(database_url=reference_url))
        broker = build_broker(
            Settings(database_url=reference_url), partial(Pipeline(reference).ingest, ingress="kafka")
        )
        async with TestKafkaBroker(broker) as clean:
            await clean.publish_batch(*stream, topic="kamwatch.usage")
        expected = await snapshot(reference)
        await reference.close()

    shuffled = random.Random(7).sample(stream, len(stream))
    redelivered = shuffled + random.Random(8).sample(stream, 25)
    for start in range(0, len(redelivered), 17):
        await worker.broker.publish_batch(*redelivered[start : start + 17], topic="kamwatch.usage")

    assert await snapshot(db) == expected
