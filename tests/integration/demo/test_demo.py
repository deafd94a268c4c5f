"""``run_demo`` end to end on a real PostgreSQL: history, the API on a real port, the live stream, stopping."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from services.cli.main import app as cli
from services.demo.live import LIVE_SOURCE
from services.demo.run import run_demo
from services.platform.database import Database
from services.platform.settings import Settings
from services.simulator.generator import SOURCE
from tests.processes import free_port

pytestmark = pytest.mark.processes

NOW = datetime(2026, 3, 16, 10, 30, tzinfo=UTC)
SMALL: dict[str, Any] = {"accounts": 20, "kams": 4, "days": 30, "clock": lambda: NOW}


async def until_up(port: int, demo: asyncio.Task[None]) -> httpx.Response:
    """The first answer of /healthz while the demo runs."""
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if demo.done():
                demo.result()
                pytest.fail("run_demo ended before the API answered")
            try:
                return await client.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    pytest.fail("the API never answered")


async def counts(settings: Settings) -> dict[str, Any]:
    db = await Database.open(settings)
    try:
        async with db.unit_of_work() as conn:
            rows = await conn.execute(
                text("SELECT source, count(*), min(event_time), max(event_time) FROM raw_events GROUP BY 1")
            )
            by_source = {row[0]: tuple(row[1:]) for row in rows}
            accounts = (await conn.execute(text("SELECT count(*) FROM accounts"))).scalar_one()
    finally:
        await db.close()
    return {"accounts": accounts, **by_source}


async def live_runs(settings: Settings) -> set[str]:
    """The runs whose live events are stored (their ids are live-RUN-N)."""
    db = await Database.open(settings)
    try:
        async with db.unit_of_work() as conn:
            query = text("SELECT DISTINCT split_part(event_id, '-', 2) FROM raw_events WHERE source = :source")
            return set((await conn.execute(query, {"source": LIVE_SOURCE})).scalars())
    finally:
        await db.close()


async def live_events(settings: Settings) -> int:
    found = (await counts(settings)).get(LIVE_SOURCE)
    return int(found[0]) if found else 0


def start(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coroutine)


async def test_first_run_loads_history_serves_the_api_and_streams_live_events(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    demo = start(run_demo(settings, reset=False, duration=3, port=port, **SMALL))

    health = await until_up(port, demo)
    printed, key = "", None
    for _ in range(200):  # the key is printed once the live stream is about to start
        printed += capsys.readouterr().out
        key = next((word for word in printed.split() if word.startswith("kw_")), None)
        if key:
            break
        await asyncio.sleep(0.05)
    assert key is not None
    async with httpx.AsyncClient() as client:
        posted = await client.post(
            f"http://127.0.0.1:{port}/v1/events",
            content=orjson.dumps(
                {
                    "specversion": "1.0",
                    "id": "by-hand-1",
                    "source": "tests",
                    "type": "kamwatch.usage.v1",
                    "subject": "acc-0001",
                    "time": NOW.isoformat(),
                }
            ),
            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
        )
        inbox = await client.get(f"http://127.0.0.1:{port}/demo/inbox")
        widget = await client.get(next(w for w in printed.split() if "/widget/accounts/" in w))
        metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
    await asyncio.wait_for(demo, timeout=30)

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert posted.json()["accepted"] == 1
    state = await counts(settings)
    history_lines = (settings.data_dir / "demo" / "events.ndjson").read_bytes().count(b"\n")
    simulated, first, last = state[SOURCE]
    assert state["accounts"] == 20
    assert simulated == history_lines > 1000
    assert first >= NOW.replace(hour=0, minute=0) - timedelta(days=30)
    assert last < NOW.replace(hour=0, minute=0)  # the history ends yesterday
    live, live_first, live_last = state[LIVE_SOURCE]
    assert live >= 4 * 4  # a few events each half second, for about three seconds
    assert live_first == live_last == NOW
    output = printed + capsys.readouterr().out
    assert inbox.status_code == 200
    assert "Notifications sent by the demo" in inbox.text
    assert widget.status_code == 200
    assert "<svg" in widget.text
    assert metrics.status_code == 200
    assert "kamwatch_events_total" in metrics.text
    assert f"http://127.0.0.1:{port}/docs" in output
    assert f"http://127.0.0.1:{port}/healthz" in output
    assert f"curl -sS -X POST http://127.0.0.1:{port}/v1/events" in output
    assert "time to first page:" in output
    assert "now deteriorating" in output


async def test_second_run_reuses_the_history_and_stops_on_sigint(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await asyncio.wait_for(run_demo(settings, reset=False, duration=1, port=free_port(), **SMALL), timeout=30)
    before = await counts(settings)
    history = (settings.data_dir / "demo" / "events.ndjson").read_bytes()
    port = free_port()
    # A day later: a new simulation would have other event ids, so a replay could not hide as duplicates.
    tomorrow = SMALL | {"clock": lambda: NOW + timedelta(days=1)}
    demo = start(run_demo(settings, reset=False, duration=None, port=port, **tomorrow))

    assert (await until_up(port, demo)).status_code == 200
    for _ in range(100):
        if await live_events(settings) > before[LIVE_SOURCE][0]:
            break
        await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(demo, timeout=10)

    after = await counts(settings)
    assert after[SOURCE] == before[SOURCE]  # the history was neither simulated nor replayed again
    assert (settings.data_dir / "demo" / "events.ndjson").read_bytes() == history
    assert after["accounts"] == before["accounts"] == 20
    assert after[LIVE_SOURCE][0] > before[LIVE_SOURCE][0]
    assert "reusing the portfolio" in capsys.readouterr().out
    with socket.socket() as again:  # the server let go of its port
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


async def test_reset_starts_from_a_fresh_history(settings: Settings) -> None:
    await asyncio.wait_for(run_demo(settings, reset=False, duration=1, port=free_port(), **SMALL), timeout=30)
    first = await counts(settings)
    first_runs = await live_runs(settings)

    await asyncio.wait_for(run_demo(settings, reset=True, duration=1, port=free_port(), **SMALL), timeout=30)

    again = await counts(settings)
    runs = await live_runs(settings)
    assert again[SOURCE] == first[SOURCE]  # replayed in full: nothing was left to be a duplicate
    assert again["accounts"] == 20
    assert len(first_runs) == len(runs) == 1
    assert runs != first_runs  # the first run's live events went with the old schema


async def test_showcase_accounts_go_critical_and_their_kams_are_told_on_slack_and_by_email(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    demo = start(
        run_demo(settings, reset=False, duration=None, port=port, **(SMALL | {"accounts": 60, "kams": 6, "days": 90}))
    )
    base = f"http://127.0.0.1:{port}"
    await until_up(port, demo)
    printed = ""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        inbox = ""
        for _ in range(900):  # the story runs over 75 s; notifications follow within seconds
            printed += capsys.readouterr().out
            inbox = (await client.get("/demo/inbox")).text
            reached = printed.count(" reached critical ")
            if reached >= 2 and 'action="/demo/slack/click"' in inbox and "<iframe" in inbox:
                break
            if demo.done():
                demo.result()
            await asyncio.sleep(0.2)
        alert_id = re.search(
            r'name="action_id" value="alert_ack"><input type="hidden" name="value" value="(\d+)"', inbox
        )
        assert alert_id is not None, inbox[:2000]
        user = re.search(r'name="user" value="([^"]+)"', inbox[alert_id.start() :])
        assert user is not None
        clicked = await client.post(
            "/demo/slack/click",
            data={"action_id": "alert_ack", "value": alert_id.group(1), "user": user.group(1)},
            follow_redirects=True,
        )
    os.kill(os.getpid(), signal.SIGINT)
    await asyncio.wait_for(demo, timeout=20)
    printed += capsys.readouterr().out

    assert printed.count(" reached critical ") >= 2, printed
    assert re.search(r"Slack \(\d+\)", inbox)
    assert not re.search(r"Slack \(0\)", inbox)
    assert not re.search(r"Email \(0\)", inbox)
    assert 'class="slack-fields"' in inbox  # sections with their fields, as Slack lays them out
    assert "Slack → kamwatch (200)" in clicked.text, re.findall(r"class=\"flash\">[^<]*", clicked.text)
    db = await Database.open(settings)
    try:
        async with db.unit_of_work() as conn:
            state = await conn.scalar(text("SELECT state FROM alerts WHERE id = :id"), {"id": int(alert_id.group(1))})
    finally:
        await db.close()
    assert state == "acknowledged"
    assert re.search(r"notifications received: \d+ by email, \d+ by slack", printed)
    assert "/postmortem" in printed


async def test_a_port_in_use_is_said_at_once_before_any_history_is_loaded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("KAMWATCH_DATABASE_URL", settings.database_url or "")
        monkeypatch.setenv("KAMWATCH_DATA_DIR", str(settings.data_dir))
        refused = await asyncio.to_thread(CliRunner().invoke, cli, ["demo", "--port", str(port)])

    assert refused.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in refused.output
    assert "Traceback" not in refused.output
    assert (await counts(settings))["accounts"] == 0
