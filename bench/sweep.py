"""Sweep benchmark: the time-driven evaluation of every account, as the worker runs it on schedule.

    .venv/bin/python bench/sweep.py --accounts 200000 [--processes 2]

Seeds the per-account state directly in SQL (a profile, 9 weeks of daily usage, contacts, invoices,
tickets and meetings for each account; some accounts silent, late or losing their champion), then times
one sweep at a fixed as-of time, split in shards shared by ``--processes`` worker processes exactly as
live workers share it, then the next scheduled one 15 minutes later (most scores unchanged: only their
time moves). Prints accounts/s and the peak RSS of each sweeping process, for both.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.flows.evaluation import HealthEngine
from services.platform.database import Database
from services.platform.runtime import tune_gc
from services.platform.settings import Settings

AS_OF = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)

SEED_SQL = """
INSERT INTO kams (kam_id, name, email, locale, timezone, last_event_time, last_event_id)
SELECT 'kam-' || k, 'KAM ' || k, 'kam' || k || '@example.com', 'fr', 'Europe/Paris', $2, 'seed'
FROM generate_series(1, least($1, 100)) AS k;

INSERT INTO accounts (account_id, name, owner_kam_id, arr, currency, tier, renewal_date, last_event_time,
                      last_event_id)
SELECT format('acc-%s', lpad(a::text, 6, '0')), 'Account ' || a, 'kam-' || (a % 100 + 1), 10000 + a % 500 * 1000,
       'EUR', (ARRAY['strategic', 'key', 'standard', 'standard', 'standard'])[a % 5 + 1],
       $2::date + (a % 400), $2, 'seed'
FROM generate_series(1, $1) AS a;

INSERT INTO usage_daily (account_id, day, metric, quantity, events, users)
SELECT format('acc-%s', lpad(a::text, 6, '0')), $2::date - d, 'activity',
       CASE WHEN a % 10 = 0 AND d < 10 THEN 0 ELSE 20 + (a + d) % 30 END, 5,
       ARRAY['u1', 'u2', 'u3']
FROM generate_series(1, $1) AS a, generate_series(1, 64) AS d
WHERE NOT (a % 10 = 0 AND d < 10);

INSERT INTO contacts (account_id, contact_id, role, last_change, active, added_at, left_at, last_event_time,
                      last_event_id)
SELECT format('acc-%s', lpad(a::text, 6, '0')), 'c' || c,
       (ARRAY['champion', 'executive_sponsor', 'decision_maker'])[c], 'added',
       NOT (a % 17 = 0 AND c = 1), $2 - interval '400 days',
       CASE WHEN a % 17 = 0 AND c = 1 THEN $2 - interval '20 days' END, $2 - interval '20 days', 'seed'
FROM generate_series(1, $1) AS a, generate_series(1, 3) AS c;

INSERT INTO invoices (account_id, invoice_id, status, amount, currency, due_date, issued_at, paid_at, failures,
                      last_event_time, last_event_id)
SELECT format('acc-%s', lpad(a::text, 6, '0')), 'inv-' || m,
       CASE WHEN m = 1 AND a % 13 = 0 THEN 'issued' ELSE 'paid' END, 1000, 'EUR',
       $2::date - 30 * m, $2 - make_interval(days => 30 * m + 30),
       CASE WHEN m = 1 AND a % 13 = 0 THEN NULL ELSE $2 - make_interval(days => 30 * m - 2) END, 0,
       $2 - make_interval(days => 30 * m - 2), 'seed'
FROM generate_series(1, $1) AS a, generate_series(1, 6) AS m;

INSERT INTO tickets (account_id, ticket_id, status, priority, first_seen_at, opened_at, resolved_at, escalations,
                     reopenings, last_event_time, last_event_id)
SELECT format('acc-%s', lpad(a::text, 6, '0')), 't-1', CASE WHEN a % 7 = 0 THEN 'opened' ELSE 'closed' END,
       CASE WHEN a % 7 = 0 THEN 'urgent' ELSE 'normal' END, $2 - interval '12 days', $2 - interval '12 days',
       CASE WHEN a % 7 = 0 THEN NULL ELSE $2 - interval '10 days' END, 0, 0, $2 - interval '10 days', 'seed'
FROM generate_series(1, $1) AS a;

INSERT INTO engagements (account_id, event_time, source, event_id, kind, outcome)
SELECT format('acc-%s', lpad(a::text, 6, '0')), $2 - make_interval(days => 20 * e), 'seed', a || '-' || e,
       CASE WHEN e = 2 THEN 'business_review' ELSE 'meeting' END,
       CASE WHEN a % 11 = 0 THEN 'declined' ELSE 'attended' END
FROM generate_series(1, $1) AS a, generate_series(1, 4) AS e;
ANALYZE;
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def seed(url: str, accounts: int) -> None:
    db = await Database.open(Settings(database_url=url))
    try:
        await db.migrate()
        async with db.transaction() as driver:
            for statement in SEED_SQL.split(";\n"):
                if statement.strip():
                    # The as-of time inlined as a typed literal: a parameter's type would be guessed from
                    # its first use (an interval, in `$2 - interval ...`).
                    timed = statement.replace("$2", f"'{AS_OF.isoformat()}'::timestamptz")
                    await driver.execute(timed, *([accounts] if "$1" in timed else []))
        # What autovacuum has done on a live database, whose history is weeks old: statistics, and pages
        # marked all-visible (reads of usage days are then index-only).
        async with db.autocommit() as conn:
            await conn.execute("VACUUM (ANALYZE)")
    finally:
        await db.close()


Report = tuple[str, int, float, float]


def sweep_process(url: str, shards: int, name: str, as_of: datetime, out: multiprocessing.Queue[Report]) -> None:
    tune_gc()

    async def run() -> tuple[int, float]:
        db = await Database.open(Settings(database_url=url, db_pool_size=2))
        try:
            engine = HealthEngine.from_settings(db, Settings(database_url=url))
            engine.worker_name = name
            report = await engine.sweep(as_of, shards=shards)
            return report.accounts, report.seconds
        finally:
            await db.close()

    accounts, seconds = asyncio.run(run())
    out.put((name, accounts, seconds, peak_rss_mb()))


def sweep_once(url: str, shards: int, processes: int, as_of: datetime) -> tuple[list[Report], float]:
    """One sweep at ``as_of`` shared by ``processes`` worker processes; their reports and the wall time."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Report] = context.Queue()
    started = time.perf_counter()
    workers = [
        context.Process(target=sweep_process, args=(url, shards, f"sweeper-{n}", as_of, results))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return reports, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    server = None
    url = args.database_url
    workdir = Path(tempfile.mkdtemp(prefix="kamwatch-sweep-"))
    if url is None:
        from services.platform.database import start_embedded

        url, server = start_embedded(workdir / "pgdata")
    seeded = time.perf_counter()
    asyncio.run(seed(url, args.accounts))
    print(f"seeded                 {args.accounts:,} accounts in {time.perf_counter() - seeded:.0f} s")

    # The first sweep writes every score; the next one, 15 minutes later as scheduled, finds most unchanged.
    for label, as_of in (("first sweep", AS_OF), ("next sweep (+15 min)", AS_OF + timedelta(minutes=15))):
        reports, elapsed = sweep_once(url, args.shards, args.processes, as_of)
        swept = sum(accounts for _, accounts, _, _ in reports)
        sweeping = max(seconds for _, _, seconds, _ in reports)
        print(f"{label:<22} {swept:,} accounts in {sweeping:.1f} s with {args.processes} process(es)")
        print(f"  throughput           {swept / sweeping:,.0f} accounts/s ({elapsed:.1f} s with process start-up)")
        for name, accounts, seconds, rss in sorted(reports):
            print(f"  {name:<20} {accounts:,} accounts, {seconds:.1f} s, peak RSS {rss:.0f} MB")
    if server is not None:
        server.cleanup()
    shutil.rmtree(workdir, ignore_errors=True)  # gigabytes of seeded state


if __name__ == "__main__":
    main()
