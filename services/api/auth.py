"""Who is calling: the API key of a request, checked against ``health_engine.access`` (with a short cache),
and the FastAPI dependencies requiring a scope."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from health_engine.access import Principal, Scope, hash_key, principal_for_key
from services.api.problems import Problem

SESSION_COOKIE = "kamwatch_key"
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer kw_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in `X-API-Key`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Pages: the key set by /login.")


class KeyCache:
    """Recently checked keys, so a polling widget costs one query per request rather than two or three.

    A revocation (or a new report line for a manager) takes effect after ``ttl`` seconds in other processes;
    the process that revokes forgets at once.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(hash_key(key))
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[hash_key(key)] = (time.monotonic(), principal)

    def clear(self) -> None:
        self._entries.clear()


async def authenticate(request: Request, key: str | None) -> Principal:
    if not key:
        raise Problem(401, "Unauthorized", "an API key is required (Authorization: Bearer, or X-API-Key)")
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(key)
    if principal is None:
        clock: Callable[[], datetime] = request.app.state.clock
        async with request.app.state.db.unit_of_work() as conn:
            principal = await principal_for_key(conn, key, now=clock())
        if principal is None:
            raise Problem(401, "Unauthorized", "unknown, revoked or expired API key")
        cache.put(key, principal)
    return principal


async def api_principal(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> Principal:
    """The caller of a /v1 endpoint, from `Authorization: Bearer` or `X-API-Key`."""
    return await authenticate(request, bearer.credentials if bearer else header)


async def api_key_of(request: Request) -> str | None:
    """The key as api_principal's dependencies find it, for code outside FastAPI's dependency injection."""
    bearer = await _bearer(request)
    return bearer.credentials if bearer else await _header(request)


def require(*scopes: Scope) -> Callable[..., object]:
    """A dependency admitting callers holding any of ``scopes`` (admin always passes)."""
    wanted = frozenset(scopes) | {"admin"}

    async def dependency(principal: Principal = Depends(api_principal)) -> Principal:
        if not principal.scopes & wanted:
            raise Problem(403, "Forbidden", f"this API key lacks a scope among: {', '.join(sorted(wanted))}")
        return principal

    return dependency


def reader() -> Callable[..., object]:
    return require("read:all", "read:own")
