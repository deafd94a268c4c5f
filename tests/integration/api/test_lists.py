"""Lists and series: accounts (filters, sorts, cursor pages), history, timeline, portfolio, alerts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api.conftest import World, make_app
from tests.integration.api.seed import NOW


async def _walk(client: httpx.AsyncClient, world: World, path: str, who: str = "admin") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = path
    pages = 0
    while url:
        body = (await client.get(url, headers=world.auth(who))).json()
        items.extend(body["items"])
        pages += 1
        url = f"{path}&cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert pages >= 2 or len(items) <= 2
    return items


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # initech is lost: last with the unscored, its last score is history, not risk
        ("risk", ["globex", "acme", "umbrella", "hooli", "initech"]),
        ("arr_at_risk", ["acme", "globex", "hooli", "initech", "umbrella"]),  # ties broken by account id
        ("change", ["acme", "globex", "hooli", "initech", "umbrella"]),  # unknown change and lost last
    ],
)
async def test_account_sorts_and_cursor_pages(
    client: httpx.AsyncClient, world: World, sort: str, expected: list[str]
) -> None:
    whole = (await client.get(f"/v1/accounts?sort={sort}", headers=world.auth("admin"))).json()
    paged = await _walk(client, world, f"/v1/accounts?sort={sort}&limit=2")

    assert [a["account_id"] for a in whole["items"]] == expected
    assert whole["next_cursor"] is None
    assert [a["account_id"] for a in paged] == expected


async def test_account_filters(client: httpx.AsyncClient, world: World) -> None:
    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/accounts?{query}", headers=world.auth("admin"))
        assert response.status_code == 200, response.text
        return sorted(a["account_id"] for a in response.json()["items"])

    assert await ids("owner=kam-zoe") == ["hooli", "initech"]
    assert await ids("level=high&level=critical") == ["acme", "globex"]
    assert await ids("tier=strategic") == ["acme"]
    assert await ids("segment=mid") == ["initech"]
    assert await ids("renewal_from=2027-01-01&renewal_to=2027-02-01") == ["acme", "globex", "hooli", "initech"]
    assert await ids("renewal_to=2026-12-31") == []
    # read:own asking for another KAM's portfolio gets nothing, not an error
    response = await client.get("/v1/accounts?owner=kam-zoe", headers=world.auth("lea"))
    assert response.json()["items"] == []


async def test_account_summary_fields(client: httpx.AsyncClient, world: World) -> None:
    items = (await client.get("/v1/accounts?owner=kam-lea", headers=world.auth("admin"))).json()["items"]
    assert items == [
        {
            "account_id": "acme",
            "name": "Acme",
            "owner_kam_id": "kam-lea",
            "owner_name": "Lea",
            "tier": "strategic",
            "segment": "enterprise",
            "arr": "480000.0000",
            "currency": "EUR",
            "renewal_date": "2027-01-31",
            "risk": 72.5,
            "level": "high",
            "arr_at_risk": "480000.0000",
            "change_7d": 31.5,
            "as_of": "2026-11-20T12:00:00Z",
            "lifecycle": {"status": "active", "outcome": "renewed", "at": "2026-10-21T12:00:00Z", "reason": None},
        }
    ]


async def test_a_lost_account_is_listed_as_lost_with_nothing_at_risk(client: httpx.AsyncClient, world: World) -> None:
    items = (await client.get("/v1/accounts?owner=kam-zoe", headers=world.auth("admin"))).json()["items"]
    initech = next(a for a in items if a["account_id"] == "initech")
    at_risk = (
        await client.get("/v1/accounts?level=low&level=medium&level=high&level=critical", headers=world.auth("admin"))
    ).json()

    assert initech["lifecycle"]["status"] == "lost"
    assert initech["lifecycle"]["outcome"] == "churned"
    assert initech["arr_at_risk"] == "0.0000"
    assert "initech" not in [a["account_id"] for a in at_risk["items"]]  # a level filter means a live level


async def test_bad_cursor_and_bad_filter_are_422(client: httpx.AsyncClient, world: World) -> None:
    bad_cursor = await client.get("/v1/accounts?cursor=garbage!", headers=world.auth("admin"))
    bad_level = await client.get("/v1/accounts?level=dreadful", headers=world.auth("admin"))
    bad_limit = await client.get("/v1/accounts?limit=0", headers=world.auth("admin"))

    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["field"] == "cursor"
    assert bad_level.json()["field"] == "query.level.0"
    assert bad_limit.json()["field"] == "query.limit"


async def test_history_is_daily_and_bounded(client: httpx.AsyncClient, world: World) -> None:
    default = (await client.get("/v1/accounts/acme/history", headers=world.auth("lea"))).json()
    window = (
        await client.get("/v1/accounts/acme/history?from=2026-10-01&to=2026-11-14", headers=world.auth("lea"))
    ).json()

    assert [p["risk"] for p in default["points"]] == [28.0, 30.0, 35.5, 41.0, 72.5]
    assert default["points"][-1]["components"] == {"usage": 72.5, "support": 36.25}
    assert [p["risk"] for p in window["points"]] == [35.5, 41.0]


async def test_timeline_newest_first_with_pages(client: httpx.AsyncClient, world: World) -> None:
    client_headers = world.auth("lea")
    first = (await client.get("/v1/accounts/acme/timeline?limit=3", headers=client_headers)).json()
    rest = (
        await client.get(f"/v1/accounts/acme/timeline?limit=50&cursor={first['next_cursor']}", headers=client_headers)
    ).json()
    items = first["items"] + rest["items"]

    moments = [i["at"] for i in items]
    assert moments == sorted(moments, reverse=True)
    assert len({i["id"] for i in items}) == len(items)
    kinds = {i["kind"] for i in items}
    assert kinds == {"event", "alert", "level_change"}
    ticket = next(i for i in items if i["type"] == "kamwatch.support_ticket.v1")
    assert ticket["summary"] == "ticket T-9 opened (urgent)"
    assert ticket["data"]["priority"] == "urgent"
    assert rest["next_cursor"] is None


async def test_portfolio_summary(client: httpx.AsyncClient, world: World) -> None:
    body = (await client.get("/v1/portfolio/summary", headers=world.auth("admin"))).json()

    assert body["accounts"] == 5
    assert body["by_level"]["high"] == {"accounts": 1, "arr": {"EUR": "480000.0000"}}
    assert body["by_level"]["unscored"]["accounts"] == 1
    assert body["arr"] == {"EUR": "1070000.0000", "USD": "50000.0000"}
    assert body["arr_at_risk"] == {"EUR": "680000.0000"}
    zoe = next(k for k in body["by_kam"] if k["key"] == "kam-zoe")
    # Initech churned after its last profile: lost, its ARR counted lost, not at risk nor low.
    assert (zoe["accounts"], zoe["by_level"]["low"], zoe["by_level"]["lost"], zoe["arr_at_risk"]) == (2, 0, 1, {})
    assert body["by_level"]["lost"] == {"accounts": 1, "arr": {"EUR": "90000.0000"}}
    assert body["arr_lost"] == {"EUR": "90000.0000"}
    assert {t["key"] for t in body["by_tier"]} == {"strategic", "key", "standard"}
    retention = body["retention"]
    assert retention["outcomes"] == {"renewed": 1, "churned": 1}
    assert retention["arr_before"] == {"EUR": "500000.0000"}
    assert retention["net_revenue_retention"] == {"EUR": 0.96}  # (480k + 0) / (400k + 100k)

    # Without exchange rates the dollars stay apart from the euros, never added.
    assert body["reporting"]["arr"] == {
        "currency": "EUR",
        "amount": "1070000.0000",
        "unconverted": {"USD": "50000.0000"},
    }
    assert body["reporting"]["lost_arr"] == {"currency": "EUR", "amount": "100000.0000", "unconverted": {}}
    assert body["reporting"]["net_revenue_retention"] == 0.96

    own = (await client.get("/v1/portfolio/summary", headers=world.auth("lea"))).json()
    assert own["retention"]["net_revenue_retention"] == {"EUR": 1.2}
    empty = (await client.get("/v1/portfolio/summary?from=2020-01-01&to=2020-02-01", headers=world.auth("lea"))).json()
    assert empty["retention"]["outcomes"] == {}


async def test_alert_list_filters_and_pages(client: httpx.AsyncClient, world: World) -> None:
    async def ids(query: str, who: str = "admin") -> list[int]:
        response = await client.get(f"/v1/alerts?{query}", headers=world.auth(who))
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    a = world.alerts
    assert await ids("") == [a["initech"], a["globex"], a["acme"]]
    assert await ids("state=resolved") == [a["acme_old"]]
    assert await ids("severity=critical") == [a["globex"]]
    assert await ids("account_id=acme&state=firing&state=resolved") == [a["acme_old"], a["acme"]]
    assert await ids("owner=kam-paul") == [a["globex"]]
    assert await ids("rule=payment_late&state=resolved") == [a["acme_old"]]
    assert await ids("", who="lea") == [a["globex"], a["acme"]]
    first = (await client.get("/v1/alerts?limit=2", headers=world.auth("admin"))).json()
    second = (await client.get(f"/v1/alerts?limit=2&cursor={first['next_cursor']}", headers=world.auth("admin"))).json()
    assert [x["id"] for x in first["items"] + second["items"]] == [a["initech"], a["globex"], a["acme"]]
    assert second["next_cursor"] is None


async def test_timeline_shows_an_event_whose_numbers_no_float_holds(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    payload = (
        '{"id": "big-1", "type": "kamwatch.usage.v1", '
        '"data": {"quantity": 1, "huge": 1e400, "wide": 123456789012345678901234567890}}'
    )
    async with db.unit_of_work() as conn:
        await conn.execute(
            text(
                "INSERT INTO raw_events (event_time, source, event_id, type, subject, received_at, payload) "
                "VALUES (:at, 'tests', 'big-1', 'kamwatch.usage.v1', 'acme', :at, CAST(:payload AS json))"
            ),
            {"at": NOW - timedelta(days=1), "payload": payload},
        )
    response = await client.get("/v1/accounts/acme/timeline?limit=50", headers=world.auth("lea"))
    assert response.status_code == 200, response.text
    item = next(i for i in response.json()["items"] if i["id"] == "e:tests:big-1")
    # Exact, as PostgreSQL keeps them (a 64-bit or float decoder would round, overflow or refuse them).
    assert item["data"]["huge"] == 10**400
    assert item["data"]["wide"] == 123456789012345678901234567890


async def test_portfolio_in_the_reporting_currency_with_the_operators_rates(
    settings: Settings, db: Database, world: World, tmp_path: Path
) -> None:
    rates = tmp_path / "rates.yaml"
    rates.write_text("as_of: '2026-11-19'\nrates: {EUR: 1.1}\n")
    app = make_app(settings.model_copy(update={"reporting_currency": "USD", "exchange_rates_file": rates}), db)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        body = (await http.get("/v1/portfolio/summary", headers=world.auth("admin"))).json()
        metrics = ""
        for _ in range(200):  # the gauges are sampled in the background from start: wait for the first reading
            metrics = (await http.get("/metrics")).text
            if 'kamwatch_arr_at_risk{currency="USD",tier="strategic"}' in metrics:
                break
            await asyncio.sleep(0.05)

    assert (body["reporting_currency"], body["rates_as_of"]) == ("USD", "2026-11-19")
    # 1,070,000 EUR at 1.1 plus 50,000 USD
    assert body["reporting"]["arr"] == {"currency": "USD", "amount": "1227000.00000", "unconverted": {}}
    assert body["arr"] == {"EUR": "1070000.0000", "USD": "50000.0000"}  # the original currencies beside
    zoe = next(k for k in body["by_kam"] if k["key"] == "kam-zoe")
    assert zoe["name"] == "Zoe"
    assert zoe["reporting"]["lost_arr"] == {"currency": "USD", "amount": "110000.00000", "unconverted": {}}
    assert 'kamwatch_arr_at_risk{currency="USD",tier="strategic"} 528000.0' in metrics
    assert 'currency="EUR"' not in metrics.split("kamwatch_arr_at_risk ")[-1]
