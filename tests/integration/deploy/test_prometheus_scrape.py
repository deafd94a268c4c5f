"""A real Prometheus (Debian package) scrapes kamwatch's /metrics (the standalone server, a running API) and
answers queries."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from health_engine.access import create_key
from services.api.app import build_app
from services.platform.database import Database
from services.platform.metrics import Metrics, serve_metrics
from services.platform.settings import Settings
from tests.processes import free_port

pytestmark = pytest.mark.processes

HOST = "127.0.0.1"
DEADLINE_S = 30.0


async def query(client: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
    """The instant-query result, empty while Prometheus is starting or has not scraped yet."""
    try:
        response = await client.get("/api/v1/query", params={"query": promql})
    except httpx.TransportError:
        return []
    if response.status_code != 200:
        return []
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@dataclass(frozen=True)
class Prometheus:
    client: httpx.AsyncClient
    log: Path


@contextlib.asynccontextmanager
async def prometheus(tmp_path: Path, target: str, metrics_path: str = "/metrics") -> AsyncIterator[Prometheus]:
    """A real Prometheus scraping ``target`` every second; a client on its HTTP API."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
    config = tmp_path / "prometheus.yml"
    job = {"job_name": "kamwatch-test", "metrics_path": metrics_path, "static_configs": [{"targets": [target]}]}
    config.write_text(
        yaml.safe_dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": [job]})
    )
    prometheus_port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address={HOST}:{prometheus_port}",
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{prometheus_port}", timeout=2) as client:
            yield Prometheus(client, log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def first_result(prom: Prometheus, promql: str) -> list[dict[str, Any]]:
    """Poll ``promql`` until it has a result (at most DEADLINE_S)."""
    found: list[dict[str, Any]] = []
    started = time.monotonic()
    while not found and time.monotonic() - started < DEADLINE_S:
        found = await query(prom.client, promql)
        if not found:
            await asyncio.sleep(0.5)
    if not found:
        log = await asyncio.to_thread(prom.log.read_text)
        pytest.fail(f"no sample within {DEADLINE_S}s; Prometheus log:\n{log[-3000:]}")
    return found


async def test_prometheus_scrapes_kamwatch_metrics(tmp_path: Path) -> None:
    metrics = Metrics.create()
    metrics.events_total.labels(channel="kamwatch.usage", type="kamwatch.usage.v1", result="accepted").inc(3)
    metrics.events_total.labels(channel="http", type="unknown", result="rejected").inc()
    metrics.outbox_pending.set(2)
    exporter = await serve_metrics(metrics.registry, HOST, 0)
    try:
        async with prometheus(tmp_path, f"{HOST}:{exporter.port}") as prom:
            (sample,) = await first_result(prom, 'kamwatch_events_total{result="accepted"}')
            assert sample["metric"]["job"] == "kamwatch-test"
            assert sample["metric"]["channel"] == "kamwatch.usage"
            assert sample["metric"]["type"] == "kamwatch.usage.v1"
            assert float(sample["value"][1]) == 3
            (outbox,) = await query(prom.client, "kamwatch_outbox_pending")
            assert float(outbox["value"][1]) == 2
    finally:
        await exporter.aclose()


async def test_prometheus_scrapes_a_running_api(tmp_path: Path, settings: Settings, db: Database) -> None:
    """The real API served on a port: an event posted over HTTP shows in Prometheus, by route and channel."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
    async with db.unit_of_work() as conn:
        key = await create_key(
            conn, name="ops", scopes=["ingest"], kam_id=None, created_by="test", at=datetime.now(UTC)
        )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(settings, db), host=HOST, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.02)
        usage = {
            "specversion": "1.0",
            "id": "u-1",
            "source": "tests",
            "type": "kamwatch.usage.v1",
            "subject": "acme",
            "time": "2026-03-01T10:00:00Z",
        }
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}") as api:
            posted = await api.post("/v1/events", json=usage, headers={"authorization": f"Bearer {key.key}"})
        assert posted.status_code == 200
        async with prometheus(tmp_path, f"{HOST}:{port}") as prom:
            (events,) = await first_result(prom, 'kamwatch_events_total{channel="http",result="accepted"}')
            assert float(events["value"][1]) == 1
            requests = await first_result(prom, 'kamwatch_http_requests_total{route="/v1/events"}')
            assert requests[0]["metric"]["status"] == "200"
    finally:
        server.should_exit = True
        await serving
