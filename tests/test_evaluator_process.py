"""`kamwatch evaluator` as a process: it rescores what ingestion queued, and serves its probes and metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from services.database import Database
from services.pipeline import Pipeline
from services.settings import Settings
from tests.events import at, event, records

KAMWATCH = Path(sys.executable).with_name("kamwatch")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def health_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(r) for r in await conn.execute(text("SELECT account_id, level FROM account_health"))]


async def test_the_evaluator_rescores_what_the_workers_queued(settings: Settings, db: Database) -> None:
    account = {"name": "Acme", "owner_kam_id": "kam-1", "arr": "1000", "currency": "EUR", "tier": "key"}
    await Pipeline(db).ingest(records(event("account", "acme", at(1), account)), ingress="kafka")
    assert await health_rows(db) == []  # a worker with KAMWATCH_WORKER_EVALUATES=false only ingests

    port = free_port()
    env = {
        **os.environ,
        "KAMWATCH_DATABASE_URL": settings.database_url or "",
        "KAMWATCH_DATA_DIR": str(settings.data_dir),
        "KAMWATCH_METRICS_HOST": "127.0.0.1",
        "KAMWATCH_METRICS_PORT": str(port),
    }
    process = await asyncio.create_subprocess_exec(
        str(KAMWATCH), "evaluator", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        rows: list[tuple[Any, ...]] = []
        for _ in range(300):
            rows = await health_rows(db)
            if rows or process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            ready = await client.get("/readyz")
            metrics = await client.get("/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=20)
    assert [r[0] for r in rows] == ["acme"]
    assert ready.status_code == 200
    assert 'kamwatch_rescored_accounts_total{trigger="event"} 1.0' in metrics.text
