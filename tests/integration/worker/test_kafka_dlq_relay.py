"""The DLQ relay on a real Kafka broker: after a relay died between sending dead letters and saying so, the next
one publishes each letter once (it looks on the topic for those that may be there before sending)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import text

from ingestion.dead_letters import claim_unpublished
from ingestion.parsing import InboundRecord
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from services.worker.dlq import DEAD_LETTER_ID, DeadLetterRelay, dlq_message
from tests.kafka import Record, produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("kafka")]


async def test_letters_a_dead_relay_sent_are_not_sent_again(kafka_settings: Settings, db: Database) -> None:
    topic = kafka_settings.kafka_topics["usage"]
    bad = [InboundRecord(f"{{not json {n}".encode(), f"kafka:{topic}/0@{n}") for n in range(3)]
    await Pipeline(db).ingest(bad, ingress="kafka")

    # A relay claims the three letters for a short lease, sends two, and dies without saying so.
    async with db.transaction() as conn:
        claimed = await claim_unpublished(conn, limit=10, lease_s=0.2)
    assert len(claimed) == 3
    sent = [dlq_message(c.letter, kafka_settings.kafka_dlq_max_bytes) for c in claimed[:2]]
    await produce(
        kafka_settings.kafka_bootstrap_servers,
        kafka_settings.kafka_dlq_topic,
        [Record(value, None, headers) for value, headers in sent],
    )
    await asyncio.sleep(0.3)  # its lease is over

    relay = DeadLetterRelay(db, kafka_settings)
    await relay.start()
    try:
        assert await relay.publish_pending() == 3
        assert await relay.publish_pending() == 0
    finally:
        await relay.stop()

    on_topic = await read_topic(kafka_settings.kafka_bootstrap_servers, kafka_settings.kafka_dlq_topic)
    ids = Counter(int(dict(record.headers)[DEAD_LETTER_ID]) for record in on_topic)
    assert ids == Counter(c.letter.id for c in claimed)  # each once
    async with db.unit_of_work() as conn:
        query = text("SELECT count(*) FROM dead_letters WHERE published_at IS NULL")
        unpublished = (await conn.execute(query)).scalar()
    assert unpublished == 0
