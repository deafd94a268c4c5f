"""The Kafka consumer: FastStream batch subscriber feeding the ingestion pipeline, dead letters to the DLQ topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.message import StreamMessage

from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult, EventResult
from services.platform.metrics import Metrics
from services.platform.settings import Settings

log = logging.getLogger(__name__)

SUBSCRIBER_TITLE = "kamwatch-events"
DLQ_HEADERS = (
    "kamwatch-dlq-reason",
    "kamwatch-dlq-field",
    "kamwatch-source-topic",
    "kamwatch-source-partition",
    "kamwatch-source-offset",
)


async def raw_values(message: StreamMessage[tuple[ConsumerRecord[Any, Any], ...]]) -> list[bytes]:
    """Decoder: the records' bytes untouched, whatever their content-type header (bad JSON is ours to judge)."""
    return [record.value or b"" for record in message.raw_message]


def kafka_origin(record: ConsumerRecord[Any, Any]) -> str:
    return f"kafka:{record.topic}/{record.partition}@{record.offset}"


def dead_letter_headers(record: ConsumerRecord[Any, Any], outcome: EventResult) -> dict[str, str]:
    headers = {
        "content-type": "application/octet-stream",  # the bytes as they came, not necessarily JSON
        "kamwatch-dlq-reason": outcome.reason or "rejected",
        "kamwatch-source-topic": record.topic,
        "kamwatch-source-partition": str(record.partition),
        "kamwatch-source-offset": str(record.offset),
    }
    if outcome.field:
        headers["kamwatch-dlq-field"] = outcome.field
    return headers


IngestBatch = Callable[[Sequence[InboundRecord]], Awaitable[BatchResult]]


def build_broker(settings: Settings, ingest: IngestBatch, metrics: Metrics | None = None) -> KafkaBroker:
    """A broker with one batch subscriber on every event topic, handing each batch to ``ingest``
    (the pipeline); nothing connects until it starts."""
    middlewares = (KafkaPrometheusMiddleware(registry=metrics.instrument_registry),) if metrics is not None else ()
    broker = KafkaBroker(settings.kafka_bootstrap_servers, middlewares=middlewares)
    dead_letters: DefaultPublisher = broker.publisher(
        settings.kafka_dlq_topic,
        title="kamwatch-dead-letters",
        description="Rejected records: the raw bytes unchanged, the reason and the source in headers.",
        schema=bytes,
    )

    @broker.subscriber(
        *settings.kafka_topics.values(),
        batch=True,
        group_id=settings.kafka_group_id,
        max_records=settings.kafka_max_records,
        batch_timeout_ms=settings.kafka_batch_timeout_ms,
        auto_offset_reset="earliest",
        # Offsets are committed when the handler returns, i.e. after the batch's transaction committed;
        # on an exception every partition of the batch is rewound to its first record (nothing skipped).
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=raw_values,
        title=SUBSCRIBER_TITLE,
        description="Key-account events (CloudEvents 1.0, structured mode, key = subject).",
    )
    async def handle_batch(body: list[bytes], message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        try:
            result = await ingest(
                [InboundRecord(payload, kafka_origin(record)) for payload, record in zip(body, records, strict=True)]
            )
        except Exception:
            log.exception("batch of %d records not stored; it will be redelivered", len(records))
            await asyncio.sleep(settings.kafka_retry_backoff_s)
            raise
        await publish_dead_letters(dead_letters, records, result)
        if metrics is not None:
            record_lag(metrics, message.consumer, records)

    return broker


def record_lag(metrics: Metrics, consumer: Any, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
    """Consumer lag per partition of the batch: the partition's high watermark minus the next offset."""
    highwater = getattr(consumer, "highwater", None)
    if highwater is None:  # an in-memory test consumer keeps no watermarks
        return
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = max(record.offset, last.get((record.topic, record.partition), -1))
    for (topic, partition), offset in last.items():
        mark = highwater(TopicPartition(topic, partition))
        if mark is not None:
            metrics.consumer_lag.labels(topic=topic, partition=str(partition)).set(max(0, mark - offset - 1))


async def publish_dead_letters(
    publisher: DefaultPublisher, records: tuple[ConsumerRecord[Any, Any], ...], result: BatchResult
) -> None:
    for record, outcome in zip(records, result.results, strict=True):
        if outcome.status in ("rejected", "conflict"):  # a conflict is recorded like a rejection
            await publisher.publish(
                record.value or b"", key=record.key or None, headers=dead_letter_headers(record, outcome)
            )
