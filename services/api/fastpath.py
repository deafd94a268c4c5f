"""The polled endpoint, GET /v1/accounts/{id}/health, answered without FastAPI's routing and dependencies.

CRM widgets poll it, and its own work is one prepared statement and a small JSON document: the framework's
per-request machinery around it (matching over every route, four nested dependencies re-inspected on each
call, the exception and exit-stack layers) cost as much CPU as the work itself. This pure-ASGI layer, placed
innermost among the middlewares (metrics, CORS and the server-error layer still wrap it), answers only the
plain case with the route's very code (``api_v1.health_response``) and the same key checks:

- a GET on exactly that path (no root path, no NUL), with no query string or exactly ``locale=en|fr``;
- a key found the way the route finds it (``Authorization: Bearer``, else ``X-API-Key``), valid, with a read
  scope;
- an answer of 200 or 304 (the account exists and the caller may see it).

Everything else goes on, untouched, to the application (HEAD, other parameters, a missing or refused key, a
404, FastAPI telemetry switched on), so refusals, problem documents and validation stay the application's own;
such a request may cost its work twice (a key lookup, a health query), never a different answer.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.vocabulary import Locale
from services.api.auth import api_key_of, authenticate
from services.api.problems import Problem
from services.api.v1 import HEALTH_PATH, health_response, router

_PATH = re.compile(r"/v1/accounts/([^/]+)/health")
# The query strings answered here: none, or the locale alone (anything else, even valid, goes to the route).
_LOCALES: dict[bytes, Locale | None] = {b"": None, b"locale=en": "en", b"locale=fr": "fr"}
# The route stood in for: request metrics label by its template, as when the route answers.
_ROUTE = next(r for r in router.routes if isinstance(r, APIRoute) and r.path == HEALTH_PATH)


class HealthFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not await self._answered(scope, receive, send):
            await self.app(scope, receive, send)

    async def _answered(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("root_path")
            or scope.get("fastapi.telemetry") is not None
            or scope["query_string"] not in _LOCALES
        ):
            return False
        match = _PATH.fullmatch(scope["path"])
        if match is None or "\x00" in match.group(1):
            return False
        account_id = match.group(1)
        request = Request(scope, receive)
        try:
            # A refused key goes on to the route, which counts the failure: count it once.
            principal = await authenticate(request, await api_key_of(request), count_failure=False)
            if not principal.can_read():
                return False
            response = await health_response(request, account_id, principal, _LOCALES[scope["query_string"]])
        except Problem:
            return False
        scope["route"], scope["endpoint"], scope["path_params"] = _ROUTE, _ROUTE.endpoint, {"account_id": account_id}
        await response(scope, receive, send)
        return True
