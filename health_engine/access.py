"""Who may see and do what: API keys and their scopes, the KAMs whose accounts a caller may see (a KAM and
everyone reporting to them), page sessions, and widget tokens (short-lived, account-bound, HMAC-signed, so a CRM
iframe never holds an API key).

A key reads ``kw_<prefix>_<secret>``; the database keeps the prefix (to find the row, and to recognise the
key in listings) and the sha256 of the whole key. Keys carry 256 random bits, so a fast hash is enough.
Reading needs a read scope; acting on an account (alert lifecycle, overrides, widget tokens) needs ``write:all``
or ownership: a key bound to the account's owner KAM or one of their managers.
A page session (``kws_<secret>``, after /login) stands for the key it was opened with; the database keeps its
sha256; logout, expiry or the key's revocation ends it.
A widget token is ``base64url(json [account_id, kam_id, expires_epoch, key_id, owner_kam_id]) "."
base64url(hmac_sha256(secret, payload))``: bound to the key that minted it and to the account's owner then, it
ends when that key is revoked or the account changes owner (``grant_holds``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import orjson
from sqlalchemy import ColumnElement, RowMapping, and_, insert, or_, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.access_tables import api_keys, api_sessions, app_secrets
from schemas.tables import accounts

Scope = Literal["admin", "ingest", "read:all", "read:own", "write:all"]
SCOPES: tuple[Scope, ...] = ("admin", "ingest", "read:all", "read:own", "write:all")
READ_SCOPES: frozenset[str] = frozenset({"admin", "read:all", "read:own", "write:all"})
ALL_ACCOUNTS: frozenset[str] = frozenset({"admin", "read:all", "write:all"})
"""Scopes that see every account."""
WRITE_ALL: frozenset[str] = frozenset({"admin", "write:all"})
"""Scopes that act on every account (others act only on the accounts of the KAM their key is bound to)."""


@dataclass(frozen=True, slots=True)
class NewKey:
    key_id: int
    key: str
    prefix: str


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``kam_ids`` is None when it may see every account; ``acts_for`` None when it may
    act on every account, else the owners whose accounts it may act on (its KAM and their reports)."""

    key_id: int | None
    name: str
    scopes: frozenset[str]
    kam_id: str | None
    kam_ids: frozenset[str] | None
    acts_for: frozenset[str] | None = frozenset()

    @property
    def actor(self) -> str:
        """How the caller appears in audit rows: its KAM when bound to one, else the key's name."""
        return self.kam_id or f"apikey:{self.name}"

    def can_read(self) -> bool:
        return bool(self.scopes & READ_SCOPES)

    def sees_owner(self, owner_kam_id: str | None) -> bool:
        return self.kam_ids is None or (owner_kam_id is not None and owner_kam_id in self.kam_ids)

    def acts_on_owner(self, owner_kam_id: str | None) -> bool:
        """May it change an account of this owner (acknowledge, resolve, override, mint widget tokens)?"""
        return self.acts_for is None or (owner_kam_id is not None and owner_kam_id in self.acts_for)

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


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(api_keys.c.revoked_at.is_(None), or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))


async def kam_may_act(conn: AsyncConnection, kam_id: str, owner_kam_id: str | None, *, now: datetime) -> bool:
    """Whether ``kam_id`` may act on an account owned by ``owner_kam_id`` (acknowledge, snooze, give feedback):
    its owner, a manager above the owner, or a KAM holding a live admin key."""
    if owner_kam_id is not None and owner_kam_id in await visible_kams(conn, kam_id):
        return True
    admin = (
        select(api_keys.c.id)
        .where(
            api_keys.c.kam_id == kam_id,
            api_keys.c.scopes.contains(["admin"]),
            _live(now),
        )
        .limit(1)
    )
    return (await conn.execute(admin)).first() is not None


async def principal_for_key(conn: AsyncConnection, key: str, *, now: datetime) -> Principal | None:
    prefix = split_key(key)
    if prefix is None:
        return None
    row = (await conn.execute(select(api_keys).where(api_keys.c.prefix == prefix))).mappings().one_or_none()
    if row is None or not hmac.compare_digest(row["key_hash"], hash_key(key)):
        return None
    if row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    return await _principal(conn, row)


async def _principal(conn: AsyncConnection, row: RowMapping) -> Principal:
    scopes = frozenset(row["scopes"])
    own = await visible_kams(conn, row["kam_id"]) if row["kam_id"] else frozenset()
    kam_ids = None if scopes & ALL_ACCOUNTS else own
    acts_for = None if scopes & WRITE_ALL else own
    return Principal(row["id"], row["name"], scopes, row["kam_id"], kam_ids, acts_for)


# --- page sessions --------------------------------------------------------------------------------------

SESSION_PREFIX = "kws_"


async def open_session(conn: AsyncConnection, key_id: int, *, at: datetime, expires_at: datetime) -> str:
    """A new page session for the key ``key_id``; its token is returned here and never stored."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        insert(api_sessions).values(token_hash=hash_key(token), key_id=key_id, created_at=at, expires_at=expires_at)
    )
    return token


async def principal_for_session(conn: AsyncConnection, token: str, *, now: datetime) -> Principal | None:
    """The caller behind a live session of a live key, else None."""
    if not token.startswith(SESSION_PREFIX):
        return None
    query = (
        select(api_keys)
        .join(api_sessions, api_sessions.c.key_id == api_keys.c.id)
        .where(
            api_sessions.c.token_hash == hash_key(token),
            api_sessions.c.revoked_at.is_(None),
            api_sessions.c.expires_at > now,
            _live(now),
        )
    )
    row = (await conn.execute(query)).mappings().one_or_none()
    return await _principal(conn, row) if row is not None else None


async def end_session(conn: AsyncConnection, token: str, *, at: datetime) -> bool:
    """Revoke a session (logout); False when it was not live."""
    result = await conn.execute(
        update(api_sessions)
        .where(api_sessions.c.token_hash == hash_key(token), api_sessions.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return result.rowcount > 0


# --- widget tokens --------------------------------------------------------------------------------------

SECRET_NAME = "widget_token"


class InvalidToken(ValueError):
    """Malformed, tampered with, expired, or for another account."""


@dataclass(frozen=True, slots=True)
class WidgetGrant:
    account_id: str
    kam_id: str | None
    expires_at: datetime
    key_id: int | None
    """The API key that minted it (None: minted on the command line)."""
    owner_kam_id: str | None
    """The account's owner when it was minted."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def mint(
    secret: bytes,
    account_id: str,
    kam_id: str | None,
    expires_at: datetime,
    *,
    key_id: int | None,
    owner_kam_id: str | None,
) -> str:
    """A token for ``account_id`` until ``expires_at``, bound to the minting key and the account's owner now."""
    claims = [account_id, kam_id, int(expires_at.timestamp()), key_id, owner_kam_id]
    payload = _b64(orjson.dumps(claims))
    return f"{payload}.{_signature(secret, payload)}"


def verify(secret: bytes, token: str, *, account_id: str, now: datetime) -> WidgetGrant:
    """The grant of a valid token for ``account_id``; InvalidToken otherwise (the reason is for logs only)."""
    payload, _, signature = token.partition(".")
    if not payload or not signature:
        raise InvalidToken("malformed token")
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise InvalidToken("bad signature")
    try:
        claimed_account, kam_id, expires, key_id, owner = orjson.loads(_unb64(payload))
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (ValueError, TypeError, OverflowError, OSError, binascii.Error) as error:
        raise InvalidToken("malformed token") from error
    if (
        not isinstance(claimed_account, str)
        or not isinstance(expires, int)
        or not (key_id is None or isinstance(key_id, int))
        or not (owner is None or isinstance(owner, str))
    ):
        raise InvalidToken("malformed token")
    if claimed_account != account_id:
        raise InvalidToken("token for another account")
    if expires_at <= now:
        raise InvalidToken("token expired")
    return WidgetGrant(claimed_account, kam_id if isinstance(kam_id, str) else None, expires_at, key_id, owner)


async def account_owner(conn: AsyncConnection, account_id: str) -> tuple[bool, str | None]:
    """(whether the account exists, its owner KAM)."""
    query = select(accounts.c.owner_kam_id).where(accounts.c.account_id == account_id)
    row = (await conn.execute(query)).one_or_none()
    return (row is not None, row[0] if row is not None else None)


async def grant_holds(conn: AsyncConnection, grant: WidgetGrant, *, now: datetime) -> bool:
    """A verified token still stands: its minting key is live, and the account still has the owner it had."""
    if grant.key_id is not None:
        live = await conn.execute(select(api_keys.c.id).where(api_keys.c.id == grant.key_id, _live(now)))
        if live.one_or_none() is None:
            return False
    exists, owner = await account_owner(conn, grant.account_id)
    return exists and owner == grant.owner_kam_id


async def signing_secret(conn: AsyncConnection, configured: str | None, *, now: datetime) -> bytes:
    """The ``configured`` key, else the one kept in the database (generated by whoever asks first)."""
    if configured is not None:
        return configured.encode()
    # Insert-if-absent, then read back: concurrent first callers all end up with the same winner.
    await conn.execute(
        pg_insert(app_secrets)
        .values(name=SECRET_NAME, secret=secrets.token_bytes(32), created_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    secret: bytes = (
        await conn.execute(select(app_secrets.c.secret).where(app_secrets.c.name == SECRET_NAME))
    ).scalar_one()
    return secret
