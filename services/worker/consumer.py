"""The Kafka consumer: FastStream batch subscriber feeding the ingestion pipeline.

A batch's offsets are committed once its transaction has (rejected and conflicting records included, as dead
letters that the relay of ``services.worker.dlq`` publishes to the DLQ topic afterwards); a batch that fails is
rewound and read again after KAMWATCH_KAFKA_RETRY_BACKOFF_S, whatever failed. Lag and readiness come from
``services.worker.progress``, beside the batches: nothing but storing a batch can fail it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage

from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from services.worker.progress import ConsumerProgress, FetchErrorLog

log = logging.getLogger(__name__)

SUBSCRIBER_TITLE = "kamwatch-events"
DLQ_HEADERS = (
    "kamwatch-dlq-reason",
    "kamwatch-dlq-field",
    "kamwatch-source-topic",
    "kamwatch-source-partition",
    "kamwatch-source-offset",
    "kamwatch-dead-letter-id",
    "kamwatch-dlq-truncated-from",
)


async def raw_values(message: StreamMessage[tuple[ConsumerRecord[Any, Any], ...]]) -> list[bytes]:
    """Decoder: the records' bytes untouched, whatever their content-type header (bad JSON is ours to judge)."""
    return [record.value or b"" for record in message.raw_message]


def kafka_origin(record: ConsumerRecord[Any, Any]) -> str:
    return f"kafka:{record.topic}/{record.partition}@{record.offset}"


def inbound(record: ConsumerRecord[Any, Any]) -> InboundRecord:
    """A record as the pipeline takes it: value (a tombstone's is empty), origin, headers and key as received."""
    return InboundRecord(record.value or b"", kafka_origin(record), tuple(record.headers or ()), record.key)


IngestBatch = Callable[[Sequence[InboundRecord]], Awaitable[BatchResult]]


class Consumer:
    """The worker's broker and its one batch subscriber; ``progress`` (when given) follows how far it is and
    ``on_rejected`` is told when a stored batch held rejected or conflicting records (the DLQ relay publishes
    them)."""

    def __init__(
        self,
        settings: Settings,
        ingest: IngestBatch,
        metrics: Metrics | None = None,
        *,
        progress: ConsumerProgress | None = None,
        on_rejected: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ingest = ingest
        self.progress = progress
        self.on_rejected = on_rejected
        # This consumer's own logger (not registered: its fetch errors are its own), logging through the worker's.
        logger = logging.Logger("kamwatch.worker.kafka")
        logger.parent = logging.getLogger("kamwatch.worker")
        if progress is not None:
            logger.addHandler(FetchErrorLog(progress))
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            middlewares=(KafkaPrometheusMiddleware(registry=metrics.instrument_registry),) if metrics else (),
            allow_auto_create_topics=False,  # the worker's own check at start creates them, or says which lack
            logger=logger,
        )
        self.broker.publisher(
            settings.kafka_dlq_topic,
            title="kamwatch-dead-letters",
            description="Rejected records: value, key and headers as received, the reason and the source in "
            "kamwatch-* headers (kamwatch-dead-letter-id: the dead letter; kamwatch-dlq-truncated-from: a value "
            "truncated to the topic's size limit, whole in the database).",
            schema=bytes,
        )
        self.subscriber = self.broker.subscriber(
            *settings.kafka_topics.values(),
            batch=True,
            group_id=settings.kafka_group_id,
            max_records=settings.kafka_max_records,
            batch_timeout_ms=settings.kafka_batch_timeout_ms,
            auto_offset_reset="earliest",
            # Offsets are committed when the handler returns, i.e. after the batch's transaction committed;
            # on an exception every partition of the batch is rewound to its first record (nothing skipped).
            ack_policy=AckPolicy.NACK_ON_ERROR,
            listener=progress,
            decoder=raw_values,
            title=SUBSCRIBER_TITLE,
            description="Key-account events: CloudEvents 1.0, structured mode (the value, content-type "
            "application/cloudevents+json or none) or binary mode (ce_* headers, the data in the value); key = "
            "subject.",
        )
        self.subscriber(self.handle_batch)

    @property
    def kafka_consumer(self) -> AIOKafkaConsumer | None:
        """The running aiokafka consumer (None before start and after stop)."""
        consumer: AIOKafkaConsumer | None = self.subscriber.consumer
        return consumer

    async def handle_batch(self, body: list[bytes], message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        try:
            result = await self.ingest([inbound(record) for record in records])
        except Exception:
            # Every failed batch is rewound (FastStream's NACK) and read again: never at once, or a batch that
            # keeps failing would be re-read as fast as the broker can serve it.
            backoff_s = self.settings.kafka_retry_backoff_s
            log.exception("batch of %d records not stored; read again in %.1f s", len(records), backoff_s)
            await asyncio.sleep(backoff_s)
            raise
        if self.progress is not None:
            self.progress.batch_stored(records)
        if self.on_rejected is not None and (result.count("rejected") or result.count("conflict")):
            self.on_rejected()


def build_broker(settings: Settings, ingest: IngestBatch, metrics: Metrics | None = None) -> KafkaBroker:
    """A broker with one batch subscriber on every event topic, handing each batch to ``ingest`` (the
    pipeline); nothing connects until it starts."""
    return Consumer(settings, ingest, metrics).broker
