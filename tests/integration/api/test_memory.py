"""Bounded memory: a real `kamwatch api` process, four concurrent requests of the largest size allowed (16 MiB,
5,000 events each), then a 200 MB chunked body, keep its resident memory under a stated bound. The body cap is
enforced from Content-Length and while streaming; events per request and concurrent ingestions are capped."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psutil
import pytest

from health_engine.access import create_key
from services.platform.database import Database
from services.platform.settings import Settings
from tests.processes import KAMWATCH, free_port

pytestmark = pytest.mark.processes

CONCURRENT = 4
EVENTS = 5000
MAX_BODY = 16 * 1024 * 1024
RSS_BOUND = 400 * 1024 * 1024
"""The stated bound, four maximum requests at once and a 200 MB body (idle about 110 MiB, peak about 250)."""


def maximum_body(batch: int) -> bytes:
    """5,000 events padding a body to just under 16 MiB."""
    when = datetime.now(UTC) - timedelta(hours=1)
    pad = "x" * ((MAX_BODY - 64_000) // EVENTS - 330)
    lines = []
    for n in range(EVENTS):
        lines.append(
            orjson.dumps(
                {
                    "specversion": "1.0",
                    "id": f"mem-{batch}-{n}",
                    "source": "memory",
                    "type": "kamwatch.usage.v1",
                    "subject": f"acct-{n % 500}",
                    "time": when.isoformat(),
                    "data": {"quantity": 1, "user_id": f"u{n % 7}"},
                    "padding": pad,
                }
            )
        )
    body = b"\n".join(lines)
    assert len(body) <= MAX_BODY
    return body


class PeakRss:
    """The highest resident memory of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


@pytest.fixture
async def api(settings: Settings, db: Database) -> AsyncIterator[tuple[str, str, int]]:
    async with db.unit_of_work() as conn:
        key = await create_key(
            conn, name="memory", scopes=["ingest"], kam_id=None, created_by="tests", at=datetime.now(UTC)
        )
    port = free_port()
    env = {**os.environ, "KAMWATCH_DATABASE_URL": settings.database_url or "", "KAMWATCH_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        str(KAMWATCH),
        "api",
        "--port",
        str(port),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(600):
                assert process.returncode is None, "kamwatch api exited"
                try:
                    if (await probe.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield url, key.key, process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)


async def chunks(total: int, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    block = b"{" + b" " * (size - 1)
    for _ in range(total // size):
        yield block


async def test_concurrent_maximum_requests_stay_under_the_memory_bound(api: tuple[str, str, int]) -> None:
    url, key, pid = api
    bodies = [maximum_body(batch) for batch in range(CONCURRENT)]
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/x-ndjson"}
    idle = psutil.Process(pid).memory_info().rss
    peak = PeakRss(pid)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as http:
        answers = await asyncio.gather(*(http.post("/v1/events", content=body) for body in bodies))
        assert [a.status_code for a in answers] == [200] * CONCURRENT, [a.text[:200] for a in answers]
        assert all(a.json()["accepted"] == EVENTS for a in answers)

        # declared too large: refused before reading anything
        declared = await http.post("/v1/events", content=b"[" + b" " * MAX_BODY + b"]")
        assert declared.status_code == 413
        # 200 MB chunked (no Content-Length): refused once past the cap, not after buffering it
        try:
            streamed = await http.post("/v1/events", content=chunks(200 * 1024 * 1024))
            assert streamed.status_code == 413
        except httpx.TransportError:
            pass  # the server answered 413 and closed while the client was still sending
        # more events than allowed in one request
        many = b"\n".join(b"{}" for _ in range(EVENTS + 1))
        assert (await http.post("/v1/events", content=many)).status_code == 413
    highest = peak.stop()
    print(f"RSS idle {idle / 2**20:.0f} MiB, peak {highest / 2**20:.0f} MiB")
    assert highest < RSS_BOUND, f"peak RSS {highest / 2**20:.0f} MiB (idle {idle / 2**20:.0f} MiB)"
