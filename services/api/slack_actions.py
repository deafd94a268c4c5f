"""``POST /v1/slack/interactions``: the buttons of kamwatch's Slack messages (Acknowledge, Snooze 7 days,
Useful, False alarm, Open), done by the book.

- The request must carry Slack's signature of its exact body and a fresh timestamp (``SignatureVerifier``), else
  401 and nothing changes; a request seen before (a replay within the signature's five minutes) changes nothing.
- The Slack user is mapped to a KAM (``kams.slack_user_id``); only the account's owner, a manager above them or
  a KAM holding an admin key may act. Anyone else gets an ephemeral explanation and nothing changes, so a
  colleague's click in the team channel cannot cancel an escalation.
- Slack ignores the body of this answer: replies go to the payload's ``response_url``, in the actor's language
  and time zone. After an action the original message is updated (its buttons for that alert replaced by who did
  what, when); refusals and the team channel's Open (a link of the clicker's own) are ephemeral.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request, Response
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from alerts.messages import (
    ACK_ACTION,
    FALSE_ALARM_ACTION,
    OPEN_ACTION,
    SNOOZE_ACTION,
    USEFUL_ACTION,
    VERDICT_OF_ACTION,
    slack_escape,
)
from alerts.model import Kam
from alerts.phrasing import Reader, moment
from alerts.repository import changes as alert_rows
from alerts.repository import lifecycle, reports
from health_engine.access import kam_may_act, visible_kams
from schemas.vocabulary import Locale
from services.api.problems import problem_response
from services.api.v1 import widget_secret
from services.flows.links import SignedLinks
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings

log = logging.getLogger(__name__)

SNOOZE = timedelta(days=7)
SEEN_FOR = timedelta(minutes=10)
"""How long a signed request is remembered (Slack's signatures are accepted for five minutes)."""
ALERT_ACTIONS = (ACK_ACTION, SNOOZE_ACTION, USEFUL_ACTION, FALSE_ALARM_ACTION)


class _RequestClock(Clock):
    """The app's clock, so tests can sign requests at a time of their choosing."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


def _clock_of(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utc_now)
    return clock


@dataclass(frozen=True, slots=True)
class Reply:
    """What to post to the ``response_url``: an ephemeral note to the clicker, or the updated original message."""

    body: dict[str, Any]


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:3000], "emoji": True}


def ephemeral(text: str, *blocks: dict[str, Any]) -> Reply:
    body: dict[str, Any] = {"response_type": "ephemeral", "replace_original": False, "text": slack_escape(text)}
    body["blocks"] = [{"type": "section", "text": _plain(text)}, *blocks]
    return Reply(body)


def updated_original(message: dict[str, Any] | None, alert_id: int, status: str) -> Reply:
    """The original message with the buttons of ``alert_id`` replaced by ``status`` (who did what, when); the
    other alerts of a digest keep theirs. Without the original (Slack omits it for ephemeral messages), the
    status alone, to the clicker."""
    blocks = (message or {}).get("blocks")
    if not isinstance(blocks, list):
        return ephemeral(status)
    marker = f"alert_{alert_id}"
    replaced = [
        {"type": "context", "block_id": f"{marker}_done", "elements": [_plain(status)]}
        if isinstance(b, dict) and b.get("block_id") == marker
        else b
        for b in blocks
    ]
    text = str((message or {}).get("text") or slack_escape(status))
    return Reply({"replace_original": True, "text": text, "mrkdwn": False, "blocks": replaced})


async def _post(response_url: str | None, reply: Reply) -> None:
    if not response_url:
        return
    try:
        client = WebhookClient(response_url, timeout=10)
        response = await asyncio.to_thread(client.send_dict, reply.body)
        if response.status_code != 200:
            log.warning("Slack response_url answered %s", response.status_code)
    except Exception:  # the action is done; a lost reply is logged, not retried
        log.exception("could not post the reply to Slack's response_url")


def slack_router(settings: Settings) -> APIRouter:
    """The router to include in the API app (it uses ``app.state.db`` and ``app.state.clock``)."""
    router = APIRouter(tags=["slack"])
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    link_ttl = timedelta(days=settings.notification_link_ttl_days)

    @router.post(
        "/v1/slack/interactions",
        response_class=Response,  # an empty 200: Slack wants it within 3 s, the reply goes to its response_url
        summary="Slack interactivity (Acknowledge / Snooze 7 days / Useful / False alarm / Open buttons)",
        include_in_schema=True,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "properties": {"payload": {"type": "string"}}},
                        "example": {
                            "payload": '{"type":"block_actions","user":{"id":"U024BE7LH"},'
                            '"actions":[{"action_id":"alert_ack","value":"42"}]}'
                        },
                    }
                },
            }
        },
        responses={
            200: {"description": "Received; the reply goes to the payload's response_url"},
            400: {"description": "Not a Slack block_actions payload (problem+json)"},
            401: {"description": "Bad or stale Slack signature (problem+json)"},
            503: {"description": "KAMWATCH_SLACK_SIGNING_SECRET is not set (problem+json)"},
        },
    )
    async def interactions(request: Request) -> Response:
        """Slack's block_actions for the Acknowledge and Snooze 7 days buttons of kamwatch's messages: verified by
        Slack's signature and timestamp, the Slack user mapped to a KAM who then acts on the alert."""
        path = request.url.path
        if secret is None:
            return problem_response(503, "Service Unavailable", "Slack interactions are not configured", instance=path)
        clock = _clock_of(request)
        body = await request.body()
        verifier = SignatureVerifier(secret, clock=_RequestClock(clock))
        if not verifier.is_valid_request(body, dict(request.headers)):
            return problem_response(401, "Unauthorized", "bad or stale Slack signature", instance=path)
        try:
            payload: dict[str, Any] = orjson.loads(parse_qs(body.decode())["payload"][0])
            user_id = str(payload["user"]["id"])
            action = payload["actions"][0]
            action_id = str(action["action_id"])
        except (KeyError, IndexError, TypeError, ValueError, orjson.JSONDecodeError):
            return problem_response(400, "Bad Request", "not a Slack block_actions payload", instance=path)
        response_url = payload.get("response_url")
        if action_id == OPEN_ACTION and "url" in action:
            return Response(status_code=200)  # a link button: Slack opened the link itself
        if action_id not in (*ALERT_ACTIONS, OPEN_ACTION):
            return problem_response(400, "Bad Request", f"unknown action {action_id}", instance=path)

        db: Database = request.app.state.db
        now = clock()
        async with db.transaction() as conn:
            if not await _first_time(conn, request.headers.get("x-slack-signature", ""), now):
                log.warning("Slack request replayed; ignored")
                return Response(status_code=200)
            kam_id = await reports.kam_by_slack_user(conn, user_id)
            kam = (await alert_rows.load_kams(conn, [kam_id])).get(kam_id) if kam_id else None
        if kam is None:
            words = Reader(_locale_of(payload), "UTC", now)
            await _post(
                response_url,
                ephemeral(words.gettext("Your Slack account is not linked to a kamwatch KAM: nothing changed.")),
            )
            return Response(status_code=200)
        words = Reader(kam.locale, kam.timezone, now)
        if action_id == OPEN_ACTION:
            reply = await _open(request, db, kam, str(action.get("value") or ""), words, link_ttl)
        else:
            reply = await _act(db, kam, action_id, action.get("value"), payload.get("message"), words)
        await _post(response_url, reply)
        return Response(status_code=200)

    return router


def _locale_of(payload: dict[str, Any]) -> Locale:
    return "fr" if str(payload.get("user", {}).get("locale", "")).startswith("fr") else "en"


async def _first_time(conn: Any, signature: str, now: datetime) -> bool:
    """Remember a signed request; False when it was seen before (a replay)."""
    await conn.execute("DELETE FROM slack_interactions WHERE at < $1", now - SEEN_FOR)
    inserted = await conn.fetchval(
        "INSERT INTO slack_interactions (signature, at) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        signature,
        now,
    )
    return inserted is not None


async def _act(
    db: Database, kam: Kam, action_id: str, value: Any, message: dict[str, Any] | None, words: Reader
) -> Reply:
    try:
        alert_id = int(value)
    except (TypeError, ValueError):
        return ephemeral(words.gettext("This button names no alert: nothing changed."))
    async with db.transaction() as conn:
        try:
            alert = await lifecycle.get_alert(conn, alert_id)
        except lifecycle.AlertNotFound:
            return ephemeral(words.gettext("This alert no longer exists: nothing changed."))
        owner = await conn.fetchval("SELECT owner_kam_id FROM accounts WHERE account_id = $1", alert["account_id"])
    async with db.unit_of_work() as sa_conn:
        allowed = await kam_may_act(sa_conn, kam.kam_id, owner, now=words.now)
    if not allowed:
        log.info("Slack user of %s may not act on alert %d (owner %s)", kam.kam_id, alert_id, owner)
        return ephemeral(
            words.gettext(
                "Only the account's owner, their managers or an admin can act on this alert: nothing changed."
            )
        )
    async with db.transaction() as conn:
        try:
            if action_id in VERDICT_OF_ACTION:
                verdict = VERDICT_OF_ACTION[action_id]
                await lifecycle.record_feedback(conn, alert_id, verdict, actor=kam.kam_id, at=words.now, via="slack")
            else:
                until = words.now + SNOOZE if action_id == SNOOZE_ACTION else None
                await lifecycle.transition(
                    conn, alert_id, "acknowledged", actor=kam.kam_id, via="slack", at=words.now, snoozed_until=until
                )
        except lifecycle.InvalidTransition:
            return ephemeral(words.gettext("This alert is already resolved: nothing changed."))
    log.info("alert %d: %s by %s from Slack", alert_id, action_id, kam.kam_id)
    when = moment(words.now, words)
    status = {
        ACK_ACTION: words.gettext("✅ Acknowledged by {name}, {when}", name=kam.name, when=when),
        SNOOZE_ACTION: words.gettext(
            "💤 Snoozed by {name} until {until}", name=kam.name, until=moment(words.now + SNOOZE, words)
        ),
        USEFUL_ACTION: words.gettext("👍 Marked useful by {name}, {when}", name=kam.name, when=when),
        FALSE_ALARM_ACTION: words.gettext("👎 Marked a false alarm by {name}, {when}", name=kam.name, when=when),
    }[action_id]
    return updated_original(message, alert_id, status)


async def _open(request: Request, db: Database, kam: Kam, account_id: str, words: Reader, ttl: timedelta) -> Reply:
    """The team channel's Open: a link of the clicker's own, if the account is theirs to see."""
    async with db.transaction() as conn:
        row = await conn.fetchrow("SELECT name, owner_kam_id FROM accounts WHERE account_id = $1", account_id)
    if row is None:
        return ephemeral(words.gettext("This account no longer exists."))
    async with db.unit_of_work() as sa_conn:
        sees = row["owner_kam_id"] in await visible_kams(sa_conn, kam.kam_id)
        allowed = sees or await kam_may_act(sa_conn, kam.kam_id, row["owner_kam_id"], now=words.now)
    if not allowed:
        return ephemeral(words.gettext("This account is not one of yours: kamwatch cannot give you a link to it."))
    expires = (words.now + ttl).replace(microsecond=0)
    links = SignedLinks(
        request.app.state.settings.public_url,
        await widget_secret(request),
        kam.kam_id,
        expires,
        {account_id: row["owner_kam_id"]},
    )
    url = links.account(account_id)
    text = words.gettext(
        "Your own link to {account}, valid until {when}.", account=row["name"], when=moment(expires, words)
    )
    button = {"type": "button", "text": _plain(words.gettext("Open")), "action_id": OPEN_ACTION, "url": url}
    return ephemeral(text, {"type": "actions", "elements": [button]})
