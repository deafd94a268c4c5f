"""The health fast path (services/api/fastpath.py) answers exactly as the route, and only the plain requests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from services.api.app import build_app
from services.api.fastpath import HealthFastPath
from services.api.v1 import HEALTH_PATH
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW

PLAIN = "/v1/accounts/acme/health"


@pytest.fixture
async def route_only(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The same application without the fast path: every request goes through FastAPI's route."""
    patched = settings.model_copy(
        update={"cors_origins": ["https://crm.example.com"], "frame_ancestors": ["https://crm.example.com"]}
    )
    application = build_app(patched, db, clock=lambda: NOW, key_cache_seconds=0, health_fast_path=False)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://kamwatch.test") as http:
            yield http


def _cases(world: World) -> list[tuple[str, str, dict[str, str]]]:
    lea = world.auth("lea")
    return [
        ("GET", PLAIN, lea),
        ("GET", PLAIN + "?locale=fr", lea),
        ("GET", PLAIN + "?locale=en", {**lea, "Accept-Language": "fr"}),
        ("GET", PLAIN, {**lea, "Accept-Language": "de;q=1, fr-CA;q=0.8, en;q=0.5"}),
        ("GET", PLAIN, {"X-API-Key": world.keys["lea"]}),
        ("GET", PLAIN, {"Authorization": "bearer " + world.keys["lea"]}),
        ("GET", PLAIN, {"Authorization": "Basic " + world.keys["lea"], "X-API-Key": world.keys["lea"]}),
        ("GET", PLAIN, {**world.auth("marc"), "Origin": "https://crm.example.com"}),
        ("GET", "/v1/accounts/globex/health", world.auth("admin")),
        ("GET", "/v1/accounts/hooli/health", world.auth("zoe")),  # not scored yet
        # Everything below is not the fast path's to answer: the route must.
        ("GET", "/v1/accounts/initech/health", lea),  # another KAM's account: 404 like a missing one
        ("GET", "/v1/accounts/no-such/health", lea),
        ("GET", PLAIN, {}),
        ("GET", PLAIN, {"Authorization": "Bearer nope"}),
        ("GET", PLAIN, {"Authorization": "Basic " + world.keys["lea"]}),
        ("GET", PLAIN, world.auth("ingest")),  # 403
        ("GET", PLAIN + "?locale=de", lea),
        ("GET", PLAIN + "?locale=fr&locale=de", lea),
        ("GET", PLAIN + "?locale=fr&extra=1", lea),
        ("GET", "/v1/accounts/ac%00me/health", lea),
        ("GET", PLAIN + "/", lea),
        ("HEAD", PLAIN, lea),
        ("POST", PLAIN, lea),
    ]


async def test_every_answer_is_the_routes_own(
    client: httpx.AsyncClient, route_only: httpx.AsyncClient, world: World
) -> None:
    tag = (await route_only.get(PLAIN, headers=world.auth("lea"))).headers["etag"]
    cases = [
        *_cases(world),
        ("GET", PLAIN, {**world.auth("lea"), "If-None-Match": tag}),
        ("GET", PLAIN, {**world.auth("lea"), "If-None-Match": f'"other", W/{tag}'}),
        ("GET", PLAIN, {**world.auth("lea"), "If-None-Match": '"other"'}),
    ]
    statuses = set()
    for method, url, headers in cases:
        fast = await client.request(method, url, headers=headers)
        routed = await route_only.request(method, url, headers=headers)
        assert (fast.status_code, fast.headers.multi_items(), fast.content) == (
            routed.status_code,
            routed.headers.multi_items(),
            routed.content,
        ), (method, url, headers)
        statuses.add(fast.status_code)
    assert statuses == {200, 304, 307, 401, 403, 404, 405, 422}  # 307: the trailing slash


async def test_only_plain_requests_are_answered_without_the_route(app: FastAPI, world: World) -> None:
    passed_on: list[str] = []

    async def the_rest(scope: Scope, receive: Receive, send: Send) -> None:
        passed_on.append(scope["path"])
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer = HealthFastPath(the_rest)

    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # as Starlette sets it before its middlewares
        await layer(scope, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://kamwatch.test") as http:
        cases = _cases(world)
        answered = [(await http.request(method, url, headers=headers)).status_code for method, url, headers in cases]
        tag = (await http.get(PLAIN, headers=world.auth("lea"))).headers["etag"]
        revalidated = await http.get(PLAIN, headers={**world.auth("lea"), "If-None-Match": tag})

    assert answered == [200] * 10 + [599] * (len(cases) - 10)
    assert revalidated.status_code == 304
    assert len(passed_on) == len(cases) - 10


async def test_requests_it_answers_are_counted_under_the_route(app: FastAPI, world: World) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kamwatch.test") as http:
        for _ in range(3):
            assert (await http.get(PLAIN, headers=world.auth("lea"))).status_code == 200

    labels = {"route": HEALTH_PATH, "method": "GET", "status": "200"}
    assert app.state.metrics.registry.get_sample_value("kamwatch_http_requests_total", labels) == 3
