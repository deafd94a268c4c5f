"""The Kafka worker: FastStream batch consumer feeding the ingestion pipeline, dead letters to the DLQ topic."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.message import StreamMessage

from ingestion.parsing import InboundRecord
from ingestion.pipeline import BatchResult, EventResult
from services.flows.alerting import NotifyMode, build_alerting
from services.flows.evaluation import HealthEngine, RescorePacing, rescore_forever, sweep_forever
from services.flows.ingest import Pipeline
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.metrics import Metrics, ReadinessCheck, serve_metrics
from services.platform.observability import sample_forever
from services.platform.runtime import yield_cpu
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
        if outcome.status == "rejected":
            await publisher.publish(
                record.value or b"", key=record.key or None, headers=dead_letter_headers(record, outcome)
            )


def evaluation_tasks(
    engine: HealthEngine, db: Database, metrics: Metrics, settings: Settings
) -> list[asyncio.Task[None]]:
    """The engine's live loops: rescoring what ingestion touched, the scheduled sweep, the gauges."""
    return [
        asyncio.create_task(rescore_forever(engine, clock=utc_now, pacing=RescorePacing.from_settings(settings))),
        asyncio.create_task(
            sweep_forever(engine, interval_s=settings.sweep_interval_s, shards=settings.sweep_shards, clock=utc_now)
        ),
        asyncio.create_task(sample_forever(db, metrics, utc_now)),
    ]


@dataclass(frozen=True)
class LiveEngine:
    db: Database
    metrics: Metrics
    engine: HealthEngine


@asynccontextmanager
async def live_engine(settings: Settings, notify: NotifyMode) -> AsyncIterator[LiveEngine]:
    """A long-running service's metrics, migrated database and engine (with its alerting): the database opens
    first and closes last."""
    metrics = Metrics.create()
    db = await Database.open(settings)
    try:
        await db.migrate()
        alerting = build_alerting(settings, notify=notify, metrics=metrics)
        yield LiveEngine(db, metrics, HealthEngine.from_settings(db, settings, alerting, metrics=metrics))
    finally:
        metrics.close()
        await db.close()


@asynccontextmanager
async def serving(
    metrics: Metrics, settings: Settings, ready: ReadinessCheck, tasks: Sequence[asyncio.Task[None]]
) -> AsyncIterator[None]:
    """/metrics, /healthz and /readyz on KAMWATCH_METRICS_PORT while the block runs; ``tasks`` cancelled after."""
    try:
        server = await serve_metrics(metrics.registry, settings.metrics_host, settings.metrics_port, ready=ready)
        try:
            yield
        finally:
            await server.aclose()
    finally:
        for task in tasks:
            task.cancel()


async def run_worker(settings: Settings, *, notify: NotifyMode = "send") -> None:
    """Consume until stopped (SIGINT/SIGTERM), with /metrics, /healthz and /readyz on KAMWATCH_METRICS_PORT;
    unless KAMWATCH_WORKER_EVALUATES is false, also rescore the touched accounts beside ingestion and sweep on
    schedule."""
    async with live_engine(settings, notify) as live:
        pipeline = Pipeline(live.db, metrics=live.metrics)  # the accounts a batch touched are rescored beside it
        broker = build_broker(settings, partial(pipeline.ingest, ingress="kafka"), live.metrics)

        async def ready() -> bool:
            return await live.db.ping() and await broker.ping(timeout=2.0)

        tasks = evaluation_tasks(live.engine, live.db, live.metrics, settings) if settings.worker_evaluates else []
        async with serving(live.metrics, settings, ready, tasks):
            await FastStream(broker).run()


async def run_evaluator(settings: Settings, *, notify: NotifyMode = "send") -> None:
    """`kamwatch evaluator`: the rescoring, sweep and alerting of the workers, in processes of their own (so
    that scoring never takes CPU from consuming), until stopped; /metrics on KAMWATCH_METRICS_PORT."""
    yield_cpu(settings.evaluator_nice)
    async with live_engine(settings, notify) as live:
        tasks = evaluation_tasks(live.engine, live.db, live.metrics, settings)
        async with serving(live.metrics, settings, live.db.ping, tasks):
            await asyncio.gather(*tasks)
