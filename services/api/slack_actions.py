"""``POST /v1/slack/interactions``: the Acknowledge and Snooze buttons of kamwatch's Slack messages.

The request must carry Slack's signature of its exact body and a fresh timestamp (``SignatureVerifier``),
else 401 and nothing changes. The Slack user is mapped to a KAM (``kams.slack_user_id``), who then acts on the
alert through ``alerts.store`` like any other channel, recorded with ``via="slack"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import Clock, SignatureVerifier

from alerts.messages import ACK_ACTION, OPEN_ACTION, SNOOZE_ACTION
from alerts.repository import lifecycle, reports
from services.api.problems import problem_response
from services.platform.clock import utc_now
from services.platform.database import Database
from services.platform.settings import Settings

log = logging.getLogger(__name__)

SNOOZE = timedelta(days=7)


class _RequestClock(Clock):
    """The app's clock, so tests can sign requests at a time of their choosing."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


def _clock_of(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utc_now)
    return clock


def slack_router(settings: Settings) -> APIRouter:
    """The router to include in the API app (it uses ``app.state.db`` and ``app.state.clock``)."""
    router = APIRouter(tags=["slack"])
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None

    @router.post(
        "/v1/slack/interactions",
        summary="Slack interactivity (Acknowledge / Snooze 7 days buttons)",
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
            200: {
                "description": "Done; the text says what happened",
                "content": {"application/json": {"example": {"text": "Acknowledged", "response_type": "ephemeral"}}},
            },
            401: {"description": "Bad or stale Slack signature (problem+json)"},
            403: {"description": "The Slack user is not a known KAM (problem+json)"},
            404: {"description": "No such alert (problem+json)"},
            409: {"description": "The alert is resolved (problem+json)"},
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
        if action_id == OPEN_ACTION:
            return JSONResponse({"text": "ok"})
        if action_id not in (ACK_ACTION, SNOOZE_ACTION):
            return problem_response(400, "Bad Request", f"unknown action {action_id}", instance=path)
        try:
            alert_id = int(action["value"])
        except (KeyError, TypeError, ValueError):
            return problem_response(400, "Bad Request", "the action names no alert", instance=path)

        db: Database = request.app.state.db
        now = clock()
        async with db.transaction() as conn:
            kam_id = await reports.kam_by_slack_user(conn, user_id)
            if kam_id is None:
                return problem_response(403, "Forbidden", f"Slack user {user_id} is not a known KAM", instance=path)
            until = now + SNOOZE if action_id == SNOOZE_ACTION else None
            try:
                await lifecycle.transition(
                    conn, alert_id, "acknowledged", actor=kam_id, via="slack", at=now, snoozed_until=until
                )
            except lifecycle.AlertNotFound:
                return problem_response(404, "Not Found", f"no alert {alert_id}", instance=path)
            except lifecycle.InvalidTransition as error:
                return problem_response(409, "Conflict", str(error), instance=path)
        log.info("alert %d %s by %s from Slack", alert_id, "snoozed" if until else "acknowledged", kam_id)
        text = f"Snoozed until {until:%Y-%m-%d %H:%M} UTC" if until else "Acknowledged"
        return JSONResponse({"text": text, "response_type": "ephemeral", "replace_original": False})

    return router
