"""POST /v1/slack/interactions, against the real local Slack stand-in: a signed click by the account's owner (or
a manager above them) acts, and the original message is updated in the actor's language and time zone; anyone
else is told why, ephemerally, and nothing changes; a bad, stale or replayed request changes nothing; the team
channel's Open gives the clicker a link of their own."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from fastapi import FastAPI

from alerts.messages import ACK_ACTION, FALSE_ALARM_ACTION, OPEN_ACTION, SNOOZE_ACTION, USEFUL_ACTION
from services.api.problems import install_problem_handlers
from services.api.slack_actions import slack_router
from services.flows.alerting import build_alerting
from services.flows.ingest import Pipeline
from services.platform.database import Database
from services.platform.settings import Settings
from tests.events import event, records
from tests.integration.conftest import SIGNING_SECRET
from tests.integration.scenario import LEA, MARC, START, Clock, go_critical, rows
from tests.integration.servers import SlackStandIn

ORIGINAL = {
    "text": "[kamwatch] Critique : Acme SA",
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "🔴 Acme SA"}},
        {"type": "actions", "block_id": "alert_{id}", "elements": []},
        {"type": "actions", "block_id": "alert_999", "elements": []},
    ],
}


@pytest.fixture
async def critical(db: Database, alert_settings: Settings) -> tuple[int, Clock]:
    """An open critical alert on Léa's account, and a clock shortly after it fired. Marc (her manager) and Zoé (a
    colleague, not above her) are on Slack too."""
    _, as_of = await go_critical(db, build_alerting(alert_settings, notify="none"))
    [(alert_id,)] = await rows(db, "SELECT id FROM alerts WHERE dedup_key = 'acme:risk_level'")
    later = START + timedelta(days=1)
    zoe = {"name": "Zoé Martin", "email": "zoe@example.com", "slack_user_id": "UZOE", "locale": "en", "timezone": "UTC"}
    await Pipeline(db).ingest(
        records(
            event("kam", "kam-marc", later, MARC | {"slack_user_id": "UMARC"}), event("kam", "kam-zoe", later, zoe)
        ),
        ingress="http",
    )
    return alert_id, Clock(as_of + timedelta(minutes=10))


@pytest.fixture
async def client(
    db: Database, alert_settings: Settings, critical: tuple[int, Clock]
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.db = db
    app.state.clock = critical[1]
    app.state.settings = alert_settings
    install_problem_handlers(app)
    app.include_router(slack_router(alert_settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


def click(
    action_id: str, value: int | str, user: str = "ULEA", *, response_url: str | None = None, url: str | None = None
) -> bytes:
    action: dict[str, Any] = {"action_id": action_id, "block_id": f"alert_{value}", "value": str(value)}
    if url is not None:
        action["url"] = url
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "actions": [action],
        "message": orjson.loads(orjson.dumps(ORIGINAL).decode().replace("{id}", str(value))),
    }
    if response_url is not None:
        payload["response_url"] = response_url
    return urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def signed(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def post(client: httpx.AsyncClient, clock: Clock, body: bytes) -> httpx.Response:
    return await client.post("/v1/slack/interactions", content=body, headers=signed(body, int(clock().timestamp())))


def replies(slack: SlackStandIn, path: str) -> list[dict[str, Any]]:
    return [r.body for r in slack.requests if r.path == path]


async def test_the_owner_acknowledges_and_the_original_message_says_so_in_her_words(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock], slack: SlackStandIn
) -> None:
    alert_id, clock = critical
    response = await post(client, clock, click(ACK_ACTION, alert_id, response_url=f"{slack.webhook_url}/r1"))
    assert response.status_code == 200, response.text
    assert await rows(db, "SELECT state, acknowledged_at FROM alerts WHERE id = :i", i=alert_id) == [
        ("acknowledged", clock())
    ]
    transitions = await rows(
        db,
        "SELECT from_state, to_state, actor, via, at FROM alert_transitions WHERE alert_id = :i AND via = 'slack'",
        i=alert_id,
    )
    assert transitions == [("firing", "acknowledged", "kam-lea", "slack", clock())]
    [reply] = replies(slack, "/webhook/r1")
    assert reply["replace_original"] is True
    blocks = reply["blocks"]
    # This alert's buttons gave way to who did what and when (Léa: French, Paris time); the others stay.
    done = next(b for b in blocks if b.get("block_id") == f"alert_{alert_id}_done")
    local = clock().astimezone(ZoneInfo("Europe/Paris"))
    assert done["elements"][0]["text"].startswith("✅ Prise en compte par Léa Dubois, ")
    assert f"{local:%H:%M}" in done["elements"][0]["text"]
    assert any(b.get("block_id") == "alert_999" for b in blocks)


async def test_snooze_acknowledges_for_seven_days(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    response = await post(client, clock, click(SNOOZE_ACTION, alert_id))
    assert response.status_code == 200, response.text
    assert await rows(db, "SELECT state, snoozed_until FROM alerts WHERE id = :i", i=alert_id) == [
        ("acknowledged", clock() + timedelta(days=7))
    ]


async def test_useful_and_false_alarm_are_feedback_from_slack(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    assert (await post(client, clock, click(USEFUL_ACTION, alert_id))).status_code == 200
    clock.advance(seconds=1)
    assert (await post(client, clock, click(FALSE_ALARM_ACTION, alert_id, user="UMARC"))).status_code == 200
    assert await rows(
        db, "SELECT verdict, actor, via FROM alert_feedback WHERE alert_id = :i ORDER BY id", i=alert_id
    ) == [
        ("useful", "kam-lea", "slack"),
        ("false_alarm", "kam-marc", "slack"),
    ]
    assert await rows(db, "SELECT state FROM alerts WHERE id = :i", i=alert_id) == [("firing",)]


async def test_a_manager_above_the_owner_may_act(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    assert (await post(client, clock, click(ACK_ACTION, alert_id, user="UMARC"))).status_code == 200
    assert await rows(db, "SELECT state FROM alerts WHERE id = :i", i=alert_id) == [("acknowledged",)]


@pytest.mark.parametrize(
    ("user", "explanation"),
    [
        ("UZOE", "Only the account's owner, their managers or an admin can act on this alert: nothing changed."),
        ("USTRANGER", "Your Slack account is not linked to a kamwatch KAM: nothing changed."),
    ],
)
async def test_anyone_else_is_told_why_and_nothing_changes(
    client: httpx.AsyncClient,
    db: Database,
    critical: tuple[int, Clock],
    slack: SlackStandIn,
    user: str,
    explanation: str,
) -> None:
    alert_id, clock = critical
    for action in (ACK_ACTION, SNOOZE_ACTION, USEFUL_ACTION):
        response = await post(client, clock, click(action, alert_id, user=user, response_url=f"{slack.webhook_url}/z"))
        assert response.status_code == 200
        clock.advance(seconds=1)
    assert await rows(db, "SELECT state, acknowledged_at FROM alerts WHERE id = :i", i=alert_id) == [("firing", None)]
    assert await rows(db, "SELECT count(*) FROM alert_transitions WHERE via = 'slack'") == [(0,)]
    assert await rows(db, "SELECT count(*) FROM alert_feedback") == [(0,)]
    sent = replies(slack, "/webhook/z")
    assert len(sent) == 3
    assert all(r["response_type"] == "ephemeral" and r["replace_original"] is False for r in sent)
    assert all(r["text"] == explanation for r in sent)


async def test_a_replayed_request_changes_nothing(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    body = click(USEFUL_ACTION, alert_id)
    headers = signed(body, int(clock().timestamp()))
    for _ in range(3):  # the same signed request, within its five minutes
        response = await client.post("/v1/slack/interactions", content=body, headers=headers)
        assert response.status_code == 200
        clock.advance(seconds=30)
    assert await rows(db, "SELECT count(*) FROM alert_feedback WHERE alert_id = :i", i=alert_id) == [(1,)]


@pytest.mark.parametrize(
    ("secret", "age_s"),
    [
        ("not-the-secret", 0),  # signed with another key
        (SIGNING_SECRET, 6 * 60),  # a genuine request replayed six minutes later
    ],
)
async def test_a_bad_or_stale_signature_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock], secret: str, age_s: int
) -> None:
    alert_id, clock = critical
    body = click(ACK_ACTION, alert_id)
    headers = signed(body, int(clock().timestamp()) - age_s, secret)
    response = await client.post("/v1/slack/interactions", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert await rows(db, "SELECT state FROM alerts WHERE id = :i", i=alert_id) == [("firing",)]
    assert await rows(db, "SELECT count(*) FROM alert_transitions WHERE via = 'slack'") == [(0,)]


async def test_a_tampered_body_is_refused(client: httpx.AsyncClient, critical: tuple[int, Clock]) -> None:
    alert_id, clock = critical
    headers = signed(click(ACK_ACTION, alert_id), int(clock().timestamp()))
    response = await client.post("/v1/slack/interactions", content=click(SNOOZE_ACTION, alert_id), headers=headers)
    assert response.status_code == 401


async def test_the_team_channels_open_gives_each_clicker_a_link_of_their_own(
    client: httpx.AsyncClient, critical: tuple[int, Clock], slack: SlackStandIn
) -> None:
    _, clock = critical
    assert (
        await post(client, clock, click(OPEN_ACTION, "acme", user="UMARC", response_url=f"{slack.webhook_url}/m"))
    ).status_code == 200
    clock.advance(seconds=1)
    assert (
        await post(client, clock, click(OPEN_ACTION, "acme", user="UZOE", response_url=f"{slack.webhook_url}/z"))
    ).status_code == 200
    [marc] = replies(slack, "/webhook/m")
    assert marc["response_type"] == "ephemeral"
    [button] = [e for b in marc["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["url"].startswith("https://kamwatch.example.com/widget/accounts/acme?token=")
    assert "Your own link to Acme SA" in marc["text"]
    [zoe] = replies(slack, "/webhook/z")
    assert "http" not in orjson.dumps(zoe).decode()
    assert zoe["text"] == "This account is not one of yours: kamwatch cannot give you a link to it."
    # A link button (Slack opens the URL itself) only needs an answer.
    link = click(OPEN_ACTION, "acme", url="https://kamwatch.example.com/widget/accounts/acme?token=x")
    clock.advance(seconds=1)
    assert (await post(client, clock, link)).status_code == 200
    assert LEA["slack_user_id"] == "ULEA"
