"""A seeded portfolio behind the real app: four KAMs (a manager, his report and her report, an outsider)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI

from services.api.app import build_app
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api import seed
from tests.integration.api.seed import NOW


@dataclass
class World:
    keys: dict[str, str]
    alerts: dict[str, int]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
async def world(db: Database) -> World:
    await db.ensure_partitions({date(2026, 11, 1)})
    async with db.unit_of_work() as conn:
        await seed.kam(conn, "kam-marc", locale="fr")
        await seed.kam(conn, "kam-lea", manager="kam-marc", locale="fr")
        await seed.kam(conn, "kam-paul", manager="kam-lea")
        await seed.kam(conn, "kam-zoe")
        await seed.account(conn, "acme", "kam-lea", arr="480000", tier="strategic")
        await seed.account(conn, "globex", "kam-paul", arr="200000")
        await seed.account(conn, "initech", "kam-zoe", arr="90000", tier="standard", segment="mid")
        await seed.account(conn, "umbrella", "kam-marc", arr="300000", renewal=None)
        await seed.account(conn, "hooli", "kam-zoe", arr="50000", currency="USD")
        await seed.health(conn, "acme", 72.5, "high", past={7: 41.0, 30: 35.5, 60: 30.0, 89: 28.0})
        await seed.health(conn, "globex", 85.0, "critical", past={7: 80.0})
        await seed.health(conn, "initech", 20.0, "low", past={7: 30.0})
        await seed.health(conn, "umbrella", 50.0, "medium")
        alerts = {
            "acme": await seed.alert(conn, "acme"),
            "acme_old": await seed.alert(
                conn, "acme", rule="payment_late", state="resolved", fired_at=NOW - timedelta(days=20)
            ),
            "globex": await seed.alert(conn, "globex", severity="critical"),
            "initech": await seed.alert(conn, "initech"),
        }
        await seed.raw_event(
            conn,
            "acme",
            "t-1",
            NOW - timedelta(days=2),
            "support_ticket",
            {"ticket_id": "T-9", "status": "opened", "priority": "urgent"},
        )
        await seed.raw_event(
            conn,
            "acme",
            "c-1",
            NOW - timedelta(days=1),
            "contact_change",
            {"contact_id": "C-7", "change": "left_company", "role": "champion"},
        )
        await seed.raw_event(
            conn,
            "initech",
            "t-2",
            NOW - timedelta(days=1),
            "support_ticket",
            {"ticket_id": "T-1", "status": "opened", "priority": "low"},
        )
        await seed.outcome(conn, "acme", "renewed", "400000", "480000")
        await seed.outcome(conn, "initech", "churned", "100000", None)
        keys = {
            "admin": await seed.key(conn, "admin"),
            "ingest": await seed.key(conn, "ingest"),
            "all": await seed.key(conn, "read:all"),
            "lea": await seed.key(conn, "read:own", kam_id="kam-lea"),
            "marc": await seed.key(conn, "read:own", kam_id="kam-marc"),
            "paul": await seed.key(conn, "read:own", kam_id="kam-paul"),
            "zoe": await seed.key(conn, "read:own", kam_id="kam-zoe"),
        }
    return World(keys, alerts)


def make_app(settings: Settings, db: Database) -> FastAPI:
    patched = settings.model_copy(
        update={"cors_origins": ["https://crm.example.com"], "frame_ancestors": ["https://crm.example.com"]}
    )
    return build_app(patched, db, clock=lambda: NOW, key_cache_seconds=0)


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = make_app(settings, db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kamwatch.test") as http:
        yield http
