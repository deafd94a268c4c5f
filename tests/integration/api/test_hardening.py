"""Access hardened: failed authentications rate-limited per client address; acting on an account needs write:all
or ownership; widget tokens bound to the minting key and the owner, short-lived, never in the access log; the
pages' cookie is a session, not the key, and logout ends it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

import httpx
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text

from health_engine.access import revoke_key
from services.api.app import build_app
from services.api.auth import SESSION_COOKIE
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api import seed
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW
from tests.processes import free_port


@asynccontextmanager
async def client_at(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://kamwatch.test") as http:
        yield http


# --- rate limit on failed authentication -------------------------------------------------------------------


async def test_failed_authentications_are_rate_limited_per_address(
    settings: Settings, db: Database, world: World
) -> None:
    app = build_app(settings.model_copy(update={"auth_failure_limit": "3/minute"}), db, clock=lambda: NOW)
    good = world.auth("admin")
    async with (
        app.router.lifespan_context(app),
        client_at(app, "203.0.113.7") as attacker,
        client_at(app, "198.51.100.2") as neighbour,
    ):
        for n in range(3):
            wrong = {"Authorization": f"Bearer kw_0000000{n}_{'x' * 43}"}
            assert (await attacker.get("/v1/accounts", headers=wrong)).status_code == 401
            if n == 1:  # only failures count
                assert (await attacker.get("/v1/accounts", headers=good)).status_code == 200
        limited = await attacker.get("/v1/accounts", headers={"X-API-Key": "kw_nope"})
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # From there on even the right key is refused from that address (guessing stays slow) ...
        assert (await attacker.get("/v1/accounts", headers=good)).status_code == 429
        assert (await attacker.get("/v1/accounts/acme/health", headers=good)).status_code == 429
        login = await attacker.post("/login", data={"key": world.keys["admin"]})
        assert login.status_code == 429
        assert "Too many failed attempts" in login.text
        assert "retry-after" in login.headers
        # ... but not from another one.
        assert (await neighbour.get("/v1/accounts", headers=good)).status_code == 200


async def test_failed_logins_count_too(settings: Settings, db: Database, world: World) -> None:
    app = build_app(settings.model_copy(update={"auth_failure_limit": "2/minute"}), db, clock=lambda: NOW)
    async with app.router.lifespan_context(app), client_at(app, "203.0.113.8") as http:
        for _ in range(2):
            assert (await http.post("/login", data={"key": "kw_guess"})).status_code == 401
        fr = await http.post("/login?locale=fr", data={"key": world.keys["admin"]})
        assert fr.status_code == 429
        assert "Trop de tentatives" in fr.text
        assert (await http.get("/v1/accounts", headers=world.auth("admin"))).status_code == 429


# --- write actions need write:all or ownership -------------------------------------------------------------


async def test_a_read_all_key_reads_but_cannot_act(client: httpx.AsyncClient, world: World) -> None:
    alert = world.alerts["acme"]
    reader = world.auth("all")
    assert (await client.get("/v1/accounts/acme/health", headers=reader)).status_code == 200
    refused = [
        await client.post(f"/v1/alerts/{alert}/ack", headers=reader),
        await client.post(f"/v1/alerts/{alert}/snooze", json={"minutes": 60}, headers=reader),
        await client.post(f"/v1/alerts/{alert}/resolve", headers=reader),
        await client.post(f"/v1/alerts/{alert}/feedback", json={"verdict": "useful"}, headers=reader),
        await client.post("/v1/accounts/acme/override", json={"level": "low", "reason": "x"}, headers=reader),
        await client.delete("/v1/accounts/acme/override", headers=reader),
        await client.post("/v1/widget-tokens", json={"account_id": "acme"}, headers=reader),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request.url, response.text)
        assert "write:all" in response.json()["detail"]
    alerts = (await client.get("/v1/alerts", params={"account_id": "acme"}, headers=world.auth("admin"))).json()
    assert {a["state"] for a in alerts["items"] if a["id"] == alert} == {"firing"}


async def test_write_all_and_owners_act(client: httpx.AsyncClient, world: World, db: Database) -> None:
    async with db.unit_of_work() as conn:
        writer = {"Authorization": f"Bearer {await seed.key(conn, 'write:all')}"}
    assert (await client.post(f"/v1/alerts/{world.alerts['initech']}/ack", headers=writer)).status_code == 200
    # lea owns acme and manages paul (globex); marc manages lea; zoe owns neither.
    assert (await client.post(f"/v1/alerts/{world.alerts['acme']}/ack", headers=world.auth("lea"))).status_code == 200
    assert (
        await client.post(f"/v1/alerts/{world.alerts['globex']}/ack", headers=world.auth("marc"))
    ).status_code == 200
    override = {"level": "low", "reason": "signed", "hours": 1}
    assert (
        await client.post("/v1/accounts/globex/override", json=override, headers=world.auth("lea"))
    ).status_code == 201
    outsider = await client.post(f"/v1/alerts/{world.alerts['acme']}/resolve", headers=world.auth("zoe"))
    assert outsider.status_code == 404  # not even visible


# --- widget tokens ----------------------------------------------------------------------------------------


async def _mint(client: httpx.AsyncClient, world: World, who: str = "lea", **body: object) -> dict[str, object]:
    response = await client.post("/v1/widget-tokens", json={"account_id": "acme", **body}, headers=world.auth(who))
    assert response.status_code == 201, response.text
    minted: dict[str, object] = response.json()
    return minted


async def test_widget_tokens_are_short_lived_by_default(client: httpx.AsyncClient, world: World) -> None:
    minted = await _mint(client, world)
    assert minted["expires_at"] == (NOW + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    too_long = await client.post(
        "/v1/widget-tokens", json={"account_id": "acme", "ttl_seconds": 7 * 24 * 3600}, headers=world.auth("lea")
    )
    assert too_long.status_code == 422


async def test_revoking_the_minting_key_ends_its_widget_tokens(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    token = (await _mint(client, world))["token"]
    kept = (await _mint(client, world, "admin"))["token"]
    assert (await client.get(f"/widget/accounts/acme?token={token}")).status_code == 200
    async with db.unit_of_work() as conn:
        assert await revoke_key(conn, world.keys["lea"].split("_")[1], at=NOW)
    assert (await client.get(f"/widget/accounts/acme?token={token}")).status_code == 403
    ack = await client.post(f"/widget/accounts/acme/alerts/{world.alerts['acme']}/ack", data={"token": token})
    assert ack.status_code == 403
    assert (await client.get(f"/widget/accounts/acme?token={kept}")).status_code == 200  # another key's


async def test_an_owner_change_ends_the_account_widget_tokens(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    token = (await _mint(client, world, "admin"))["token"]
    assert (await client.get(f"/widget/accounts/acme?token={token}")).status_code == 200
    async with db.unit_of_work() as conn:
        await conn.execute(text("UPDATE accounts SET owner_kam_id = 'kam-zoe' WHERE account_id = 'acme'"))
    assert (await client.get(f"/widget/accounts/acme?token={token}")).status_code == 403
    fresh = (await _mint(client, world, "admin"))["token"]
    assert (await client.get(f"/widget/accounts/acme?token={fresh}")).status_code == 200


@contextmanager
def served_with_access_log(app: FastAPI) -> Iterator[tuple[str, list[str]]]:
    """``app`` served by uvicorn with its access log on (INFO), and the log lines it writes."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True))
    access = logging.getLogger("uvicorn.access")
    collect = Collect()
    access.addHandler(collect)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", lines
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        access.removeHandler(collect)


async def test_widget_tokens_never_reach_the_access_log(settings: Settings, world: World) -> None:
    app = build_app(settings, clock=lambda: NOW, key_cache_seconds=0)  # its own database, in the server's loop
    with served_with_access_log(app) as (url, lines):
        async with httpx.AsyncClient(base_url=url) as http:
            minted = await http.post("/v1/widget-tokens", json={"account_id": "acme"}, headers=world.auth("lea"))
            token = minted.json()["token"]
            page = await http.get(f"/widget/accounts/acme?token={token}&locale=fr")
            assert page.status_code == 200
            deadline = time.monotonic() + 10
            while not any("/widget/accounts/acme" in line for line in lines):  # the line is written after the answer
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
    widget_lines = [line for line in lines if "/widget/accounts/acme" in line]
    assert widget_lines
    assert all("token=[redacted]&locale=fr" in line for line in widget_lines)
    assert not any(token in line or token.split(".")[1] in line for line in lines)


# --- page sessions ----------------------------------------------------------------------------------------


async def test_the_login_cookie_is_a_session_that_logout_ends(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    key = world.keys["marc"]
    login = await client.post("/login", data={"key": key})
    assert login.status_code == 303
    session = client.cookies[SESSION_COOKIE]
    assert session.startswith("kws_")
    assert key not in login.headers["set-cookie"]
    assert key.split("_", 2)[2] not in session
    assert (await client.get("/")).status_code == 200

    assert (await client.post("/logout")).status_code == 303
    client.cookies.set(SESSION_COOKIE, session)  # a copy kept by someone else
    assert (await client.get("/")).status_code == 303  # back to the login page: the session is over
    async with db.unit_of_work() as conn:
        [(revoked,)] = (await conn.execute(text("SELECT revoked_at FROM api_sessions"))).all()
    assert revoked == NOW


async def test_revoking_the_key_ends_its_sessions(client: httpx.AsyncClient, world: World, db: Database) -> None:
    await client.post("/login", data={"key": world.keys["marc"]})
    assert (await client.get("/")).status_code == 200
    async with db.unit_of_work() as conn:
        assert await revoke_key(conn, world.keys["marc"].split("_")[1], at=NOW)
    assert (await client.get("/")).status_code == 303
    client.cookies.set(SESSION_COOKIE, world.keys["admin"])  # the old kind of cookie: a raw key opens nothing
    assert (await client.get("/")).status_code == 303


async def test_sessions_expire(settings: Settings, db: Database, world: World) -> None:
    now = [NOW]
    app = build_app(settings.model_copy(update={"session_ttl_s": 3600}), db, clock=lambda: now[0])
    async with app.router.lifespan_context(app), client_at(app, "127.0.0.1") as http:
        await http.post("/login", data={"key": world.keys["marc"]})
        assert (await http.get("/")).status_code == 200
        now[0] = NOW + timedelta(hours=1)
        assert (await http.get("/")).status_code == 303


# --- OpenAPI ----------------------------------------------------------------------------------------------


async def test_the_new_refusals_are_declared_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, item in paths.items():
        if path.startswith("/v1/") and not path.startswith("/v1/slack/"):
            for method, operation in item.items():
                assert "429" in operation["responses"], (method, path)
                assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)
    for path, method in (
        ("/v1/alerts/{alert_id}/ack", "post"),
        ("/v1/accounts/{account_id}/override", "delete"),
        ("/v1/widget-tokens", "post"),
    ):
        assert "write:all" in paths[path][method]["responses"]["403"]["description"]
