"""Manual level pins (health_overrides), shared by the API and the CLI: one active pin per account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.tables import health_overrides


async def clear_override(conn: AsyncConnection, account_id: str, *, actor: str, now: datetime) -> int:
    """Revoke the account's pins still in force; returns how many."""
    result = await conn.execute(
        update(health_overrides)
        .where(
            health_overrides.c.account_id == account_id,
            health_overrides.c.revoked_at.is_(None),
            health_overrides.c.expires_at > now,
        )
        .values(revoked_at=now, revoked_by=actor)
    )
    return result.rowcount


async def set_override(
    conn: AsyncConnection,
    account_id: str,
    *,
    level: str,
    reason: str,
    actor: str,
    now: datetime,
    expires_at: datetime,
) -> RowMapping:
    """Pin the level until ``expires_at``, replacing any pin in force (kept, revoked, for the audit)."""
    await clear_override(conn, account_id, actor=actor, now=now)
    query = (
        insert(health_overrides)
        .values(
            account_id=account_id, level=level, reason=reason, created_by=actor, created_at=now, expires_at=expires_at
        )
        .returning(health_overrides)
    )
    row: RowMapping = (await conn.execute(query)).mappings().one()
    return row


async def list_overrides(
    conn: AsyncConnection, *, now: datetime, account_id: str | None = None, include_inactive: bool = False
) -> Sequence[RowMapping]:
    query = select(health_overrides).order_by(health_overrides.c.account_id, health_overrides.c.created_at.desc())
    if account_id:
        query = query.where(health_overrides.c.account_id == account_id)
    if not include_inactive:
        query = query.where(health_overrides.c.revoked_at.is_(None), health_overrides.c.expires_at > now)
    return (await conn.execute(query)).mappings().all()
