"""``kamwatch demo``: a simulated portfolio history, the API, and a live stream of events on top of it.

One process, one database (the embedded PostgreSQL unless ``KAMWATCH_DATABASE_URL`` is set): the first run
simulates and replays the history (later runs reuse it), then the API is served while a few events arrive
every half second, three accounts visibly deteriorating among them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
import uvicorn
from pydantic import SecretStr
from sqlalchemy import text

from health_engine.access import account_owner, create_key, mint, signing_secret
from ingestion.pipeline import BatchResult
from schemas.vocabulary import LEVEL_RANK
from services.alerter.delivery import Alerter
from services.api.app import build_app
from services.demo.inbox import Inbox, inbox_router, start_smtp_catcher
from services.demo.live import TICK_SECONDS, LiveStream, say, today
from services.flows.alerting import build_alerting
from services.flows.evaluation import HealthEngine
from services.flows.ingest import Pipeline, time_window
from services.flows.replay import replay_as_lived
from services.platform.database import Database
from services.platform.metrics import Metrics
from services.platform.settings import Settings
from services.simulator.generator import simulate_to_dir

_HOST: Final = "127.0.0.1"


async def run_demo(
    settings: Settings,
    *,
    reset: bool,
    duration: float | None,
    port: int,
    accounts: int = 300,
    kams: int = 12,
    days: int = 120,
    seed: int = 7,
    clock: Callable[[], datetime],
) -> None:
    """Simulate and replay a portfolio history (first run only), serve the API, stream live events.

    CLI: ``kamwatch demo [--reset] [--duration SECONDS] [--port PORT]``. ``reset`` drops the whole schema
    first; ``duration`` is how long to stream once the API is up (None: until SIGINT/SIGTERM); port 0 picks
    a free port. ``clock`` gives "now" (aware): the history ends the day before, live events carry it."""
    started = time.perf_counter()
    listener = listen(port)  # before the history: a port in use is said at once, not a minute later
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    db = await Database.open(settings)
    try:
        if reset:
            await _drop_schema(db)
            say("demo: schema dropped (--reset)")
        await db.migrate()
        if stop.is_set():
            return
        if await _account_count(db):
            say("demo: reusing the portfolio already in the database (--reset starts afresh)")
        else:
            await _load_history(db, settings, stop, accounts=accounts, kams=kams, days=days, seed=seed, clock=clock)
        if stop.is_set():
            return
        await _serve(db, settings, stop, listener=listener, duration=duration, seed=seed, clock=clock, started=started)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        listener.close()
        await db.close()


class PortUnavailable(Exception):
    """The demo's API port cannot be listened on."""


def listen(port: int) -> socket.socket:
    """A socket bound to the demo's port on this machine (0: a free one)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((_HOST, port))
    except OSError as error:
        listener.close()
        raise PortUnavailable(f"cannot listen on {_HOST}:{port} ({error.strerror}); try --port") from None
    return listener


async def _drop_schema(db: Database) -> None:
    async with db.unit_of_work() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))


async def _account_count(db: Database) -> int:
    async with db.unit_of_work() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one())


async def _load_history(
    db: Database,
    settings: Settings,
    stop: asyncio.Event,
    *,
    accounts: int,
    kams: int,
    days: int,
    seed: int,
    clock: Callable[[], datetime],
) -> None:
    start = today(clock) - timedelta(days=days)
    out_dir = settings.data_dir / "demo"
    say(f"demo: simulating {accounts} accounts and {kams} KAMs over {days} days from {start} (seed {seed})")
    summary = await asyncio.to_thread(simulate_to_dir, out_dir, accounts, kams, days, seed, start)
    say(
        f"demo: {summary.events:,} events ({summary.outcomes} outcomes, {len(summary.deteriorating)} accounts "
        f"deteriorating) written to {summary.events_path}"
    )
    if stop.is_set():
        return
    done = 0
    next_report = 0.1

    def progress(result: BatchResult) -> None:
        nonlocal done, next_report
        done += result.record_count
        if done >= summary.events * next_report or done == summary.events:
            say(f"demo: replayed {done:,}/{summary.events:,} events ({done / summary.events:.0%})")
            while next_report <= done / summary.events:
                next_report += 0.1

    # As lived: the history is scored day by day, so every account has its daily risk series.
    engine = HealthEngine.from_settings(db, settings, build_alerting(settings, notify="none"))
    replay = asyncio.create_task(
        replay_as_lived(
            Pipeline(db, window=time_window(settings)),
            engine,
            summary.events_path,
            batch_size=settings.ingest_batch_size,
            on_batch=progress,
        )
    )
    interrupted = asyncio.create_task(stop.wait())
    await asyncio.wait({replay, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if not replay.done():
        replay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replay
        say("demo: interrupted during the replay; run `kamwatch demo --reset` to load the whole history")
        return
    stats = replay.result()
    await engine.sweep(clock(), shards=1)  # from the end of the history to now
    say(
        f"demo: history loaded: {stats.accepted:,} accepted, {stats.duplicates:,} duplicates, {stats.rejected} rejected"
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: run_demo owns SIGINT/SIGTERM and shuts it down itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


_DEMO_RATES = "# Illustrative rates from kamwatch demo (one unit in EUR); KAMWATCH_EXCHANGE_RATES_FILE sets yours.\n"


def _demo_rates(settings: Settings) -> dict[str, Any]:
    """Rates for the simulator's currencies, so that the demo's portfolio shows one reporting currency; an
    operator's own rates file or another reporting currency is left as configured."""
    if settings.exchange_rates_file is not None or settings.reporting_currency != "EUR":
        return {}
    path = settings.data_dir / "demo" / "rates.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_DEMO_RATES + "rates: {USD: 0.92, GBP: 1.17}\n", encoding="utf-8")
    return {"exchange_rates_file": path}


async def _serve(
    db: Database,
    settings: Settings,
    stop: asyncio.Event,
    *,
    listener: socket.socket,
    duration: float | None,
    seed: int,
    clock: Callable[[], datetime],
    started: float,
) -> None:
    port = listener.getsockname()[1]
    base = f"http://{_HOST}:{port}"
    # Notifications go to local stand-ins only (a demo never writes to a real Slack or mailbox): Slack's Web
    # API is answered by the demo's own app, mail by an in-process SMTP server; both shown on /demo/inbox.
    inbox = Inbox(clock)
    smtp = start_smtp_catcher(inbox, _HOST)
    slack_secret = secrets.token_hex(16)
    demo_settings = settings.model_copy(
        update=_demo_rates(settings)
        | {
            "public_url": base,
            "smtp_host": _HOST,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_tls": False,
            "slack_bot_token": SecretStr("xoxb-kamwatch-demo"),
            "slack_webhook_url": None,
            "slack_api_base_url": f"{base}/demo/slack/api/",
            "slack_team_channel": "#key-accounts",
            "slack_signing_secret": SecretStr(slack_secret),
        }
    )
    metrics = Metrics.create()
    app = build_app(demo_settings, db, clock=clock, metrics=metrics)
    app.include_router(inbox_router(inbox, signing_secret=slack_secret, api_base=base))
    server = _Server(uvicorn.Config(app, host=_HOST, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    live: asyncio.Task[None] | None = None
    delivering: asyncio.Task[None] | None = None
    watching: asyncio.Task[None] | None = None
    try:
        await _wait_until_up(server, serving, port)
        first_page = time.perf_counter()
        say(f"time to first page: {first_page - started:.1f} s")
        alerting = build_alerting(demo_settings, notify="send", metrics=metrics)
        engine = HealthEngine.from_settings(db, demo_settings, alerting, metrics=metrics)
        stream = await LiveStream.prepare(db, engine, seed=seed, clock=clock)
        access = await _demo_access(db, demo_settings, stream, clock)
        alerter = Alerter.from_settings(db, demo_settings, clock=clock, metrics=metrics)
        delivering = asyncio.create_task(alerter.run_forever(poll_interval_s=1.0, escalation_interval_s=60.0))
        lost = await _lost_account(db)
        _announce(port, stream, clock, access, lost)
        live = asyncio.create_task(stream.run())
        watching = asyncio.create_task(_watch(db, stream, first_page))
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait(
            {stopped, serving, live, delivering}, timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        for ended in done & {serving, live, delivering}:
            ended.result()  # a crash of the server, the stream or the alerter surfaces here
            raise RuntimeError("the API server stopped unexpectedly")
        by_channel = ", ".join(f"{count} by {channel}" for channel, count in sorted(inbox.counts.items()))
        say(f"demo: stopping ({stream.accepted:,} live events sent; notifications received: {by_channel or 'none'})")
    finally:
        for background in (live, delivering, watching):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(serving), timeout=5)
        except TimeoutError:
            server.force_exit = True
            await serving
        listener.close()
        smtp.stop()


@dataclass(frozen=True, slots=True)
class DemoAccess:
    api_key: str
    widget_url: str | None


async def _demo_access(
    db: Database, settings: Settings, stream: LiveStream, clock: Callable[[], datetime]
) -> DemoAccess:
    """A fresh admin key for this run, and a day-long widget token for the first deteriorating account."""
    now = clock()
    async with db.unit_of_work() as conn:
        key = await create_key(conn, name="demo", scopes=["admin"], kam_id=None, created_by="kamwatch demo", at=now)
        widget_url = None
        if stream.victims:
            account = stream.victims[0]
            secret = await signing_secret(conn, settings.configured_widget_secret, now=now)
            _, owner = await account_owner(conn, account)
            token = mint(secret, account, None, now + timedelta(days=1), key_id=key.key_id, owner_kam_id=owner)
            widget_url = f"{settings.public_url}/widget/accounts/{account}?token={token}"
    return DemoAccess(key.key, widget_url)


async def _wait_until_up(server: uvicorn.Server, serving: asyncio.Task[None], port: int) -> None:
    while True:
        if serving.done():
            serving.result()
            raise RuntimeError("the API server stopped during start-up")
        if server.started and await _healthz(port):
            return
        await asyncio.sleep(0.02)


async def _healthz(port: int) -> bool:
    """GET /healthz over a plain socket (httpx is a development dependency only)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(_HOST, port), timeout=2)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {_HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=2)
        return status.split(b" ")[1:2] == [b"200"]
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _lost_account(db: Database) -> tuple[str, str] | None:
    """The account lost last (with an alert before it, where one was), for its post-mortem."""
    async with db.unit_of_work() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT o.account_id, a.name FROM outcomes o JOIN accounts a USING (account_id)"
                    " WHERE o.outcome = 'churned' ORDER BY EXISTS (SELECT FROM alerts al"
                    " WHERE al.account_id = o.account_id AND al.fired_at <= o.event_time) DESC, o.event_time DESC"
                    " LIMIT 1"
                )
            )
        ).one_or_none()
    return None if row is None else (str(row[0]), str(row[1]))


async def _watch(db: Database, stream: LiveStream, since: float) -> None:
    """Say when each showcase account reaches high, then critical (minutes after the first page)."""
    reached: dict[tuple[str, str], float] = {}
    names = {s.account_id: s.name for s in stream.showcases}
    while len(reached) < 2 * len(names):
        async with db.unit_of_work() as conn:
            rows = await conn.execute(
                text("SELECT account_id, level, risk FROM account_health WHERE account_id = ANY(:ids)"),
                {"ids": list(names)},
            )
            levels = {str(r[0]): (str(r[1]), float(r[2])) for r in rows}
        for account, (level, risk) in levels.items():
            for target in ("high", "critical"):
                if (account, target) in reached or LEVEL_RANK[level] < LEVEL_RANK[target]:  # type: ignore[index]
                    continue
                reached[(account, target)] = time.perf_counter() - since
                minutes, seconds = divmod(int(reached[(account, target)]), 60)
                when = f"{minutes}:{seconds:02d}"
                say(f"live: {names[account]} reached {target} (risk {risk:.1f}) {when} after the first page")
        await asyncio.sleep(1.0)


def _announce(
    port: int, stream: LiveStream, clock: Callable[[], datetime], access: DemoAccess, lost: tuple[str, str] | None
) -> None:
    base = f"http://{_HOST}:{port}"
    example = {
        "specversion": "1.0",
        "id": f"curl-{uuid.uuid4().hex[:8]}",
        "source": "my-crm",
        "type": "kamwatch.usage.v1",
        "subject": stream.pool[0] if stream.pool else "acc-0001",
        "time": clock().isoformat(timespec="seconds"),
        "data": {"metric": "activity", "quantity": 3, "user_id": "u001"},
    }
    body = orjson.dumps(example).decode()
    auth = f"Authorization: Bearer {access.api_key}"
    say(
        f"\nkamwatch demo is up\n"
        f"  API key (admin, this run):  {access.api_key}\n"
        f"  portfolio page:  {base}/login  (paste the key)\n"
        + "".join(
            f"  account review:  {base}/accounts/{s.account_id}  ({s.name}, {s.tier})\n" for s in stream.showcases
        )
        + (
            f"  post-mortem:     {base}/accounts/{lost[0]}/postmortem  ({lost[1]}, lost in the replayed history:"
            " its alerts fired, nobody was notified then)\n"
            if lost
            else ""
        )
        + (f"  account widget:  {access.widget_url}\n" if access.widget_url else "")
        + f"  notifications sent (Slack stand-in, SMTP catcher):  {base}/demo/inbox\n"
        f"  API docs:  {base}/docs\n  metrics:   {base}/metrics\n  liveness:  {base}/healthz"
    )
    say(
        f"  an account's health:\n    curl -sS {base}/v1/accounts/{example['subject']}/health -H '{auth}'\n"
        f"  post an event:\n    curl -sS -X POST {base}/v1/events -H '{auth}' "
        f"-H 'content-type: application/json' -d '{body}'"
    )
    say(
        f"\nlive: a few events every {TICK_SECONDS} s; "
        f"{', '.join(s.name for s in stream.showcases) or 'nobody'} now deteriorating. Ctrl-C stops.\n"
    )
