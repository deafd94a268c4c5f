"""Plain INSERTs of the rows the API reads (the health engine and alerting fill them in production)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from health_engine.access import create_key
from schemas.tables import account_health, account_health_history, accounts, alerts, kams, outcomes, raw_events

NOW = datetime.fromisoformat("2026-11-20T12:00:00+00:00")


async def kam(
    conn: AsyncConnection, kam_id: str, *, manager: str | None = None, locale: str = "en", name: str | None = None
) -> None:
    await conn.execute(
        insert(kams).values(
            kam_id=kam_id,
            name=name or kam_id.removeprefix("kam-").title(),
            email=f"{kam_id}@example.com",
            manager_kam_id=manager,
            locale=locale,
            timezone="Europe/Paris",
            last_event_time=NOW - timedelta(days=300),
            last_event_id=f"k-{kam_id}",
        )
    )


async def account(
    conn: AsyncConnection,
    account_id: str,
    owner: str,
    *,
    arr: str = "100000",
    currency: str = "EUR",
    tier: str = "key",
    segment: str | None = "enterprise",
    renewal: date | None = date(2027, 1, 31),
    name: str | None = None,
) -> None:
    await conn.execute(
        insert(accounts).values(
            account_id=account_id,
            name=name or account_id.title(),
            owner_kam_id=owner,
            arr=Decimal(arr),
            currency=currency,
            tier=tier,
            renewal_date=renewal,
            segment=segment,
            last_event_time=NOW - timedelta(days=200),
            last_event_id=f"a-{account_id}",
        )
    )


def driver(code: str, points: float, *, component: str = "support", severity: str = "warning") -> dict[str, Any]:
    return {
        "component": component,
        "code": code,
        "severity": severity,
        "points": points,
        "evidence": {"count": 2},
        "since": (NOW - timedelta(days=3)).isoformat(),
        "message_en": f"EN {code}",
        "message_fr": f"FR {code}",
    }


async def health(
    conn: AsyncConnection,
    account_id: str,
    risk: float,
    level: str,
    *,
    as_of: datetime = NOW,
    past: dict[int, float] | None = None,
    drivers: list[dict[str, Any]] | None = None,
) -> None:
    """Current health, plus history rows ``days ago -> risk`` (and today's)."""
    components = [{"name": "usage", "risk": risk, "weight": 0.6}, {"name": "support", "risk": risk / 2, "weight": 0.4}]
    await conn.execute(
        insert(account_health).values(
            account_id=account_id,
            as_of=as_of,
            risk=Decimal(str(risk)),
            level=level,
            level_since=as_of - timedelta(days=2),
            components=components,
            drivers=drivers if drivers is not None else [driver("support.urgent_open", 12.0)],
            config_version="test",
        )
    )
    points = {**(past or {}), 0: risk}
    for days, value in sorted(points.items(), reverse=True):
        await conn.execute(
            insert(account_health_history).values(
                account_id=account_id,
                as_of=as_of - timedelta(days=days),
                risk=Decimal(str(value)),
                level=level_for(value),
                components={"usage": value, "support": value / 2},
                driver_codes=["support.urgent_open"],
                config_version="test",
                trigger="sweep",
            )
        )


def level_for(risk: float) -> str:
    return "critical" if risk >= 80 else "high" if risk >= 60 else "medium" if risk >= 35 else "low"


async def alert(
    conn: AsyncConnection,
    account_id: str,
    *,
    rule: str = "usage_drop",
    severity: str = "warning",
    state: str = "firing",
    fired_at: datetime = NOW - timedelta(hours=5),
) -> int:
    alert_id: int = (
        await conn.execute(
            insert(alerts)
            .values(
                dedup_key=f"{account_id}:{rule}:{fired_at.isoformat()}",
                account_id=account_id,
                rule=rule,
                severity=severity,
                state=state,
                fired_at=fired_at,
                updated_at=fired_at,
                title_en=f"Usage drop at {account_id}",
                title_fr=f"Baisse d'utilisation chez {account_id}",
                drivers=[],
            )
            .returning(alerts.c.id)
        )
    ).scalar_one()
    return alert_id


async def raw_event(conn: AsyncConnection, account_id: str, event_id: str, at: datetime, type_: str, data: Any) -> None:
    await conn.execute(
        insert(raw_events).values(
            event_time=at,
            source="tests",
            event_id=event_id,
            type=f"kamwatch.{type_}.v1",
            subject=account_id,
            received_at=at,
            payload={"id": event_id, "source": "tests", "type": f"kamwatch.{type_}.v1", "data": data},
        )
    )


async def outcome(conn: AsyncConnection, account_id: str, kind: str, before: str, after: str | None) -> None:
    await conn.execute(
        insert(outcomes).values(
            account_id=account_id,
            event_time=NOW - timedelta(days=30),
            source="tests",
            event_id=f"o-{account_id}-{kind}",
            outcome=kind,
            arr_before=Decimal(before),
            arr_after=None if after is None else Decimal(after),
        )
    )


async def key(conn: AsyncConnection, *scopes: str, kam_id: str | None = None, name: str | None = None) -> str:
    new = await create_key(
        conn, name=name or "-".join(scopes), scopes=list(scopes), kam_id=kam_id, created_by="tests", at=NOW
    )
    return new.key
