"""`kamwatch worker` on a real Kafka broker, as operated: a missing DLQ topic, a consumer that stalls or cannot
fetch (lag and readiness say so), SIGTERM while the DLQ topic is gone."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import at, encode, event
from tests.kafka import Record, delete_topics, group_lag, list_topics, metric_sum, produce, read_topic
from tests.processes import KAMWATCH, Service, kamwatch_service, settings_env, until

pytestmark = [pytest.mark.kafka, pytest.mark.processes, pytest.mark.xdist_group("kafka")]

ONLY_INGEST = {"KAMWATCH_WORKER_EVALUATES": "false"}


async def count(db: Database, query: str) -> int:
    async with db.unit_of_work() as conn:
        return int((await conn.execute(text(query))).scalar_one())


async def lag(worker: Service, settings: Settings) -> float:
    try:
        exposition = (await worker.client.get("/metrics")).text
    except httpx.TransportError:
        return -1.0
    return sum(metric_sum(exposition, "kamwatch_consumer_lag", topic=t) for t in settings.kafka_topics.values())


def usage(n: int, prefix: str = "e") -> Record:
    document = event("usage", f"acc-{n % 20}", at(2), {"quantity": 1}, id=f"{prefix}-{n}")
    return Record(encode(document), document["subject"].encode())


async def test_a_missing_dlq_topic_is_named_at_start_or_created(
    kafka_settings: Settings, db: Database, tmp_path: Path
) -> None:
    bootstrap, dlq = kafka_settings.kafka_bootstrap_servers, kafka_settings.kafka_dlq_topic
    await delete_topics(bootstrap, [dlq])

    refused = await asyncio.create_subprocess_exec(
        str(KAMWATCH), "worker",
        env={**os.environ, **settings_env(kafka_settings), "KAMWATCH_KAFKA_CREATE_TOPICS": "false"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(refused.communicate(), timeout=60)
    assert refused.returncode == 2, stderr.decode()
    assert f"Kafka topics missing on {bootstrap}: {dlq}" in stderr.decode()
    assert dlq not in await list_topics(bootstrap)

    # allowed to create it (the default): it is there, and a dead letter reaches it
    await produce(bootstrap, kafka_settings.kafka_topics["usage"], [Record(b"{not json", b"acc-1")])
    async with kamwatch_service(kafka_settings, "worker", env=ONLY_INGEST, stderr=tmp_path / "worker.log"):
        (letter,) = await until(
            lambda: read_topic(bootstrap, dlq), lambda records: len(records) == 1, timeout_s=60,
            what="the dead letter on the DLQ topic the worker created",
        )  # fmt: skip
    assert letter.value == b"{not json"


async def test_the_dlq_topic_gone_stops_neither_ingestion_nor_sigterm(
    kafka_settings: Settings, db: Database, tmp_path: Path
) -> None:
    bootstrap, dlq = kafka_settings.kafka_bootstrap_servers, kafka_settings.kafka_dlq_topic
    topic = kafka_settings.kafka_topics["usage"]
    stored = "SELECT count(*) FROM raw_events"
    async with kamwatch_service(kafka_settings, "worker", env=ONLY_INGEST, stderr=tmp_path / "worker.log") as worker:
        await produce(bootstrap, topic, [usage(0)])
        await until(lambda: count(db, stored), lambda n: n == 1, timeout_s=60, what="the first event stored")
        await delete_topics(bootstrap, [dlq])

        # a poison record, then good ones: the poison is recorded, the good ones stored behind it
        await produce(bootstrap, topic, [Record(b"{not json", b"acc-1"), *(usage(n) for n in range(1, 50))])
        await until(lambda: count(db, stored), lambda n: n == 50, timeout_s=30, what="the events behind the poison")

        # SIGTERM while the dead letter waits for a topic that is gone: the worker stops within its grace period
        await asyncio.sleep(1.0)  # the relay is sending by now (it was woken by the batch)
        worker.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        await asyncio.wait_for(worker.process.wait(), timeout=60)
        stopped_in = time.monotonic() - started
    assert stopped_in < 10, f"stopped {stopped_in:.1f} s after SIGTERM"
    assert await count(db, "SELECT count(*) FROM dead_letters WHERE published_at IS NULL") == 1
    assert await group_lag(bootstrap, kafka_settings.kafka_group_id, [topic]) == 0

    # a worker started again creates the topic and publishes the dead letter: once
    async with kamwatch_service(kafka_settings, "worker", env=ONLY_INGEST, stderr=tmp_path / "worker.log"):
        await until(
            lambda: count(db, "SELECT count(*) FROM dead_letters WHERE published_at IS NULL"), lambda n: n == 0,
            timeout_s=60, what="the dead letter published",
        )  # fmt: skip
    letters = await read_topic(bootstrap, dlq)
    assert [record.value for record in letters] == [b"{not json"]


async def test_lag_is_measured_and_readiness_fails_while_the_consumer_stalls(
    kafka_settings: Settings, db: Database, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(update={"kafka_stall_s": 2.0})
    bootstrap = settings.kafka_bootstrap_servers
    records = [usage(n) for n in range(300)]
    async with kamwatch_service(settings, "worker", env=ONLY_INGEST, stderr=tmp_path / "worker.log") as worker:
        await worker.wait_until_serving()
        await until(worker.readiness, lambda status: status == 200, timeout_s=60, what="/readyz")
        async with db.transaction() as conn:
            # every batch waits for this lock: the consumer fetches but stores nothing
            await conn.execute("LOCK TABLE event_keys IN ACCESS EXCLUSIVE MODE")
            await produce(bootstrap, settings.kafka_topics["usage"], records[:150])
            await produce(bootstrap, settings.kafka_topics["support_tickets"], records[150:])  # lag on both topics
            await until(lambda: lag(worker, settings), lambda n: n == 300, timeout_s=30, what="consumer lag")
            await until(worker.readiness, lambda status: status == 503, timeout_s=30, what="/readyz")
        await until(lambda: lag(worker, settings), lambda n: n == 0, timeout_s=60, what="consumer lag")
        await until(worker.readiness, lambda status: status == 200, timeout_s=30, what="/readyz")
    assert await count(db, "SELECT count(*) FROM event_keys") == 300


async def test_a_fetch_error_makes_the_worker_unready(kafka_settings: Settings, tmp_path: Path) -> None:
    # A worker without the codec libraries (as before they were dependencies) meets zstd records.
    hidden = tmp_path / "without-codecs"
    hidden.mkdir()
    (hidden / "cramjam.py").write_text("raise ImportError('hidden for this test')\n")
    settings = kafka_settings.model_copy(update={"kafka_stall_s": 30.0})
    await produce(settings.kafka_bootstrap_servers, settings.kafka_topics["usage"], [usage(0)], compression="zstd")
    path = os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))
    env: dict[str, Any] = {**ONLY_INGEST, "PYTHONPATH": path}
    async with kamwatch_service(settings, "worker", env=env, stderr=tmp_path / "worker.log") as worker:
        await worker.wait_until_serving()
        await until(worker.readiness, lambda status: status == 503, timeout_s=60, what="/readyz")
    assert "UnsupportedCodecError" in (tmp_path / "worker.log").read_text()
