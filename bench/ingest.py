"""Ingest benchmark: replay a generated stream through the pipeline, then time a plain COPY baseline.

    .venv/bin/python bench/ingest.py --events 1000000 --accounts 10000

Prints events/s, p50/p99 batch commit latency, peak RSS, the COPY baseline (same rows into a table
with the same unique key (source, id) on the same server) and the ratio pipeline/COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import orjson

from health_engine.config import load_scoring_config
from ingestion.pipeline import BatchResult, Ingress, ParsedBatch
from services.flows.evaluation import HealthEngine, RescorePacing, rescore_forever
from services.flows.ingest import Pipeline
from services.flows.replay import read_batches, replay_file
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.runtime import tune_gc, yield_cpu
from services.platform.settings import Settings

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=366)


def profile_events(accounts: int) -> list[bytes]:
    """One CRM profile per account, so that every account can be scored."""
    tiers = ("strategic", "key", "standard", "standard")
    return [
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": f"profile-{a}",
                "source": "bench/crm",
                "type": "kamwatch.account.v1",
                "subject": f"acc-{a:05d}",
                "time": START.isoformat(),
                "data": {
                    "name": f"Account {a}",
                    "owner_kam_id": f"kam-{a % 50}",
                    "arr": str(10_000 + a),
                    "currency": "EUR",
                    "tier": tiers[a % 4],
                },
            }
        )
        for a in range(accounts)
    ]


def generate(events: int, accounts: int, seed: int) -> Iterator[bytes]:
    """A synthetic stream in the event contract: mostly usage, with tickets, invoices, contacts, meetings."""
    rng = random.Random(seed)
    span = timedelta(days=365).total_seconds()
    for n in range(events):
        account = f"acc-{rng.randrange(accounts):05d}"
        moment = START + timedelta(seconds=span * n / events + rng.random() * 60)
        roll = rng.random()
        if roll < 0.75:
            kind, data = (
                "usage",
                {"metric": "activity", "quantity": rng.randint(1, 5), "user_id": f"u{rng.randrange(40)}"},
            )
        elif roll < 0.85:
            kind = "support_ticket"
            data = {
                "ticket_id": f"t-{rng.randrange(20)}",
                "status": rng.choice(["opened", "updated", "escalated", "resolved", "closed"]),
                "priority": rng.choice(["low", "normal", "high", "urgent"]),
            }
        elif roll < 0.90:
            kind = "payment"
            data = {
                "invoice_id": f"inv-{rng.randrange(12)}",
                "status": rng.choice(["issued", "paid", "failed"]),
                "amount": f"{rng.randrange(1000, 90000)}.00",
                "currency": "EUR",
                "due_date": (moment + timedelta(days=30)).date().isoformat(),
            }
        elif roll < 0.95:
            kind = "contact_change"
            data = {
                "contact_id": f"c-{rng.randrange(8)}",
                "change": rng.choice(["added", "updated", "role_changed", "left_company"]),
                "role": rng.choice(["champion", "executive_sponsor", "user", "decision_maker"]),
                "name": "Jane Doe",
            }
        else:
            kind = "engagement"
            data = {"kind": "meeting", "outcome": rng.choice(["attended", "declined", "no_show"])}
        yield orjson.dumps(
            {
                "specversion": "1.0",
                "id": f"bench-{n}",
                "source": "bench/generator",
                "type": f"kamwatch.{kind}.v1",
                "subject": account,
                "time": moment.isoformat(),
                "data": data,
            }
        )


@dataclass
class TimedPipeline(Pipeline):
    """The real pipeline, recording how long each batch takes to write and commit."""

    latencies: list[float] = field(default_factory=list)

    async def store(self, batch: ParsedBatch, *, ingress: Ingress, dead_letter: bool = True) -> BatchResult:
        started = time.perf_counter()
        result = await super().store(batch, ingress=ingress, dead_letter=dead_letter)
        self.latencies.append(time.perf_counter() - started)
        return result


def rescored_so_far(metrics: Metrics | None) -> int:
    assert metrics is not None
    return int(
        sum(
            s.value
            for family in metrics.registry.collect()
            for s in family.samples
            if s.name == "kamwatch_rescored_accounts_total"
        )
    )


def evaluator_process(url: str, done: EventType, counts: SimpleQueue[int]) -> None:
    """A `kamwatch evaluator`: its priority and its rescoring loop, until ``done`` and nothing is left to claim."""
    tune_gc()
    settings = Settings(database_url=url)
    yield_cpu(settings.evaluator_nice)

    async def drain() -> int:
        db = await Database.open(settings)
        try:
            engine = HealthEngine(db, load_scoring_config(None), metrics=Metrics.create())
            pacing = RescorePacing.from_settings(settings)
            await rescore_forever(engine, clock=lambda: END, idle_s=0.2, pacing=pacing, until=done.is_set)
            return rescored_so_far(engine.metrics)
        finally:
            await db.close()

    counts.put(asyncio.run(drain()))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="kamwatch-bench-"))
    try:
        await measure(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # gigabytes: the stream and the embedded database


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    stream = workdir / "events.ndjson"
    with stream.open("wb") as out:
        for line in generate(args.events, args.accounts, args.seed):
            out.write(line + b"\n")
    settings = Settings(data_dir=workdir / "data", database_url=args.database_url)
    db = await Database.open(settings)
    await db.migrate()
    pipeline = TimedPipeline(db)
    started = time.perf_counter()
    if args.rescore:
        # Seed the profiles (rescoring skips accounts without one), then rescore touched accounts while
        # ingesting: a drainer in this process ("inline", as a worker with KAMWATCH_WORKER_EVALUATES), or in
        # a separate process ("evaluator", as `kamwatch evaluator` beside workers that only consume).
        profiles = workdir / "profiles.ndjson"
        profiles.write_bytes(b"\n".join(profile_events(args.accounts)) + b"\n")
        await replay_file(pipeline, profiles, batch_size=args.batch_size)
        pipeline.latencies.clear()
        started = time.perf_counter()
        if args.rescore == "inline":
            engine = HealthEngine(db, load_scoring_config(None), metrics=Metrics.create())
            drainer = asyncio.create_task(rescore_forever(engine, clock=lambda: END))
            stats = await replay_file(pipeline, stream, batch_size=args.batch_size)
            ingested = time.perf_counter() - started
            drainer.cancel()
            rescored = await engine.rescore_pending(END) + rescored_so_far(engine.metrics)
        else:
            context = multiprocessing.get_context("spawn")
            done, counts = context.Event(), context.SimpleQueue()
            evaluators = [
                context.Process(target=evaluator_process, args=(db.url, done, counts)) for _ in range(args.evaluators)
            ]
            for evaluator in evaluators:
                evaluator.start()
            stats = await replay_file(pipeline, stream, batch_size=args.batch_size)
            ingested = time.perf_counter() - started
            done.set()  # the evaluators drain what is left, then report
            rescored = sum(counts.get() for _ in evaluators)
            for evaluator in evaluators:
                evaluator.join()
    else:
        stats = await replay_file(pipeline, stream, batch_size=args.batch_size)
        ingested = time.perf_counter() - started
    elapsed = time.perf_counter() - started
    latencies = pipeline.latencies
    accepted = stats.accepted
    rate = args.events / elapsed
    cuts = statistics.quantiles(latencies, n=100)

    # Baseline: the same (source, id) rows, COPY'd into a table with that unique key, same batches.
    async with db.autocommit() as driver:
        await driver.execute(
            'DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (source text COLLATE "C", '
            'event_id text COLLATE "C", type text, subject text, event_time timestamptz, payload jsonb, '
            "PRIMARY KEY (source, event_id))"
        )
    copy_started = time.perf_counter()
    for records in read_batches(stream, args.batch_size):
        rows = []
        for record in records:
            doc = orjson.loads(record.payload)
            rows.append(
                (
                    doc["source"],
                    doc["id"],
                    doc["type"],
                    doc["subject"],
                    datetime.fromisoformat(doc["time"]),
                    record.payload.decode(),
                )
            )
        async with db.transaction() as driver:
            await driver.copy_records_to_table("bench_copy", records=rows)
    copy_rate = args.events / (time.perf_counter() - copy_started)
    await db.close()
    if db.embedded is not None:
        db.embedded.cleanup()  # stop the embedded server before its directory goes

    print(f"events                 {args.events:,} across {args.accounts:,} accounts (batch {args.batch_size})")
    print(f"accepted               {accepted:,}")
    print(f"pipeline               {rate:,.0f} events/s ({elapsed:.1f} s)")
    if args.rescore:
        print(
            f"{'rescored, ' + args.rescore:<22} {rescored:,.0f} account evaluations; ingestion done in "
            f"{ingested:.1f} s, every touched account rescored {elapsed - ingested:.1f} s later"
        )
    print(f"batch commit latency   p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms")
    print(f"peak RSS               {peak_rss_mb():.0f} MB")
    print(f"COPY baseline          {copy_rate:,.0f} rows/s (unique key (source, id))")
    print(f"ratio pipeline/COPY    {rate / copy_rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--rescore",
        choices=["evaluator", "inline"],
        help="Rescore touched accounts while ingesting: in separate evaluator processes, or in this one.",
    )
    parser.add_argument(
        "--evaluators", type=int, default=2, help="Evaluator processes sharing the rescoring (--rescore evaluator)."
    )
    tune_gc()
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
