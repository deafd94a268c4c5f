"""``kamwatch worker`` and ``kamwatch evaluator``: the Kafka consumer and the live evaluation loops, with
/metrics, /healthz and /readyz on KAMWATCH_METRICS_PORT."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from faststream import FastStream

from health_engine.quarantine import quarantined_count
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine, RescorePacing, rescore_forever, sweep_forever
from services.flows.ingest import Pipeline, time_window
from services.flows.notifying import NotifyMode
from services.platform.clock import utc_now
from services.platform.currency import exchange_rates
from services.platform.database import Database
from services.platform.metrics import Metrics, ReadinessCheck, serve_metrics
from services.platform.observability import sample_forever
from services.platform.runtime import yield_cpu
from services.platform.settings import Settings
from services.worker.consumer import Consumer
from services.worker.dlq import DeadLetterRelay
from services.worker.progress import ConsumerProgress
from services.worker.topics import ensure_topics

log = logging.getLogger(__name__)


def evaluation_tasks(
    engine: HealthEngine, db: Database, metrics: Metrics, settings: Settings
) -> list[asyncio.Task[None]]:
    """The engine's live loops: rescoring what ingestion touched, the scheduled sweep, the gauges."""
    return [
        asyncio.create_task(rescore_forever(engine, clock=utc_now, pacing=RescorePacing.from_settings(settings))),
        asyncio.create_task(
            sweep_forever(engine, interval_s=settings.sweep_interval_s, shards=settings.sweep_shards, clock=utc_now)
        ),
        asyncio.create_task(sample_forever(db, metrics, utc_now, exchange_rates(settings))),
    ]


async def degraded(db: Database) -> bool | str:
    """Ready; "degraded" with the count when accounts are quarantined (the others are evaluated)."""
    async with db.transaction() as conn:
        count = await quarantined_count(conn)
    return f"degraded: {count} account(s) quarantined (kamwatch quarantine list)" if count else True


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
        # let them finish their cleanup (rollbacks, released claims) before the database closes
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)


async def run_worker(settings: Settings, *, notify: NotifyMode = "send") -> None:
    """Consume until stopped (SIGINT/SIGTERM), with /metrics, /healthz and /readyz on KAMWATCH_METRICS_PORT;
    publish dead letters to the DLQ topic and measure lag beside consuming; unless KAMWATCH_WORKER_EVALUATES is
    false, also rescore the touched accounts beside ingestion and sweep on schedule. The topics are checked (or
    created) first: ``KafkaSetupError`` says what is missing."""
    await ensure_topics(settings)
    async with live_engine(settings, notify) as live:
        # the accounts a batch touched are rescored beside it
        pipeline = Pipeline(live.db, metrics=live.metrics, window=time_window(settings))
        progress = ConsumerProgress(live.metrics, stall_s=settings.kafka_stall_s)
        relay = DeadLetterRelay(live.db, settings, live.metrics)
        consumer = Consumer(
            settings,
            partial(pipeline.ingest, ingress="kafka"),
            live.metrics,
            progress=progress,
            on_rejected=relay.wake,
        )

        async def ready() -> bool | str:
            if (reason := progress.not_ready_because()) is not None:
                log.warning("not ready: %s", reason)
                return False
            if not (await live.db.ping() and await consumer.broker.ping(timeout=1.0)):
                return False
            return await degraded(live.db)

        await relay.start()
        try:
            tasks = [
                asyncio.create_task(relay.run_forever()),
                asyncio.create_task(
                    progress.measure_forever(lambda: consumer.kafka_consumer, settings.kafka_lag_interval_s)
                ),
            ]
            if settings.worker_evaluates:
                tasks += evaluation_tasks(live.engine, live.db, live.metrics, settings)
            async with serving(live.metrics, settings, ready, tasks):
                await FastStream(consumer.broker).run()
        finally:
            await relay.stop()


async def run_evaluator(settings: Settings, *, notify: NotifyMode = "send") -> None:
    """`kamwatch evaluator`: the rescoring, sweep and alerting of the workers, in processes of their own (so
    that scoring never takes CPU from consuming), until stopped; /metrics on KAMWATCH_METRICS_PORT."""
    yield_cpu(settings.evaluator_nice)
    async with live_engine(settings, notify) as live:
        tasks = evaluation_tasks(live.engine, live.db, live.metrics, settings)

        async def ready() -> bool | str:
            return await live.db.ping() and await degraded(live.db)

        async with serving(live.metrics, settings, ready, tasks):
            await asyncio.gather(*tasks)
