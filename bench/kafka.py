"""Kafka benchmark: `kamwatch worker` processes through a real broker (../shared/kafka), against the pipeline.

    flock /tmp/kamwatch-bench.lock .venv/bin/python bench/kafka.py --events 300000 --accounts 10000

Throughput: the events of ``bench/ingest.py`` (same generator, same seed) are produced to the seven topics (six
partitions each, keyed by account) before any worker starts; then, in this order and each on a fresh database
and consumer group, ``kamwatch replay`` of the same events in process (the pipeline as ``bench/ingest.py`` times
it), one worker, two workers (KAMWATCH_WORKER_EVALUATES=false: ingestion only). A worker run is timed from the
start of its processes to the group's lag reaching 0 (startup included; the time to the first commit is printed
too). Prints events/s and the ratio of each worker run to the replay of the same run.

Latency: ``--latency-events`` strategic accounts, each with its own KAM on Slack (a local stand-in), healthy
history produced and scored first; then, one at a time, the executive sponsor (its only decision-level contact)
leaves one of them and the time from the send of that record is taken to: stored (its ``received_at``, the
database's clock), rescored (the account's score dated after the event), alert row (the sponsor_left alert,
critical), notification (the Slack stand-in received the DM). A `kamwatch worker` (scoring beside consumption) and
a `kamwatch alerter` run with default settings; the database is polled every 20 ms for the middle two. Prints
p50/p90/p99/max of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest import generate  # noqa: E402  # bench/ingest.py, beside this script

from services.flows.ingest import Pipeline  # noqa: E402
from services.flows.replay import replay_file  # noqa: E402
from services.platform.database import Database, start_embedded  # noqa: E402
from services.platform.runtime import tune_gc  # noqa: E402
from services.platform.settings import DEFAULT_TOPICS, Settings  # noqa: E402
from tests.dbutil import admin_dsn, database_url  # noqa: E402
from tests.integration.servers import SlackStandIn  # noqa: E402
from tests.kafka import RealBroker, Record, create_topics, group_lag, kafka_home, produce, unavailable_reason  # noqa: E402
from tests.processes import kamwatch_service, until  # noqa: E402

STREAM_OF = {
    "usage": "usage",
    "support_ticket": "support_tickets",
    "payment": "payments",
    "contact_change": "contacts",
    "engagement": "engagement",
    "account": "accounts",
    "kam": "accounts",
}


def stream_of(document: bytes) -> str:
    kind = document.split(b'"type":"kamwatch.', 1)[1].split(b".v1", 1)[0].decode()
    return STREAM_OF[kind]


def key_of(document: bytes) -> bytes:
    return document.split(b'"subject":"', 1)[1].split(b'"', 1)[0]


@dataclass
class Cluster:
    """The broker and the PostgreSQL server of the run; a fresh database and topics per measurement."""

    broker: RealBroker
    server_url: str
    workdir: Path
    count: int = 0

    async def database(self) -> str:
        self.count += 1
        name = f"kamwatch_bench_{self.count}"
        admin = await asyncpg.connect(admin_dsn(self.server_url))
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        url = database_url(self.server_url, name)
        db = await Database.open(Settings(database_url=url))
        try:
            await db.migrate()
        finally:
            await db.close()
        return url

    async def settings(self, prefix: str, url: str, group: str) -> Settings:
        topics = {stream: f"{prefix}.{topic}" for stream, topic in DEFAULT_TOPICS.items()}
        return Settings(
            database_url=url,
            data_dir=self.workdir / "data",
            kafka_bootstrap_servers=self.broker.bootstrap,
            kafka_topics=topics,
            kafka_dlq_topic=f"{prefix}.dlq",
            kafka_group_id=group,
        )


async def produce_all(settings: Settings, documents: Sequence[bytes]) -> float:
    started = time.perf_counter()
    by_topic: dict[str, list[Record]] = {}
    for document in documents:
        by_topic.setdefault(settings.kafka_topics[stream_of(document)], []).append(Record(document, key_of(document)))
    for topic, records in by_topic.items():
        await produce(settings.kafka_bootstrap_servers, topic, records, max_batch_size=512 * 1024)
    return time.perf_counter() - started


async def replay_rate(cluster: Cluster, stream: Path, events: int) -> float:
    url = await cluster.database()
    db = await Database.open(Settings(database_url=url))
    try:
        started = time.perf_counter()
        await replay_file(Pipeline(db), stream, batch_size=5000)
        return events / (time.perf_counter() - started)
    finally:
        await db.close()


async def worker_rate(cluster: Cluster, topics: Settings, workers: int, events: int, log: Path) -> tuple[float, float]:
    """Events/s from the start of ``workers`` processes to lag 0, and the seconds from their start to the first
    commit (processes starting, migrations checked, topics checked, the group joined)."""
    url = await cluster.database()
    settings = topics.model_copy(update={"database_url": url, "kafka_group_id": f"bench-{cluster.count}"})
    env = {"KAMWATCH_WORKER_EVALUATES": "false"}
    watched = list(settings.kafka_topics.values())
    async with contextlib.AsyncExitStack() as stack:
        started = time.perf_counter()
        for _ in range(workers):
            await stack.enter_async_context(kamwatch_service(settings, "worker", env=env, stderr=log))
        first_commit = None
        while True:
            try:
                lag = await group_lag(settings.kafka_bootstrap_servers, settings.kafka_group_id, watched)
            except Exception:  # the group does not exist yet
                lag = events
            now = time.perf_counter()
            if first_commit is None and lag < events:
                first_commit = now - started
            if lag == 0:
                return events / (now - started), first_commit or 0.0
            await asyncio.sleep(0.2)


async def throughput(cluster: Cluster, args: argparse.Namespace) -> None:
    documents = list(generate(args.events, args.accounts, args.seed))
    stream = cluster.workdir / "events.ndjson"
    stream.write_bytes(b"\n".join(documents) + b"\n")
    topics = await cluster.settings("throughput", "", "unused")
    await create_topics(cluster.broker.bootstrap, [*topics.kafka_topics.values(), topics.kafka_dlq_topic])
    produced_in = await produce_all(topics, documents)
    print(f"events                 {args.events:,} across {args.accounts:,} accounts, produced in {produced_in:.1f} s")
    log = cluster.workdir / "workers.log"
    for round_ in range(1, args.rounds + 1):
        replay = await replay_rate(cluster, stream, args.events)
        one, one_start = await worker_rate(cluster, topics, 1, args.events, log)
        two, two_start = await worker_rate(cluster, topics, 2, args.events, log)
        print(
            f"round {round_}: replay {replay:,.0f} events/s | 1 worker {one:,.0f} events/s, ratio {one / replay:.2f} "
            f"(first commit after {one_start:.1f} s; from it: {steady(one, one_start, args.events) / replay:.2f}) | "
            f"2 workers {two:,.0f} events/s, ratio {two / replay:.2f} (first commit after {two_start:.1f} s; from it: "
            f"{steady(two, two_start, args.events) / replay:.2f})"
        )


def steady(rate: float, startup_s: float, events: int) -> float:
    """The rate from the first commit on, from the rate from the start."""
    return events / max(1e-9, events / rate - startup_s)


# --- latency -------------------------------------------------------------------------------------------------


def seed_documents(accounts: int, now: datetime) -> list[bytes]:
    start = now - timedelta(days=60)
    found: list[dict[str, Any]] = []
    for a in range(accounts):
        account, kam = f"lat-{a:04d}", f"kam-{a:04d}"
        kam_profile = {"name": f"KAM {a}", "email": f"{kam}@example.com", "slack_user_id": f"U{a:06d}"}
        profile = {"name": f"Account {a}", "owner_kam_id": kam, "arr": "250000", "currency": "EUR", "tier": "strategic"}
        found += [envelope("kam", kam, start, kam_profile), envelope("account", account, start, profile)]
        # The sponsor is the only decision-level contact: their departure pages at once under the shipped rules
        # (a champion's would wait in the digest for a successor).
        for contact, role in (("c1", "executive_sponsor"), ("c2", "champion"), ("c3", "technical_evaluator")):
            change = {"contact_id": contact, "change": "added", "role": role, "name": f"{role} {a}"}
            found.append(envelope("contact_change", account, start, change))
        for day in range(59):
            for user in range(2):
                moment = start + timedelta(days=day, hours=9 + user)
                found.append(envelope("usage", account, moment, {"quantity": 10, "user_id": f"u{user}"}))
    return [orjson.dumps(document) for document in found]


_ids = iter(range(10**9))


def envelope(kind: str, subject: str, moment: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"lat-{next(_ids)}",
        "source": "bench/latency",
        "type": f"kamwatch.{kind}.v1",
        "subject": subject,
        "time": moment.isoformat(),
        "data": data,
    }


_PROBE_SQL = """
SELECT (SELECT extract(epoch FROM received_at) FROM raw_events WHERE event_id = $1 AND source = 'bench/latency'),
       EXISTS (SELECT FROM account_health WHERE account_id = $2 AND as_of >= $3),
       EXISTS (SELECT FROM alerts WHERE account_id = $2 AND rule = 'sponsor_left')
"""


@contextlib.asynccontextmanager
async def services(settings: Settings, workdir: Path) -> AsyncIterator[None]:
    async with (
        kamwatch_service(settings, "worker", stderr=workdir / "latency-worker.log"),
        kamwatch_service(settings, "alerter", stderr=workdir / "latency-alerter.log"),
    ):
        yield


async def latency(cluster: Cluster, args: argparse.Namespace) -> None:
    slack = SlackStandIn().start()
    try:
        url = await cluster.database()
        settings = (await cluster.settings("latency", url, "bench-latency")).model_copy(
            update={"slack_bot_token": SecretStr("xoxb-bench"), "slack_api_base_url": slack.api_url}
        )
        await create_topics(cluster.broker.bootstrap, [*settings.kafka_topics.values(), settings.kafka_dlq_topic])
        now = datetime.now(UTC)
        conn = await asyncpg.connect(admin_dsn(url, url.rsplit("/", 1)[-1].split("?")[0]))
        stages: dict[str, list[float]] = {"stored": [], "rescored": [], "alert row": [], "notification": []}
        async with services(settings, cluster.workdir):
            await produce_all(settings, seed_documents(args.latency_events, now))
            await until(
                lambda: conn.fetchval("SELECT count(*) FROM account_health"),
                lambda scored: scored >= args.latency_events,
                timeout_s=600,
                what="accounts scored",
            )
            await asyncio.sleep(2.0)  # the last drain's rest, then idle
            for a in range(args.latency_events):
                account = f"lat-{a:04d}"
                moment = datetime.now(UTC)
                left = {"contact_id": "c1", "change": "left_company", "role": "executive_sponsor", "name": f"sp {a}"}
                departure = envelope("contact_change", account, moment, left)
                record = Record(orjson.dumps(departure), account.encode())
                sent_wall, sent = time.time(), time.monotonic()
                await produce(settings.kafka_bootstrap_servers, settings.kafka_topics["contacts"], [record])
                seen: dict[str, float] = {}
                while len(seen) < 4 and time.monotonic() - sent < 30:
                    stored_at, rescored, alerted = await conn.fetchrow(_PROBE_SQL, departure["id"], account, moment)
                    now_mono = time.monotonic()
                    if stored_at is not None and "stored" not in seen:
                        seen["stored"] = float(stored_at) - sent_wall
                    if rescored and "rescored" not in seen:
                        seen["rescored"] = now_mono - sent
                    if alerted and "alert row" not in seen:
                        seen["alert row"] = now_mono - sent
                    dms = [r for r in slack.requests if r.body.get("channel") == f"U{a:06d}"]
                    if dms and "notification" not in seen:
                        seen["notification"] = dms[0].received_at - sent
                    await asyncio.sleep(0.02)
                for stage, seconds in seen.items():
                    stages[stage].append(seconds)
                await asyncio.sleep(0.3)
        await conn.close()
        print(
            f"latency over {args.latency_events} isolated events (one at a time, idle between; stored from the "
            "database's clock, notification from the Slack stand-in's, the others polled every 20 ms):"
        )
        for stage, values in stages.items():
            if len(values) < 2:
                print(f"  event → {stage:<13} {len(values)} observed")
                continue
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            print(
                f"  event → {stage:<13} p50 {cuts[49]:.2f} s, p90 {cuts[89]:.2f} s, p99 {cuts[98]:.2f} s, "
                f"max {max(values):.2f} s ({len(values)} observed)"
            )
    finally:
        slack.stop()


async def run(args: argparse.Namespace) -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench/kafka.py: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="kamwatch-bench-kafka-"))
    broker = RealBroker.start_new(kafka_home(), workdir / "kafka")
    embedded = None
    try:
        server_url = args.database_url
        if server_url is None:
            server_url, embedded = start_embedded(workdir / "pgdata")
        cluster = Cluster(broker, server_url, workdir)
        if not args.skip_throughput:
            await throughput(cluster, args)
        if args.latency_events:
            await latency(cluster, args)
    finally:
        broker.stop()
        if embedded is not None:
            embedded.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="Throughput rounds (replay, 1 worker, 2 workers).")
    parser.add_argument("--latency-events", type=int, default=120, help="0: no latency measurement.")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--database-url", default=None, help="A PostgreSQL server where databases may be created.")
    tune_gc()
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
