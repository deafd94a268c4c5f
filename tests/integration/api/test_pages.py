"""The portfolio pages: login cookie, visible accounts only, account page with history chart and timeline."""

from __future__ import annotations

import httpx
import orjson
from sqlalchemy import text

from services.platform.database import Database
from tests.integration.api.conftest import World
from tests.integration.api.seed import NOW, driver


async def _login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/login", data={"key": key})


async def test_login_sets_an_httponly_cookie(client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/")).status_code == 303  # not logged in: to the login page
    assert (await client.get("/login")).status_code == 200
    refused = await _login(client, "kw_nope")
    ingest_only = await _login(client, world.keys["ingest"])
    response = await _login(client, world.keys["marc"])

    assert refused.status_code == ingest_only.status_code == 401
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "frame-ancestors 'none'" in refused.headers["content-security-policy"]


async def test_portfolio_page_shows_the_visible_accounts_by_risk(client: httpx.AsyncClient, world: World) -> None:
    await _login(client, world.keys["marc"])
    page = await client.get("/?locale=fr")

    assert page.status_code == 200
    html = page.text
    assert html.index("Globex") < html.index("Acme") < html.index("Umbrella")
    assert "Initech" not in html
    assert "ARR à risque" in html
    assert 'href="/accounts/acme?locale=fr"' in html  # links keep the reader's language
    filtered = (await client.get("/?level=critical")).text
    assert "Globex" in filtered
    assert "Acme" not in filtered


async def test_a_lost_account_shows_lost_on_its_day_not_its_last_score(client: httpx.AsyncClient, world: World) -> None:
    await _login(client, world.keys["admin"])
    html = (await client.get("/?locale=fr&owner=kam-zoe")).text

    row = html[html.index("Initech") :].split("</tr>")[0]
    assert "Perdu le " in row
    assert "level-low" not in row
    assert "Faible" not in row


async def test_the_drivers_read_as_the_messages_say_them_at_the_readers_now(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    escalations = driver("support.escalations", 20.0) | {"evidence": {"escalations": 2, "reopenings": 0}}
    departure = driver("relationship.sponsor_left", 30.0, component="relationship") | {
        "evidence": {"name": "Jack Morgan", "days_ago": 0, "successor": "pending", "departures": 1},
        "since": NOW.isoformat(),
    }
    async with db.unit_of_work() as conn:
        await conn.execute(
            text("UPDATE account_health SET drivers = CAST(:drivers AS jsonb) WHERE account_id = 'acme'"),
            {"drivers": orjson.dumps([escalations, departure]).decode()},
        )
    await _login(client, world.keys["lea"])
    html = (await client.get("/accounts/acme?locale=fr")).text
    drivers = html[html.index('id="drivers"') :].split("</ul>")[0]

    assert "Jack Morgan" in drivers
    assert "2 escalades sur les tickets" in drivers
    assert "0 jour" not in drivers
    assert "0 réouverture" not in drivers
    assert "FR relationship" not in drivers  # the engine's own words give way to the messages' wording


async def test_account_page(client: httpx.AsyncClient, world: World) -> None:
    await _login(client, world.keys["lea"])
    page = await client.get("/accounts/acme")
    hidden = await client.get("/accounts/initech")
    await client.post("/logout")
    logged_out = await client.get("/accounts/acme")

    assert page.status_code == 200
    assert 'id="history-chart"' in page.text
    assert "Ticket T-9 opened (urgent)" in page.text
    assert hidden.status_code == 404
    assert logged_out.status_code == 303


async def test_sign_in_goes_on_to_the_page_asked_for_on_this_site_only(client: httpx.AsyncClient, world: World) -> None:
    asked = await client.post("/login?next=/accounts/acme%3Flocale%3Dfr", data={"key": world.keys["lea"]})
    elsewhere = await client.post("/login?next=//evil.example/x", data={"key": world.keys["lea"]})

    assert asked.headers["location"] == "/accounts/acme?locale=fr"
    assert elsewhere.headers["location"] == "/"
