"""`kamwatch evaluator` as a process: it rescores what ingestion queued, and serves its probes and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import at, event, records
from tests.processes import kamwatch_service

pytestmark = pytest.mark.processes


async def health_rows(db: Database) -> list[tuple[Any, ...]]:
    async with db.unit_of_work() as conn:
        return [tuple(r) for r in await conn.execute(text("SELECT account_id, level FROM account_health"))]


async def test_the_evaluator_rescores_what_the_workers_queued(settings: Settings, db: Database) -> None:
    account = {"name": "Acme", "owner_kam_id": "kam-1", "arr": "1000", "currency": "EUR", "tier": "key"}
    await Pipeline(db).ingest(records(event("account", "acme", at(1), account)), ingress="kafka")
    assert await health_rows(db) == []  # a worker with KAMWATCH_WORKER_EVALUATES=false only ingests

    rescored = 'kamwatch_rescored_accounts_total{trigger="event"} 1.0'
    async with kamwatch_service(settings, "evaluator") as evaluator:
        await evaluator.wait_until_serving()
        # The metric moves after the scores commit: wait on it, the last of the two, not on the row.
        metrics = await evaluator.client.get("/metrics")
        for _ in range(300):
            if rescored in metrics.text or evaluator.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
            metrics = await evaluator.client.get("/metrics")
        ready = await evaluator.client.get("/readyz")
    assert rescored in metrics.text
    assert [r[0] for r in await health_rows(db)] == ["acme"]
    assert ready.status_code == 200
