"""`kamwatch worker` processes on a real Kafka broker (six partitions per topic): a second worker joining
mid-stream and one SIGKILLed and restarted, or the broker restarted mid-stream, end with the state of
`kamwatch replay` of the same records; each dead letter is on the DLQ topic once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.flows.ingest import Pipeline
from services.flows.replay import replay_file
from services.platform.database import Database
from services.platform.settings import Settings
from tests.dbutil import cloned_database, snapshot
from tests.events import at, encode, event
from tests.kafka import RealBroker, Record, group_lag, metric_sum, produce, read_topic
from tests.processes import Service, kamwatch_service, until

pytestmark = [pytest.mark.kafka, pytest.mark.processes, pytest.mark.xdist_group("kafka")]

# Small batches: the stream lasts long enough for a second worker to join and for a kill to land mid-stream.
WORKER_ENV = {"KAMWATCH_WORKER_EVALUATES": "false", "KAMWATCH_KAFKA_MAX_RECORDS": "25"}


def stream(accounts: int, per_account: int) -> list[tuple[str, bytes]]:
    """(stream, record) pairs: usage and tickets, exact redeliveries, a few bad records."""
    records: list[tuple[str, bytes]] = []
    for n in range(per_account):
        for a in range(accounts):
            subject = f"acc-{a}"
            day = 1 + (n * 7 + a) % 27
            usage = {"quantity": n % 5, "user_id": f"u{n % 7}"}
            records.append(("usage", encode(event("usage", subject, at(day, hour=n % 24), usage))))
            if n % 10 == 0:
                status = ["opened", "escalated", "resolved"][(n // 10) % 3]
                ticket = {"ticket_id": f"t{n % 3}", "status": status, "priority": "high"}
                records.append(("support_tickets", encode(event("support_ticket", subject, at(day), ticket))))
            if n % 25 == 0:
                records.append(records[-1])  # an exact redelivery
                records.append(("usage", b'{"specversion": "1.0", "broken": ' + str(a * 1000 + n).encode()))
    return records


def subject_key(value: bytes) -> bytes | None:
    start = value.find(b'"subject":"')
    return value[start + 11 : value.index(b'"', start + 11)] if start >= 0 else None


async def produce_stream(settings: Settings, records: Sequence[tuple[str, bytes]]) -> None:
    by_topic: dict[str, list[Record]] = {}
    for name, value in records:
        by_topic.setdefault(settings.kafka_topics[name], []).append(Record(value, subject_key(value)))
    for topic, batch in by_topic.items():
        await produce(settings.kafka_bootstrap_servers, topic, batch)


async def replayed(server_url: str, records: Sequence[tuple[str, bytes]], path: Path) -> dict[str, Any]:
    """The state `kamwatch replay` of the same records leaves (ingestion tables; dead letters by content)."""
    await asyncio.to_thread(path.write_bytes, b"\n".join(value for _, value in records) + b"\n")
    async with cloned_database(server_url) as url:
        db = await Database.open(Settings(database_url=url))
        try:
            await replay_file(Pipeline(db), path, batch_size=500)
            return comparable(await snapshot(db))
        finally:
            await db.close()


def comparable(state: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """A snapshot without what differs by ingress: dead letters by (reason, field, raw) only, as a multiset."""
    letters = Counter((reason, field, bytes(raw)) for _, _, reason, field, raw in state["dead_letters"])
    return {**{k: v for k, v in state.items() if k not in ("dead_letters", "touched_accounts")}, "letters": letters}


async def count(db: Database, query: str) -> int:
    async with db.unit_of_work() as conn:
        return int((await conn.execute(text(query))).scalar_one())


async def stored_by(worker: Service) -> float:
    try:
        return metric_sum((await worker.client.get("/metrics")).text, "kamwatch_events_total", result="accepted")
    except httpx.TransportError:
        return 0.0


async def drained(settings: Settings) -> int:
    return await group_lag(settings.kafka_bootstrap_servers, settings.kafka_group_id, settings.kafka_topics.values())


async def dead_letters_once(settings: Settings, db: Database) -> None:
    """Every dead letter is on the DLQ topic, once (a worker running to publish them)."""
    await until(
        lambda: count(db, "SELECT count(*) FROM dead_letters WHERE published_at IS NULL"), lambda n: n == 0,
        timeout_s=60, what="dead letters not yet published",
    )  # fmt: skip
    on_topic = Counter(
        int(dict(record.headers)["kamwatch-dead-letter-id"])
        for record in await read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic)
    )
    async with db.unit_of_work() as conn:
        ids = [row[0] for row in await conn.execute(text("SELECT id FROM dead_letters"))]
    assert on_topic == Counter(ids)


async def assigned(worker: Service, topic: str) -> bool:
    """Whether the worker holds partitions of ``topic`` (it measures their lag)."""
    try:
        exposition = (await worker.client.get("/metrics")).text
    except httpx.TransportError:
        return False
    lines = exposition.splitlines()
    return any(line.startswith("kamwatch_consumer_lag{") and f'topic="{topic}"' in line for line in lines)


async def test_workers_joining_and_killed_mid_stream_end_with_the_state_of_a_replay(
    kafka_settings: Settings, db: Database, server_url: str, tmp_path: Path
) -> None:
    records = stream(accounts=40, per_account=150)
    expected = await replayed(server_url, records, tmp_path / "stream.ndjson")
    total = len(expected["event_keys"])
    thirds = [records[: len(records) // 3], records[len(records) // 3 : 2 * len(records) // 3]]
    thirds.append(records[2 * len(records) // 3 :])
    usage = kafka_settings.kafka_topics["usage"]

    async with AsyncExitStack() as workers:

        async def worker(name: str) -> Service:
            log = tmp_path / f"worker-{name}.log"
            service = kamwatch_service(kafka_settings, "worker", env=WORKER_ENV, stderr=log)
            return await workers.enter_async_context(service)

        await produce_stream(kafka_settings, thirds[0])
        first = await worker("a")
        await until(lambda: stored_by(first), lambda n: n > 0, timeout_s=60, what="events stored by the first")
        second = await worker("b")  # joins: the group rebalances while the first consumes
        await until(lambda: assigned(second, usage), bool, timeout_s=60, what="partitions of the second")
        await produce_stream(kafka_settings, thirds[1])
        await until(lambda: stored_by(second), lambda n: n > 0, timeout_s=60, what="events stored by the second")
        before = await stored_by(first)
        await produce_stream(kafka_settings, thirds[2])
        await until(lambda: stored_by(first), lambda n: n > before, timeout_s=60, what="the first consuming")
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
        assert await count(db, "SELECT count(*) FROM event_keys") < total, "the stream was over before the kill"
        await worker("a-again")
        await until(lambda: drained(kafka_settings), lambda lag: lag == 0, timeout_s=120, what="group lag")
        await dead_letters_once(kafka_settings, db)

    assert comparable(await snapshot(db)) == expected


async def test_a_broker_restarted_mid_stream_loses_nothing(
    kafka_settings: Settings, kafka_broker: RealBroker, db: Database, server_url: str, tmp_path: Path
) -> None:
    records = stream(accounts=20, per_account=100)
    await produce_stream(kafka_settings, records)
    expected = await replayed(server_url, records, tmp_path / "stream.ndjson")
    total = len(expected["event_keys"])
    settings = kafka_settings.model_copy(update={"kafka_stall_s": 600.0})  # readiness from the broker alone

    log = tmp_path / "worker.log"
    async with kamwatch_service(settings, "worker", env=WORKER_ENV, stderr=log) as worker:
        await until(worker.readiness, lambda status: status == 200, timeout_s=60, what="/readyz")
        await until(
            lambda: count(db, "SELECT count(*) FROM event_keys"), lambda n: n >= total // 10, timeout_s=60,
            what="events stored",
        )  # fmt: skip
        await asyncio.to_thread(kafka_broker.stop)
        try:
            await until(worker.readiness, lambda status: status == 503, timeout_s=60, what="/readyz")
            assert await count(db, "SELECT count(*) FROM event_keys") < total, "the stream was over"
        finally:
            await asyncio.to_thread(kafka_broker.start)
        await until(lambda: drained(settings), lambda lag: lag == 0, timeout_s=120, what="group lag")
        await until(worker.readiness, lambda status: status == 200, timeout_s=60, what="/readyz")
        await dead_letters_once(settings, db)

    assert comparable(await snapshot(db)) == expected
