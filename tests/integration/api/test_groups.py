"""A parent account's health rolls up its subsidiaries by ARR and names the one that drives it; subsidiaries
the caller may not see count in the figure but are never named."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from schemas.tables import accounts
from services.platform.database import Database
from tests.integration.api import seed
from tests.integration.api.conftest import World


async def group_of(client: httpx.AsyncClient, world: World, who: str) -> dict[str, object]:
    response = await client.get("/v1/accounts/acme/health", headers=world.auth(who))
    assert response.status_code == 200
    group: dict[str, object] = response.json()["group"]
    return group


async def test_a_parent_rolls_up_its_subsidiaries(client: httpx.AsyncClient, world: World, db: Database) -> None:
    async with db.unit_of_work() as conn:
        await seed.account(conn, "acme-de", "kam-lea", arr="240000")  # 72.5 at acme with 480,000
        await seed.health(conn, "acme-de", 90.0, "critical")
        await seed.account(conn, "acme-us", "kam-zoe", arr="80000")  # another KAM's subsidiary
        await seed.health(conn, "acme-us", 10.0, "low")
        await conn.execute(
            update(accounts).where(accounts.c.account_id.in_(["acme-de", "acme-us"])).values(parent_account_id="acme")
        )

    group = await group_of(client, world, "admin")
    expected = round((480_000 * 72.5 + 240_000 * 90.0 + 80_000 * 10.0) / 800_000, 1)
    assert group["risk"] == expected
    assert group["level"] == "high"
    assert group["subsidiaries"] == 2
    driver = group["driving_subsidiary"]
    assert isinstance(driver, dict)
    assert driver["account_id"] == "acme-de"
    assert driver["arr_share"] == 0.3
    assert [m["account_id"] for m in group["members"]] == ["acme", "acme-de", "acme-us"]  # type: ignore[attr-defined]

    lea = await group_of(client, world, "lea")  # acme-us belongs to kam-zoe
    assert lea["risk"] == expected
    assert [m["account_id"] for m in lea["members"]] == ["acme", "acme-de"]  # type: ignore[attr-defined]


async def test_an_account_without_subsidiaries_has_no_group(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/v1/accounts/acme/health", headers=world.auth("admin"))
    assert response.json()["group"] is None
