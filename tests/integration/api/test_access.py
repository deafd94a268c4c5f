"""Who may call what: keys, scopes, per-KAM visibility (a manager sees his reports, transitively)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from health_engine.access import create_key, revoke_key
from services.platform.database import Database
from tests.events import encode, event
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW


async def test_no_key_or_a_bad_key_is_401(client: httpx.AsyncClient, world: World) -> None:
    missing = await client.get("/v1/accounts/acme/health")
    garbage = await client.get("/v1/accounts/acme/health", headers={"Authorization": "Bearer nope"})
    forged = world.keys["admin"][:-4] + "AAAA"
    wrong_secret = await client.get("/v1/accounts/acme/health", headers={"Authorization": f"Bearer {forged}"})

    for response in (missing, garbage, wrong_secret):
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


async def test_x_api_key_header_works_too(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/accounts/acme/health", headers={"X-API-Key": world.keys["lea"]})
    assert response.status_code == 200


async def test_revoked_and_expired_keys_are_401(client: httpx.AsyncClient, world: World, db: Database) -> None:
    assert (await client.get("/v1/accounts", headers=world.auth("all"))).status_code == 200
    prefix = world.keys["all"].split("_")[1]
    async with db.unit_of_work() as conn:
        assert await revoke_key(conn, prefix, at=NOW)
        assert not await revoke_key(conn, prefix, at=NOW)  # already revoked
        expired = await create_key(
            conn, name="old", scopes=["admin"], kam_id=None, created_by="t", at=NOW, expires_at=NOW - timedelta(1)
        )
    assert (await client.get("/v1/accounts", headers=world.auth("all"))).status_code == 401
    response = await client.get("/v1/accounts", headers={"Authorization": f"Bearer {expired.key}"})
    assert response.status_code == 401


async def test_ingest_scope_posts_events_but_cannot_read(client: httpx.AsyncClient, world: World) -> None:
    body = encode(event("usage", "acme", NOW, {"quantity": 1}))
    posted = await client.post("/v1/events", content=body, headers=world.auth("ingest"))
    read = await client.get("/v1/accounts/acme/health", headers=world.auth("ingest"))
    by_reader = await client.post("/v1/events", content=body, headers=world.auth("lea"))

    assert posted.status_code == 200
    assert posted.json()["accepted"] == 1
    assert read.status_code == 403
    assert read.headers["content-type"] == "application/problem+json"
    assert by_reader.status_code == 403


async def test_read_own_sees_another_kams_account_exactly_like_a_missing_one(
    client: httpx.AsyncClient, world: World
) -> None:
    other = await client.get("/v1/accounts/initech/health", headers=world.auth("lea"))
    missing = await client.get("/v1/accounts/no-such/health", headers=world.auth("lea"))

    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]
    assert other.json()["title"] == missing.json()["title"]
    for path in ("history", "timeline"):
        assert (await client.get(f"/v1/accounts/initech/{path}", headers=world.auth("lea"))).status_code == 404


@pytest.mark.parametrize(
    ("who", "visible"),
    [
        ("marc", {"acme", "globex", "umbrella"}),  # manager: own, report (lea) and report's report (paul)
        ("lea", {"acme", "globex"}),
        ("paul", {"globex"}),
        ("zoe", {"initech", "hooli"}),
        ("all", {"acme", "globex", "umbrella", "initech", "hooli"}),
        ("admin", {"acme", "globex", "umbrella", "initech", "hooli"}),
    ],
)
async def test_lists_only_include_visible_accounts(
    client: httpx.AsyncClient, world: World, who: str, visible: set[str]
) -> None:
    accounts = (await client.get("/v1/accounts", headers=world.auth(who))).json()["items"]
    summary = (await client.get("/v1/portfolio/summary", headers=world.auth(who))).json()
    alerts = (await client.get("/v1/alerts", headers=world.auth(who))).json()["items"]

    assert {a["account_id"] for a in accounts} == visible
    assert summary["accounts"] == len(visible)
    assert {a["account_id"] for a in alerts} <= visible
    for account_id in visible:
        assert (await client.get(f"/v1/accounts/{account_id}/health", headers=world.auth(who))).status_code == 200


async def test_writes_on_an_invisible_alert_are_404(client: httpx.AsyncClient, world: World) -> None:
    alert_id = world.alerts["initech"]
    for action, body in (("ack", None), ("resolve", None), ("snooze", {"minutes": 60})):
        response = await client.post(f"/v1/alerts/{alert_id}/{action}", json=body, headers=world.auth("lea"))
        assert response.status_code == 404, action
    feedback = await client.post(
        f"/v1/alerts/{alert_id}/feedback", json={"verdict": "useful"}, headers=world.auth("lea")
    )
    override = await client.post(
        "/v1/accounts/initech/override", json={"level": "low", "reason": "x"}, headers=world.auth("lea")
    )
    token = await client.post("/v1/widget-tokens", json={"account_id": "initech"}, headers=world.auth("lea"))
    assert (feedback.status_code, override.status_code, token.status_code) == (404, 404, 404)


async def test_probes_and_docs_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200


async def test_cors_allow_list(client: httpx.AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    allowed = await client.options(
        "/v1/accounts/acme/health", headers={"Origin": "https://crm.example.com", **preflight}
    )
    refused = await client.options("/v1/accounts/acme/health", headers={"Origin": "https://evil.example", **preflight})

    assert allowed.headers["access-control-allow-origin"] == "https://crm.example.com"
    assert "access-control-allow-origin" not in refused.headers
