"""Widget tokens (mint, refuse expired / tampered / other-account) and the embeddable widget page."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from health_engine.access import InvalidToken, mint, verify
from schemas.tables import alert_feedback, alert_transitions, alerts
from services.api.app import build_app
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.api.conftest import World, make_app
from tests.integration.api.seed import NOW

SECRET = b"s" * 32


def test_token_round_trip_and_refusals() -> None:
    token = mint(SECRET, "acme", "kam-lea", NOW + timedelta(hours=1), key_id=7, owner_kam_id="kam-lea")
    grant = verify(SECRET, token, account_id="acme", now=NOW)
    assert (grant.account_id, grant.kam_id, grant.expires_at) == ("acme", "kam-lea", NOW + timedelta(hours=1))
    assert (grant.key_id, grant.owner_kam_id) == (7, "kam-lea")

    payload, signature = token.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    cases = {
        "expired": (token, "acme", NOW + timedelta(hours=1)),
        "wrong account": (token, "globex", NOW),
        "tampered payload": (f"{flipped}.{signature}", "acme", NOW),
        "tampered signature": (f"{payload}.{signature[:-2]}xx", "acme", NOW),
        "other secret": (
            mint(b"t" * 32, "acme", None, NOW + timedelta(hours=1), key_id=None, owner_kam_id="kam-lea"),
            "acme",
            NOW,
        ),
        "garbage": ("not-a-token", "acme", NOW),
        "empty": ("", "acme", NOW),
    }
    for name, (candidate, account_id, now) in cases.items():
        with pytest.raises(InvalidToken):
            verify(SECRET, candidate, account_id=account_id, now=now)
        assert name


async def _token(client: httpx.AsyncClient, world: World, account_id: str = "acme", ttl: int = 3600) -> str:
    response = await client.post(
        "/v1/widget-tokens", json={"account_id": account_id, "ttl_seconds": ttl}, headers=world.auth("lea")
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kam_id"] == "kam-lea"
    assert body["url"].endswith(f"/widget/accounts/{account_id}?token={body['token']}")
    token: str = body["token"]
    return token


async def test_widget_renders_the_account(client: httpx.AsyncClient, world: World) -> None:
    token = await _token(client, world)
    page = await client.get(f"/widget/accounts/acme?token={token}&locale=fr")

    assert page.status_code == 200
    assert "frame-ancestors https://crm.example.com" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert 'id="risk-score"' in html
    assert "72,5" in html
    assert "FR support.urgent_open" in html
    assert 'id="sparkline"' in html
    assert "Acquitter" in html  # the word of the Slack button
    assert f'data-alert="{world.alerts["acme"]}"' in html


async def test_widget_refuses_bad_tokens(client: httpx.AsyncClient, world: World, app: FastAPI) -> None:
    token = await _token(client, world)
    other = await _token(client, world, "globex")
    payload, signature = token.split(".")
    expired = mint(
        app.state.widget_secret, "acme", "kam-lea", NOW - timedelta(seconds=1), key_id=None, owner_kam_id="kam-lea"
    )
    for bad in (other, f"{payload}.{signature[::-1]}", expired, "x.y"):
        page = await client.get(f"/widget/accounts/acme?token={bad}")
        assert page.status_code == 403, bad
        assert "frame-ancestors" in page.headers["content-security-policy"]
        assert "72.5" not in page.text
    action = await client.post(f"/widget/accounts/acme/alerts/{world.alerts['acme']}/ack", data={"token": other})
    assert action.status_code == 403
    # no token at all (a notification's "Open" link): a person, sent to sign in, then to the account page
    untokened = await client.get("/widget/accounts/acme?locale=fr")
    assert untokened.status_code == 303
    assert untokened.headers["location"] == "/login?locale=fr&next=%2Faccounts%2Facme%3Flocale%3Dfr"
    assert "72.5" not in untokened.text
    await client.post("/login", data={"key": world.keys["lea"]})
    signed_in = await client.get("/widget/accounts/acme?locale=fr")
    assert signed_in.headers["location"] == "/accounts/acme?locale=fr"


async def test_widget_acknowledge_and_snooze_buttons(client: httpx.AsyncClient, world: World, db: Database) -> None:
    token = await _token(client, world)
    alert_id = world.alerts["acme"]
    ack = await client.post(f"/widget/accounts/acme/alerts/{alert_id}/ack", data={"token": token, "locale": "en"})
    snooze = await client.post(
        f"/widget/accounts/acme/alerts/{alert_id}/snooze", data={"token": token, "minutes": "1440"}
    )
    foreign = await client.post(f"/widget/accounts/acme/alerts/{world.alerts['globex']}/ack", data={"token": token})

    assert ack.status_code == 303
    assert ack.headers["location"].startswith("/widget/accounts/acme?token=")
    assert snooze.status_code == 303
    assert foreign.status_code == 404  # the token is for acme: globex's alert is out of reach
    async with db.unit_of_work() as conn:
        state = (
            await conn.execute(select(alerts.c.state, alerts.c.snoozed_until).where(alerts.c.id == alert_id))
        ).one()
        vias = (await conn.execute(select(alert_transitions.c.via, alert_transitions.c.actor))).all()
    assert state == ("acknowledged", NOW + timedelta(days=1))
    assert [tuple(v) for v in vias] == [("widget", "kam-lea"), ("widget", "kam-lea")]


async def test_generated_secret_is_shared_by_processes(settings: Settings, db: Database, world: World) -> None:
    """Two API processes on the same database agree on the generated secret; a configured one wins."""
    first, second = make_app(settings, db), make_app(settings, db)
    configured = build_app(
        settings.model_copy(update={"widget_token_secret": SecretStr("k" * 40)}), db, clock=lambda: NOW
    )
    tokens = []
    for application in (first, second, configured):
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                tokens.append(await _token(http, world))
                other = tokens[0]
                page = await http.get(f"/widget/accounts/acme?token={other}")
                assert page.status_code == (403 if application is configured else 200)
    assert tokens[0] == tokens[1]


async def test_read_own_key_cannot_mint_for_an_unrelated_kam(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(
        "/v1/widget-tokens", json={"account_id": "acme", "kam_id": "kam-zoe"}, headers=world.auth("lea")
    )
    assert response.status_code == 403
    assert response.json()["field"] == "kam_id"


async def _token_for(client: httpx.AsyncClient, world: World, account_id: str, kam_id: str) -> str:
    response = await client.post(
        "/v1/widget-tokens", json={"account_id": account_id, "kam_id": kam_id}, headers=world.auth("admin")
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_only_the_owner_their_managers_or_an_admin_act_from_the_widget(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    alert_id = world.alerts["acme"]  # Léa's account; Marc manages Léa; Zoé does not
    zoe = await _token_for(client, world, "acme", "kam-zoe")
    page = await client.get(f"/widget/accounts/acme?token={zoe}&locale=en")
    assert page.status_code == 200
    assert 'id="not-yours"' in page.text
    assert "button" not in page.text.split('id="alerts"')[1]
    for action, data in (("ack", {}), ("snooze", {"minutes": "60"}), ("feedback", {"verdict": "useful"})):
        refused = await client.post(f"/widget/accounts/acme/alerts/{alert_id}/{action}", data={"token": zoe, **data})
        assert refused.status_code == 403
        assert "Nothing changed." in refused.text
    async with db.unit_of_work() as conn:
        assert (await conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id))).scalar_one() == "firing"
        assert (await conn.execute(select(alert_feedback.c.id))).all() == []
        assert (await conn.execute(select(alert_transitions.c.id))).all() == []

    marc = await _token_for(client, world, "acme", "kam-marc")
    assert 'id="not-yours"' not in (await client.get(f"/widget/accounts/acme?token={marc}")).text
    done = await client.post(f"/widget/accounts/acme/alerts/{alert_id}/ack", data={"token": marc})
    assert done.status_code == 303
    assert (await client.get(done.headers["location"])).text.count('id="done"') == 1


async def test_feedback_from_the_widget_and_from_an_email_link_that_asks_first(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    alert_id = world.alerts["acme"]
    token = await _token(client, world)
    # The email's one-click link shows a question; following it records nothing (mail scanners follow links).
    question = await client.get(
        f"/widget/accounts/acme/alerts/{alert_id}/feedback?verdict=false_alarm&via=email&token={token}&locale=fr"
    )
    assert question.status_code == 200
    assert "Signaler cette alerte comme fausse alerte" in question.text
    async with db.unit_of_work() as conn:
        assert (await conn.execute(select(alert_feedback.c.id))).all() == []
    confirmed = await client.post(
        f"/widget/accounts/acme/alerts/{alert_id}/feedback",
        data={"token": token, "verdict": "false_alarm", "via": "email"},
    )
    assert confirmed.status_code == 303
    from_widget = await client.post(
        f"/widget/accounts/acme/alerts/{alert_id}/feedback", data={"token": token, "verdict": "useful"}
    )
    assert from_widget.status_code == 303
    async with db.unit_of_work() as conn:
        given = (
            await conn.execute(select(alert_feedback.c.verdict, alert_feedback.c.actor, alert_feedback.c.via))
        ).all()
    assert [tuple(g) for g in given] == [("false_alarm", "kam-lea", "email"), ("useful", "kam-lea", "widget")]
    # Each alert counts once, by its newest verdict, in the per-rule precision.
    precision = (await client.get("/v1/alerts/precision", headers=world.auth("admin"))).json()["rules"]
    rule = next(r for r in precision if r["judged"])
    assert (rule["judged"], rule["useful"], rule["precision"]) == (1, 1, 1.0)


async def test_a_lost_account_reads_as_lost_with_no_actions(client: httpx.AsyncClient, world: World) -> None:
    # Initech churned (an outcome newer than its profile).
    health = (await client.get("/v1/accounts/initech/health", headers=world.auth("admin"))).json()
    assert health["lifecycle"]["status"] == "lost"
    assert health["lifecycle"]["outcome"] == "churned"
    assert health["next_steps"] == []
    token = await _token_for(client, world, "initech", "kam-zoe")
    page = await client.get(f"/widget/accounts/initech?token={token}&locale=en")
    assert 'id="lost"' in page.text
    assert "Lost on" in page.text
    assert "<button" not in page.text
    acme = (await client.get("/v1/accounts/acme/health?locale=fr", headers=world.auth("admin"))).json()
    assert acme["lifecycle"]["status"] == "active"
    assert acme["lifecycle"]["outcome"] == "renewed"
