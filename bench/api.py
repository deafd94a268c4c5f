"""API benchmark: GET /v1/accounts/{id}/health with 100,000 accounts seeded.

    .venv/bin/python bench/api.py --accounts 100000 --duration 10 [--workers 2] [--data-dir DIR]

Seeds the accounts, their health and 30 days of history (COPY), starts the API with uvicorn in separate
processes (two by default: on a 2-core machine two processes beat one, measured), then load-generates from
another process with keep-alive HTTP/1.1 connections and an admin key: first closed-loop at saturation
(throughput), then open-loop at a fixed rate (latency measured from each request's scheduled time, so
queueing counts). Prints requests/s, p50/p99 latency, and the CPU time each request cost the load generator,
the API processes and PostgreSQL. ``--data-dir`` keeps the embedded database and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from health_engine.access import create_key  # noqa: E402
from services.platform.database import Database, driver_connection  # noqa: E402
from services.platform.settings import Settings  # noqa: E402

AS_OF = datetime(2026, 11, 20, 6, tzinfo=UTC)
LEVELS = ((35, "low"), (60, "medium"), (80, "high"), (101, "critical"))


def _level(risk: float) -> str:
    return next(name for bound, name in LEVELS if risk < bound)


async def seed(db: Database, accounts: int) -> str:
    """Accounts, KAMs, current health, four history points each, a few open alerts; returns an admin key."""
    rng = random.Random(7)
    account_rows, health_rows, history_rows, alert_rows = [], [], [], []
    kam_rows = [
        (f"kam-{k}", f"KAM {k}", f"kam{k}@example.com", None, "en", "Europe/Paris", AS_OF, f"k-{k}") for k in range(200)
    ]
    for a in range(accounts):
        account_id = f"acc-{a:06d}"
        risk = round(rng.uniform(5, 95), 1)
        account_rows.append(
            (account_id, f"Account {a}", f"kam-{a % 200}", 10_000 + a, "EUR", "key", date(2027, 3, 1), AS_OF, f"a-{a}")
        )
        components = [
            {"name": name, "risk": round(rng.uniform(0, 100), 1), "weight": weight}
            for name, weight in (("usage", 0.35), ("support", 0.25), ("billing", 0.2), ("relationship", 0.2))
        ]
        drivers = [
            {
                "component": "support",
                "code": "support.urgent_open",
                "severity": "warning",
                "points": 8.5,
                "evidence": {"tickets": 2},
                "since": (AS_OF - timedelta(days=3)).isoformat(),
                "message_en": "2 urgent tickets open for 3 days",
                "message_fr": "2 tickets urgents ouverts depuis 3 jours",
            }
        ]
        health_rows.append(
            (
                account_id,
                AS_OF,
                risk,
                _level(risk),
                AS_OF - timedelta(days=4),
                orjson.dumps(components).decode(),
                orjson.dumps(drivers).decode(),
                "bench",
            )
        )
        for days in (30, 14, 7, 0):
            past = max(0.0, min(99.9, round(risk + rng.uniform(-15, 15), 1))) if days else risk
            history_rows.append(
                (
                    account_id,
                    AS_OF - timedelta(days=days),
                    past,
                    _level(past),
                    orjson.dumps({c["name"]: c["risk"] for c in components}).decode(),
                    ["support.urgent_open"],
                    "bench",
                    "sweep",
                )
            )
        if a % 10 == 0:
            alert_rows.append(
                (
                    f"{account_id}:usage_drop",
                    account_id,
                    "usage_drop",
                    "warning",
                    "firing",
                    AS_OF,
                    AS_OF,
                    "Usage drop",
                    "Baisse d'utilisation",
                    "[]",
                )
            )
    async with db.unit_of_work() as conn:
        driver = await driver_connection(conn)
        await driver.copy_records_to_table(
            "kams",
            records=kam_rows,
            columns=[
                "kam_id",
                "name",
                "email",
                "manager_kam_id",
                "locale",
                "timezone",
                "last_event_time",
                "last_event_id",
            ],
        )
        await driver.copy_records_to_table(
            "accounts",
            records=account_rows,
            columns=[
                "account_id",
                "name",
                "owner_kam_id",
                "arr",
                "currency",
                "tier",
                "renewal_date",
                "last_event_time",
                "last_event_id",
            ],
        )
        await driver.copy_records_to_table(
            "account_health",
            records=health_rows,
            columns=["account_id", "as_of", "risk", "level", "level_since", "components", "drivers", "config_version"],
        )
        await driver.copy_records_to_table(
            "account_health_history",
            records=history_rows,
            columns=["account_id", "as_of", "risk", "level", "components", "driver_codes", "config_version", "trigger"],
        )
        await driver.copy_records_to_table(
            "alerts",
            records=alert_rows,
            columns=[
                "dedup_key",
                "account_id",
                "rule",
                "severity",
                "state",
                "fired_at",
                "updated_at",
                "title_en",
                "title_fr",
                "drivers",
            ],
        )
        key = await create_key(conn, name="bench", scopes=["admin"], kam_id=None, created_by="bench", at=AS_OF)
    # As a live database would be: vacuumed (hint bits and visibility map set, so neither autovacuum nor the
    # first reads rewrite the freshly copied pages during the measurement) and checkpointed.
    async with db.autocommit() as conn:
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
    return key.key


# ----------------------------------------------------------------------------------------------- load side


class Connection:
    """One keep-alive HTTP/1.1 connection; enough of HTTP for a JSON API answering with Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def _requests(host: str, port: int, key: str, accounts: int, count: int) -> list[bytes]:
    rng = random.Random(11)
    return [
        (
            f"GET /v1/accounts/acc-{rng.randrange(accounts):06d}/health HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        for _ in range(count)
    ]


async def saturate(host: str, port: int, key: str, accounts: int, seconds: float, concurrency: int) -> dict[str, float]:
    requests = _requests(host, port, key, accounts, 20_000)
    connections = [await Connection.open(host, port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(conn: Connection, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            if await conn.get(requests[i % len(requests)]) != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(worker(c, n) for n, c in enumerate(connections)))
    elapsed = time.perf_counter() - started
    return _figures(latencies, elapsed, errors)


def _figures(latencies: list[float], elapsed: float, errors: int) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50": cuts[49],
        "p99": cuts[98],
        "errors": errors,
        "requests": len(latencies),
    }


async def fixed_rate(host: str, port: int, key: str, accounts: int, seconds: float, rate: int) -> dict[str, float]:
    total = int(seconds * rate)
    requests = _requests(host, port, key, accounts, total)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await Connection.open(host, port))
    latencies: list[float] = []
    errors = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            if await conn.get(request) != 200:
                errors += 1
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter() + 0.1
    tasks = []
    for i, request in enumerate(requests):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return _figures(latencies, elapsed, errors)


def _cpu_seconds(api_pids: list[int], postmaster: int | None) -> dict[str, float]:
    """CPU (user + system) used so far by this load process, the API processes and PostgreSQL's backends."""
    import psutil

    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    database = 0.0
    if postmaster is not None:
        root = psutil.Process(postmaster)
        database = used(root) + sum(used(child) for child in root.children(recursive=True))
    return {
        "load": used(psutil.Process()),
        "api": sum(used(psutil.Process(pid)) for pid in api_pids),
        "postgres": database,
    }


def _measured(phase: Any, args: argparse.Namespace) -> dict[str, Any]:
    before = _cpu_seconds(args.api_pids, args.postmaster)
    result: dict[str, Any] = asyncio.run(phase)
    after = _cpu_seconds(args.api_pids, args.postmaster)
    requests = result["requests"]
    result["cpu_us_per_request"] = {name: (after[name] - before[name]) / requests * 1e6 for name in after}
    return result


def load_main(args: argparse.Namespace) -> None:
    host, port = "127.0.0.1", args.port
    # Warm up: every worker's pool, the key cache, the statement caches.
    asyncio.run(saturate(host, port, args.key, args.accounts, 2, args.concurrency))
    results = {
        "saturation": _measured(saturate(host, port, args.key, args.accounts, args.duration, args.concurrency), args),
        "fixed": _measured(fixed_rate(host, port, args.key, args.accounts, args.duration, args.rate), args),
    }
    print(json.dumps(results))


# ------------------------------------------------------------------------------------------------- server


def serve_main(args: argparse.Namespace) -> None:
    import uvicorn

    from services.api.app import build_app
    from services.platform.runtime import tune_gc

    tune_gc()
    settings = Settings(database_url=args.database_url, db_pool_size=args.pool)
    # Every worker process accepts on the socket the parent bound (the kernel spreads the connections).
    # Not uvicorn's `fd=`: it wraps the descriptor as AF_UNIX, so the event loop never sets TCP_NODELAY on the
    # accepted connections and Nagle holds each response body behind its headers until the client's delayed
    # ACK (about 40 ms a request at saturation). socket(fileno=...) reads the real family, type and protocol.
    listener = socket.socket(fileno=args.fd)
    config = uvicorn.Config(build_app(settings), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[listener])


def _wait_until_up(port: int, key: str, processes: list[subprocess.Popen[bytes]]) -> None:
    request = f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("an API process exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(request)
                if b" 200 " in sock.recv(1024):
                    time.sleep(1.0)  # let the other workers finish starting too
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not start")


async def prepare(args: argparse.Namespace, workdir: Path) -> tuple[str, str, Database]:
    settings = Settings(data_dir=workdir / "data", database_url=args.database_url)
    db = await Database.open(settings)
    await db.migrate()
    async with db.unit_of_work() as conn:
        seeded = (await conn.exec_driver_sql("SELECT count(*) FROM accounts")).scalar_one()
    if seeded == args.accounts:
        async with db.unit_of_work() as conn:
            new = await create_key(conn, name="bench", scopes=["admin"], kam_id=None, created_by="bench", at=AS_OF)
        print(f"reused                 {seeded:,} accounts seeded by an earlier run")
        return db.url, new.key, db
    if seeded:
        raise SystemExit(f"the database holds {seeded:,} accounts, not {args.accounts:,}: give an empty one")
    started = time.perf_counter()
    key = await seed(db, args.accounts)
    seconds = time.perf_counter() - started
    print(f"seeded                 {args.accounts:,} accounts with health and 30 days of history in {seconds:.1f} s")
    return db.url, key, db


def run_main(args: argparse.Namespace) -> None:
    loop = asyncio.new_event_loop()
    keep = args.data_dir is not None
    workdir = args.data_dir.resolve() if keep else Path(tempfile.mkdtemp(prefix="kamwatch-bench-api-"))
    url, key, db = loop.run_until_complete(prepare(args, workdir))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    port = listener.getsockname()[1]
    me = [sys.executable, str(Path(__file__).resolve())]
    serve = [*me, "serve", "--database-url", url, "--fd", str(listener.fileno()), "--pool", str(args.pool)]
    servers = [subprocess.Popen(serve, pass_fds=[listener.fileno()]) for _ in range(args.workers)]
    pid_file = workdir / "data" / "pgdata" / "postmaster.pid"
    postmaster = int(pid_file.read_text().split()[0]) if db.embedded is not None and pid_file.exists() else None
    try:
        _wait_until_up(port, key, servers)
        load = subprocess.run(
            [
                *me,
                "load",
                "--port",
                str(port),
                "--key",
                key,
                "--accounts",
                str(args.accounts),
                "--duration",
                str(args.duration),
                "--rate",
                str(args.rate),
                "--concurrency",
                str(args.concurrency),
                "--api-pids",
                ",".join(str(server.pid) for server in servers),
                *(["--postmaster", str(postmaster)] if postmaster else []),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
        listener.close()
        loop.run_until_complete(db.close())
        loop.close()
        if db.embedded is not None:
            db.embedded.cleanup()  # stop the embedded server before its directory goes
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results = json.loads(load.stdout.strip().splitlines()[-1])
    sat, fixed = results["saturation"], results["fixed"]
    print(f"API                    {args.workers} uvicorn process(es), {args.pool} database connections each")
    print(
        f"saturation             {sat['rps']:,.0f} requests/s with {args.concurrency} connections "
        f"(p50 {sat['p50'] * 1000:.1f} ms, p99 {sat['p99'] * 1000:.1f} ms, {sat['errors']:.0f} errors)"
    )
    print(
        f"at {args.rate} requests/s        p50 {fixed['p50'] * 1000:.1f} ms, p99 {fixed['p99'] * 1000:.1f} ms "
        f"({fixed['rps']:,.0f} requests/s achieved, {fixed['errors']:.0f} errors)"
    )
    for name, phase in (("saturation", sat), (f"at {args.rate} requests/s", fixed)):
        cpu = phase["cpu_us_per_request"]
        print(
            f"CPU per request        {name}: load generator {cpu['load']:.0f} us, API {cpu['api']:.0f} us, "
            f"PostgreSQL {cpu['postgres']:.0f} us"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    run = parser
    run.add_argument("--accounts", type=int, default=100_000)
    run.add_argument("--duration", type=float, default=10.0, help="Seconds per load phase.")
    run.add_argument("--rate", type=int, default=500, help="Requests/s of the fixed-rate phase.")
    run.add_argument("--concurrency", type=int, default=32, help="Connections of the saturation phase.")
    run.add_argument("--pool", type=int, default=10, help="Database connections per API process.")
    run.add_argument("--workers", type=int, default=2, help="API processes sharing the listening socket.")
    run.add_argument("--database-url", default=None, help="Default: an embedded PostgreSQL in a temporary dir.")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Keep the embedded PostgreSQL here and reuse its seeded accounts on the next run (default: seed afresh).",
    )
    serve = sub.add_parser("serve", help="(internal) the API process")
    serve.add_argument("--database-url", required=True)
    serve.add_argument("--fd", type=int, required=True)
    serve.add_argument("--pool", type=int, default=10)
    load = sub.add_parser("load", help="(internal) the load-generating process")
    for name, kind in (
        ("--port", int),
        ("--key", str),
        ("--accounts", int),
        ("--duration", float),
        ("--rate", int),
        ("--concurrency", int),
    ):
        load.add_argument(name, type=kind, required=True)
    load.add_argument("--api-pids", type=lambda v: [int(p) for p in v.split(",")], required=True)
    load.add_argument("--postmaster", type=int, default=None)
    args = parser.parse_args()
    if args.command == "serve":
        serve_main(args)
    elif args.command == "load":
        load_main(args)
    else:
        run_main(args)


if __name__ == "__main__":
    main()
