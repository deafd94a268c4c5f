"""GET /v1/accounts/{id}/health: content, locale, override, ETag and 304."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import insert

from schemas.tables import health_overrides
from services.platform.database import Database
from tests.integration.api import seed
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW


async def test_health_of_an_account(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))

    assert response.status_code == 200
    body = response.json()
    assert (body["risk"], body["level"], body["arr"], body["currency"], body["tier"]) == (
        72.5,
        "high",
        "480000.0000",
        "EUR",
        "strategic",
    )
    assert body["owner"] == {"kam_id": "kam-lea", "name": "Lea"}
    assert body["renewal_date"] == "2027-01-31"
    assert body["as_of"].startswith("2026-11-20T12:00:00")
    assert body["trend"] == {"risk_7d_ago": 41.0, "risk_30d_ago": 35.5, "change_7d": 31.5, "change_30d": 37.0}
    assert [c["name"] for c in body["components"]] == ["usage", "support"]
    assert body["drivers"][0]["message"] == "EN support.urgent_open"
    assert body["drivers"][0]["evidence"] == {"count": 2}
    assert [a["id"] for a in body["open_alerts"]] == [world.alerts["acme"]]  # the resolved one is not open
    assert body["override"] is None
    assert response.headers["cache-control"] == "private, no-cache"


async def test_locale_from_query_or_accept_language(client: httpx.AsyncClient, world: World) -> None:
    by_query = (await client.get("/v1/accounts/acme/health?locale=fr", headers=world.auth("admin"))).json()
    by_header = (
        await client.get(
            "/v1/accounts/acme/health",
            headers={**world.auth("admin"), "Accept-Language": "de;q=1, fr-CA;q=0.8, en;q=0.5"},
        )
    ).json()

    for body in (by_query, by_header):
        assert body["locale"] == "fr"
        assert body["drivers"][0]["message"] == "FR support.urgent_open"
        assert body["open_alerts"][0]["title"] == "Baisse d'utilisation chez acme"


async def test_unknown_locale_is_422_naming_the_field(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/accounts/acme/health?locale=de", headers=world.auth("admin"))
    assert response.status_code == 422
    assert response.json()["field"] == "query.locale"


async def test_etag_gives_304_until_the_health_changes(client: httpx.AsyncClient, world: World, db: Database) -> None:
    first = await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))
    tag = first.headers["etag"]

    again = await client.get("/v1/accounts/acme/health", headers={**world.auth("lea"), "If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag

    async with db.unit_of_work() as conn:
        await seed.alert(conn, "acme", rule="ticket_surge")
    changed = await client.get("/v1/accounts/acme/health", headers={**world.auth("lea"), "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag
    assert len(changed.json()["open_alerts"]) == 2


async def test_active_override_is_shown_with_who_why_until(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    async with db.unit_of_work() as conn:
        await conn.execute(
            insert(health_overrides).values(
                account_id="acme",
                level="low",
                reason="renewal signed",
                created_by="kam-lea",
                created_at=NOW - timedelta(hours=1),
                expires_at=NOW + timedelta(days=2),
            )
        )
        await conn.execute(
            insert(health_overrides).values(
                account_id="acme",
                level="critical",
                reason="long gone",
                created_by="kam-lea",
                created_at=NOW - timedelta(days=10),
                expires_at=NOW - timedelta(days=5),
            )
        )
    body = (await client.get("/v1/accounts/acme/health", headers=world.auth("lea"))).json()

    assert body["override"]["level"] == "low"
    assert body["override"]["reason"] == "renewal signed"
    assert body["override"]["created_by"] == "kam-lea"
    assert body["override"]["expires_at"].startswith("2026-11-22T12:00:00")


async def test_account_not_yet_scored(client: httpx.AsyncClient, world: World) -> None:
    body = (await client.get("/v1/accounts/hooli/health", headers=world.auth("zoe"))).json()
    assert (body["risk"], body["level"], body["components"], body["drivers"]) == (None, None, [], [])
    assert body["trend"]["change_7d"] is None


async def test_unknown_account_is_a_404_problem(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/accounts/nope/health", headers=world.auth("admin"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"
