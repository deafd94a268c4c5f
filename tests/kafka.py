"""A real Apache Kafka broker for tests and benchmarks: ``../shared/kafka`` (KRaft, single node) started on a
free port, and the few client calls the tests make (topics, producing, reading a topic, a group's lag).

The broker's directory is ``<repository>/../shared/kafka`` unless ``KAMWATCH_TEST_KAFKA_HOME`` says otherwise;
without it or without ``java``, the tests needing a broker skip and say why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.processes import free_port

HOME_ENV = "KAMWATCH_TEST_KAFKA_HOME"
REPOSITORY = Path(__file__).resolve().parents[1]
PARTITIONS = 6

Header = tuple[str, bytes]


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (with those label values) in a Prometheus text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def kafka_home() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured) if configured else REPOSITORY.parent / "shared" / "kafka"


def unavailable_reason(home: Path | None = None) -> str | None:
    """Why no broker can be started here, or None."""
    home = home or kafka_home()
    if not (home / "start-kraft.sh").is_file():
        return f"no Kafka broker at {home} (set {HOME_ENV}, or check out ../shared)"
    if shutil.which("java") is None:
        return "java not found (Debian: apt-get install openjdk-17-jre-headless; .ci/run installs it)"
    return None


@dataclass
class RealBroker:
    """A broker process on 127.0.0.1:``port`` keeping its log in ``data_dir``; stop and start it again (an
    outage) on the same port and directory, so that clients find the same cluster."""

    home: Path
    port: int
    data_dir: Path
    pid: int | None = None

    @classmethod
    def start_new(cls, home: Path, data_dir: Path) -> RealBroker:
        broker = cls(home, _free_port_pair(), data_dir)
        broker.start()
        return broker

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        started = subprocess.run(
            [str(self.home / "start-kraft.sh"), str(self.port), str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if started.returncode != 0:
            log = self.data_dir / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"the Kafka broker did not start: {started.stderr}\n{tail}")
        self.pid = int(started.stdout.strip().splitlines()[-1])

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.1)


def _free_port_pair() -> int:
    """A free port whose next one is free too (the broker's controller listens on PORT+1)."""
    for _ in range(100):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent, the start script's setsid) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


async def create_topics(
    bootstrap: str, topics: Iterable[str], *, partitions: int = PARTITIONS, configs: Mapping[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        new = [NewTopic(topic, partitions, 1, topic_configs=dict(configs or {})) for topic in topics]
        response = await admin.create_topics(new)
        errors = [error for error in response.topic_errors if error[1]]
        assert not errors, errors
        names = [topic.name for topic in new]
        for _ in range(100):  # until every partition has its leader: before, producers are refused
            described = await admin.describe_topics(names)
            if all(not t["error_code"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"topics {names} have no leaders yet")
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return [
            TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])
        ]
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(list(topics))
        for _ in range(100):  # deletion is asynchronous in the cluster
            if not set(topics) & set(await admin.list_topics()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"topics {topics} still listed")
    finally:
        await admin.close()


async def list_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


@dataclass(frozen=True)
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: Sequence[Header] = ()
    partition: int | None = None
    """None: the producer's partitioner chooses (by key)."""


async def produce(
    bootstrap: str, topic: str, records: Iterable[Record], *, compression: str | None = None, **options: Any
) -> None:
    """Send every record (in order per key) and wait until the broker has them all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type=compression, linger_ms=20, acks="all", **options
    )
    await producer.start()
    try:
        pending = [
            await producer.send(
                topic, record.value, key=record.key, headers=list(record.headers), partition=record.partition
            )
            for record in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of ``topic`` now, partition by partition (aiokafka ConsumerRecords)."""
    partitions = await partitions_of(bootstrap, topic)
    if not partitions:  # no such topic (yet)
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > 0}
        if not pending:
            return []
        consumer.assign(list(pending))  # only those with records: a filter on getmany can leave it waiting
        await consumer.seek_to_beginning(*pending)
        records: list[Any] = []
        while pending:
            for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                records.extend(batch)
                if batch and batch[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await consumer.stop()


async def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Records of ``topics`` the consumer group has not committed: end offsets minus committed offsets."""
    wanted = set(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [tp for topic in sorted(wanted) for tp in await partitions_of(bootstrap, topic)]
        ends = await consumer.end_offsets(partitions)
        lag = 0
        for tp in partitions:
            done = committed.get(tp)
            lag += ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
        return lag
    finally:
        await consumer.stop()
        await admin.close()
