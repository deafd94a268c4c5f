"""POST/DELETE /v1/accounts/{id}/override: one pin in force per account, kept for audit."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from schemas.tables import health_overrides
from services.platform.database import Database
from tests.integration.api.conftest import World


async def test_set_replace_and_clear(client: httpx.AsyncClient, world: World, db: Database) -> None:
    first = await client.post(
        "/v1/accounts/acme/override", json={"level": "low", "reason": "signed", "hours": 24}, headers=world.auth("lea")
    )
    second = await client.post(
        "/v1/accounts/acme/override",
        json={"level": "medium", "reason": "re-assessed", "expires_at": "2026-12-01T00:00:00Z"},
        headers=world.auth("marc"),
    )
    shown = (await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))).json()["override"]
    cleared = await client.delete("/v1/accounts/acme/override", headers=world.auth("lea"))
    again = await client.delete("/v1/accounts/acme/override", headers=world.auth("lea"))
    gone = (await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))).json()["override"]

    assert first.status_code == second.status_code == 201
    assert first.json()["expires_at"].startswith("2026-11-21T12:00:00")
    assert shown["level"] == "medium"
    assert shown["created_by"] == "kam-marc"
    assert cleared.status_code == 204
    assert again.status_code == 404
    assert gone is None
    async with db.unit_of_work() as conn:
        rows = (await conn.execute(select(health_overrides).order_by(health_overrides.c.id))).mappings().all()
    assert [(r["level"], r["revoked_by"]) for r in rows] == [("low", "kam-marc"), ("medium", "kam-lea")]


async def test_validation(client: httpx.AsyncClient, world: World) -> None:
    no_reason = await client.post("/v1/accounts/acme/override", json={"level": "low"}, headers=world.auth("lea"))
    past = await client.post(
        "/v1/accounts/acme/override",
        json={"level": "low", "reason": "x", "expires_at": "2020-01-01T00:00:00Z"},
        headers=world.auth("lea"),
    )
    assert no_reason.status_code == past.status_code == 422
    assert no_reason.json()["field"] == "reason"
    assert past.json()["field"] == "expires_at"
