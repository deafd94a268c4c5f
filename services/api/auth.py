"""API keys and who is calling: scopes, the KAMs whose accounts a caller may see, the FastAPI dependencies.

A key reads ``kw_<prefix>_<secret>``; the database keeps the prefix (to find the row, and to recognise the
key in listings) and the sha256 of the whole key. Keys carry 256 random bits, so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, RowMapping, insert, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.access_tables import api_keys
from services.api.problems import Problem

Scope = Literal["admin", "ingest", "read:all", "read:own"]
SCOPES: tuple[Scope, ...] = ("admin", "ingest", "read:all", "read:own")
READ_SCOPES: frozenset[str] = frozenset({"admin", "read:all", "read:own"})
SESSION_COOKIE = "kamwatch_key"

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer kw_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in `X-API-Key`.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Pages: the key set by /login.")


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: int
    key: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``kam_ids`` is None when it may see every account."""

    key_id: int | None
    name: str
    scopes: frozenset[str]
    kam_id: str | None
    kam_ids: frozenset[str] | None

    @property
    def actor(self) -> str:
        """How the caller appears in audit rows: its KAM when bound to one, else the key's name."""
        return self.kam_id or f"apikey:{self.name}"

    def can_read(self) -> bool:
        return bool(self.scopes & READ_SCOPES)

    def sees_owner(self, owner_kam_id: str | None) -> bool:
        return self.kam_ids is None or (owner_kam_id is not None and owner_kam_id in self.kam_ids)

    def visible(self, owner_column: ColumnElement[str]) -> ColumnElement[bool]:
        """SQL condition keeping the accounts whose owner this caller may see."""
        if self.kam_ids is None:
            return true()
        return owner_column.in_(sorted(self.kam_ids))


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def split_key(key: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    parts = key.split("_", 2)  # the secret part is base64url: it may contain "_" itself
    if len(parts) != 3 or parts[0] != "kw" or len(parts[1]) != 8 or len(parts[2]) < 32:
        return None
    return parts[1]


def validate_scopes(scopes: Sequence[str], kam_id: str | None) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)} (got {', '.join(unknown) or 'none'})")
    if "read:own" in scopes and not kam_id:
        raise ValueError("a read:own key must be bound to a KAM (kam_id)")
    return sorted(set(scopes))


async def create_key(
    conn: AsyncConnection,
    *,
    name: str,
    scopes: Sequence[str],
    kam_id: str | None,
    created_by: str,
    at: datetime,
    expires_at: datetime | None = None,
) -> NewKey:
    """Make a key; the clear key is returned here and never again."""
    checked = validate_scopes(scopes, kam_id)
    prefix = secrets.token_hex(4)
    key = f"kw_{prefix}_{secrets.token_urlsafe(32)}"
    key_id: int = (
        await conn.execute(
            insert(api_keys)
            .values(
                prefix=prefix,
                key_hash=hash_key(key),
                name=name,
                scopes=checked,
                kam_id=kam_id,
                created_at=at,
                created_by=created_by,
                expires_at=expires_at,
            )
            .returning(api_keys.c.id)
        )
    ).scalar_one()
    return NewKey(key_id=key_id, key=key, prefix=prefix)


async def list_keys(conn: AsyncConnection) -> Sequence[RowMapping]:
    query = select(api_keys).order_by(api_keys.c.id)
    return (await conn.execute(query)).mappings().all()


async def revoke_key(conn: AsyncConnection, key: str, *, at: datetime) -> bool:
    """Revoke by prefix (8 hex digits) or id; False when no such live key exists."""
    is_prefix = len(key) == 8 and all(c in "0123456789abcdef" for c in key)
    if not is_prefix and not key.isdigit():
        return False
    condition = api_keys.c.prefix == key if is_prefix else api_keys.c.id == int(key)
    result = await conn.execute(
        update(api_keys).where(condition, api_keys.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return result.rowcount > 0


_KAM_TREE = text(
    """
    WITH RECURSIVE tree(kam_id) AS (
        SELECT CAST(:kam_id AS text) COLLATE "C"
        UNION
        SELECT k.kam_id FROM kams k JOIN tree t ON k.manager_kam_id = t.kam_id
    )
    SELECT kam_id FROM tree
    """
)


async def visible_kams(conn: AsyncConnection, kam_id: str) -> frozenset[str]:
    """A KAM and everyone reporting to them, directly or not (cycles in the HR data are harmless: UNION)."""
    return frozenset((await conn.execute(_KAM_TREE, {"kam_id": kam_id})).scalars())


async def principal_for_key(conn: AsyncConnection, key: str, *, now: datetime) -> Principal | None:
    prefix = split_key(key)
    if prefix is None:
        return None
    row = (await conn.execute(select(api_keys).where(api_keys.c.prefix == prefix))).mappings().one_or_none()
    if row is None or not hmac.compare_digest(row["key_hash"], hash_key(key)):
        return None
    if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    scopes = frozenset(row["scopes"])
    all_accounts = bool(scopes & {"admin", "read:all"})
    kam_ids = None if all_accounts or not row["kam_id"] else await visible_kams(conn, row["kam_id"])
    if not all_accounts and kam_ids is None:
        kam_ids = frozenset()
    return Principal(row["id"], row["name"], scopes, row["kam_id"], kam_ids)


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
