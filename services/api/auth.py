"""Who is calling: the API key of a request, checked against ``health_engine.access`` (with a short cache),
failed attempts rate-limited per client address, and the FastAPI dependencies requiring a scope."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from health_engine.access import Principal, Scope, hash_key, principal_for_key
from services.api.problems import Problem

SESSION_COOKIE = "kamwatch_session"
"""The pages' cookie: a session token from /login (never the API key), revoked at /logout."""
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer kw_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in `X-API-Key`.")


class FailedAuthLimit:
    """Failed authentications (an unknown, revoked or expired key; a refused login) per client address, in a
    moving window (``limits``, this process's memory: with ``kamwatch api --workers N`` each process counts its
    own). Past the limit, every authentication from that address is refused with 429 until the window moves on,
    so guessing keys stays slow even with the right one among the guesses."""

    def __init__(self, limit: str) -> None:
        self.item: RateLimitItem = parse(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, client: str) -> None:
        if not self._limiter.test(self.item, client):
            reset = self._limiter.get_window_stats(self.item, client).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise Problem(
                429,
                "Too Many Requests",
                f"too many failed authentications from this address; retry in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    def failed(self, client: str) -> None:
        self._limiter.hit(self.item, client)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


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


def well_formed_key(key: str) -> bool:
    """Keys are printable ASCII: anything else (a NUL, a control character) is no key of ours, refused before
    it reaches the database or a header."""
    return key.isascii() and key.isprintable() and len(key) <= 256


async def authenticate(request: Request, key: str | None, *, count_failure: bool = True) -> Principal:
    """The caller behind ``key``; 401 (a failure counted against the client's address unless ``count_failure`` is
    false: the caller hands the request on to be authenticated again) or 429."""
    if not key:
        raise Problem(401, "Unauthorized", "an API key is required (Authorization: Bearer, or X-API-Key)")
    limit: FailedAuthLimit = request.app.state.failed_auth_limit
    client = client_address(request)
    limit.check(client)
    if not well_formed_key(key):
        if count_failure:
            limit.failed(client)
        raise Problem(401, "Unauthorized", "unknown, revoked or expired API key")
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(key)
    if principal is None:
        clock: Callable[[], datetime] = request.app.state.clock
        async with request.app.state.db.unit_of_work() as conn:
            principal = await principal_for_key(conn, key, now=clock()) if "\x00" not in key else None
        if principal is None:
            if count_failure:
                limit.failed(client)
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
    return require("read:all", "read:own", "write:all")


def may_act(principal: Principal, owner_kam_id: str | None) -> None:
    """403 unless the caller may change an account of this owner (write:all, admin, or its owner's key)."""
    if not principal.acts_on_owner(owner_kam_id):
        raise Problem(
            403,
            "Forbidden",
            "this key may read but not act on this account: that needs the write:all scope, or a key bound to "
            "the account's owner KAM or one of their managers",
        )
