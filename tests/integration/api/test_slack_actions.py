"""POST /v1/slack/interactions: a signed button click acts as the KAM behind the Slack user; a bad or stale
signature is refused with 401 and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import orjson
import pytest
from fastapi import FastAPI

from alerts.messages import ACK_ACTION, SNOOZE_ACTION
from services.api.problems import install_problem_handlers
from services.api.slack_actions import slack_router
from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.settings import Settings
from tests.integration.conftest import SIGNING_SECRET
from tests.integration.scenario import Clock, go_critical, rows


@pytest.fixture
async def critical(db: Database, alert_settings: Settings) -> tuple[int, Clock]:
    """An open critical alert, and a clock shortly after it fired."""
    _, as_of = await go_critical(db, build_alerting(alert_settings, notify="none"))
    [(alert_id,)] = await rows(db, "SELECT id FROM alerts WHERE dedup_key = 'acme:risk_level'")
    return alert_id, Clock(as_of + timedelta(minutes=10))


@pytest.fixture
async def client(
    db: Database, alert_settings: Settings, critical: tuple[int, Clock]
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.db = db
    app.state.clock = critical[1]
    install_problem_handlers(app)
    app.include_router(slack_router(alert_settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http


def click(action_id: str, alert_id: int, user: str = "ULEA") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "lea"},
        "actions": [{"action_id": action_id, "block_id": f"alert_{alert_id}", "value": str(alert_id)}],
    }
    return urlencode({"payload": orjson.dumps(payload).decode()}).encode()


def signed(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_a_signed_click_acknowledges_the_alert_as_the_kam(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    body = click(ACK_ACTION, alert_id)
    response = await client.post("/v1/slack/interactions", content=body, headers=signed(body, int(clock().timestamp())))
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


async def test_snooze_acknowledges_for_seven_days(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    body = click(SNOOZE_ACTION, alert_id)
    response = await client.post("/v1/slack/interactions", content=body, headers=signed(body, int(clock().timestamp())))
    assert response.status_code == 200, response.text
    assert await rows(db, "SELECT state, snoozed_until FROM alerts WHERE id = :i", i=alert_id) == [
        ("acknowledged", clock() + timedelta(days=7))
    ]


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


async def test_a_slack_user_who_is_no_kam_is_forbidden(
    client: httpx.AsyncClient, db: Database, critical: tuple[int, Clock]
) -> None:
    alert_id, clock = critical
    body = click(ACK_ACTION, alert_id, user="USTRANGER")
    response = await client.post("/v1/slack/interactions", content=body, headers=signed(body, int(clock().timestamp())))
    assert response.status_code == 403
    assert await rows(db, "SELECT state FROM alerts WHERE id = :i", i=alert_id) == [("firing",)]
