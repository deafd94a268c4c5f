"""A real Prometheus (Debian package) scrapes services.metrics' /metrics server and answers a query."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.metrics import Metrics, serve_metrics

HOST = "127.0.0.1"
DEADLINE_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


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


async def test_prometheus_scrapes_kamwatch_metrics(tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")

    metrics = Metrics.create()
    metrics.events_total.labels(channel="kamwatch.usage", type="kamwatch.usage.v1", result="accepted").inc(3)
    metrics.events_total.labels(channel="http", type="unknown", result="rejected").inc()
    metrics.outbox_pending.set(2)
    exporter = await serve_metrics(metrics.registry, HOST, 0)

    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "kamwatch-test", "static_configs": [{"targets": [f"{HOST}:{exporter.port}"]}]}
                ],
            }
        )
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
            accepted: list[dict[str, Any]] = []
            started = time.monotonic()
            while not accepted and time.monotonic() - started < DEADLINE_S and process.returncode is None:
                accepted = await query(client, 'kamwatch_events_total{result="accepted"}')
                if not accepted:
                    await asyncio.sleep(0.5)
            assert accepted, f"no sample within {DEADLINE_S}s; Prometheus log:\n{log.read_text()[-3000:]}"

            (sample,) = accepted
            assert sample["metric"]["job"] == "kamwatch-test"
            assert sample["metric"]["channel"] == "kamwatch.usage"
            assert sample["metric"]["type"] == "kamwatch.usage.v1"
            assert float(sample["value"][1]) == 3
            (outbox,) = await query(client, "kamwatch_outbox_pending")
            assert float(outbox["value"][1]) == 2
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()
        with contextlib.suppress(Exception):
            await exporter.aclose()
