"""`kamwatch alerter` as a process: its /metrics, /healthz and /readyz answer on KAMWATCH_METRICS_PORT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

from services.settings import Settings
from tests.alerting.servers import free_port

KAMWATCH = Path(sys.executable).with_name("kamwatch")


async def test_the_alerter_serves_its_metrics_and_probes(settings: Settings) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KAMWATCH_DATABASE_URL": settings.database_url or "",
        "KAMWATCH_DATA_DIR": str(settings.data_dir),
        "KAMWATCH_METRICS_HOST": "127.0.0.1",
        "KAMWATCH_METRICS_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        str(KAMWATCH), "alerter", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            for _ in range(300):
                try:
                    metrics = await client.get("/metrics")
                    break
                except httpx.TransportError:
                    assert process.returncode is None, "the alerter exited"
                    await asyncio.sleep(0.1)
            ready = await client.get("/readyz")
            alive = await client.get("/healthz")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=20)
    assert metrics.status_code == 200
    assert "kamwatch_outbox_pending" in metrics.text
    assert 'kamwatch_notifications_total{channel="email",result="sent"}' in metrics.text
    assert alive.status_code == 200
    assert ready.status_code == 200
