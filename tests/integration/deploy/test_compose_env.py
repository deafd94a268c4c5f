"""deploy/compose.yaml's environment, loaded per service as its process would (``Settings()`` from the
environment, the operator's ``.env`` interpolated), sends an alert end to end: the worker scores and queues, the
alerter delivers by email and Slack, the API verifies the KAM's Slack button.

Only where the servers live is re-pointed, as the compose network would resolve it: the database (service
``postgres``) to the test's, the SMTP server (service ``mailpit``) to a local one, Slack's API to a local
stand-in."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import timedelta
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from alerts.messages import ACK_ACTION
from services.alerter.delivery import Alerter
from services.api.app import build_app
from services.flows.alerting import build_alerting
from services.platform.database import Database
from services.platform.settings import Settings
from tests.deployfiles import compose_environment
from tests.integration.scenario import Clock, go_critical, rows
from tests.integration.servers import SlackStandIn, SmtpServer

# What an operator puts in deploy/.env (or exports) for Slack; SMTP is left to the bundled Mailpit.
OPERATOR = {"KAMWATCH_SLACK_BOT_TOKEN": "xoxb-compose-test", "KAMWATCH_SLACK_SIGNING_SECRET": "compose-signing"}
SECRETS = ("KAMWATCH_SLACK_BOT_TOKEN", "KAMWATCH_SLACK_WEBHOOK_URL", "KAMWATCH_SMTP_PASSWORD")


def service_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, dict[str, str]]:
    """The settings ``service``'s process builds from its compose environment."""
    environment = compose_environment(service, OPERATOR)
    with monkeypatch.context() as scoped:
        for name in list(os.environ):
            if name.startswith("KAMWATCH_"):
                scoped.delenv(name)
        for name, value in environment.items():
            scoped.setenv(name, value)
        return Settings(), environment


def networked(settings: Settings, database_url: str, **servers: object) -> Settings:
    assert settings.database_url is not None
    assert "@postgres:5432/" in settings.database_url
    return settings.model_copy(update={"database_url": database_url, **servers})


async def test_compose_environment_sends_an_alert_end_to_end(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker, worker_env = service_settings("worker", monkeypatch)
    alerter, alerter_env = service_settings("alerter", monkeypatch)
    api, api_env = service_settings("api", monkeypatch)
    # Each secret only where it is used.
    assert not {*SECRETS, "KAMWATCH_SLACK_SIGNING_SECRET"} & {n for n, v in worker_env.items() if v}
    assert not set(SECRETS) & {n for n, v in api_env.items() if v}
    assert "KAMWATCH_SLACK_SIGNING_SECRET" not in alerter_env
    assert alerter.smtp_host == "mailpit"

    smtp, slack = SmtpServer().start(), SlackStandIn().start()
    db = await Database.open(networked(worker, database_url))
    try:
        # The worker scores (its hook queues what the KAM's contact points call for)...
        _, as_of = await go_critical(db, build_alerting(networked(worker, database_url), notify="send"))
        # ... the alerter sends it.
        mailpit = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "slack_api_base_url": slack.api_url}
        sender = Alerter.from_settings(db, networked(alerter, database_url, **mailpit), clock=Clock(as_of))
        assert await sender.run_until_idle() == 3

        [mail] = smtp.inbox.messages
        assert mail["To"].addresses[0].addr_spec == "lea@example.com"
        posts = {r.body["channel"]: r for r in slack.requests}
        assert set(posts) == {"ULEA", "#key-accounts-alerts"}
        assert posts["ULEA"].headers["Authorization"] == "Bearer xoxb-compose-test"
        assert await rows(db, "SELECT DISTINCT status FROM notifications") == [("sent",)]

        # The KAM clicks Acknowledge in the DM; the API, configured by compose, verifies Slack's signature.
        alert_id = next(
            int(element["value"])
            for block in posts["ULEA"].body["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element.get("action_id") == ACK_ACTION
        )
        clicked_at = as_of + timedelta(minutes=3)
        app = build_app(networked(api, database_url), db, clock=Clock(clicked_at), health_fast_path=False)
        payload = {
            "type": "block_actions",
            "user": {"id": "ULEA"},
            "actions": [{"action_id": ACK_ACTION, "block_id": f"alert_{alert_id}", "value": str(alert_id)}],
        }
        body = urlencode({"payload": orjson.dumps(payload).decode()}).encode()
        timestamp = str(int(clicked_at.timestamp()))
        signature = hmac.new(b"compose-signing", f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={signature}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
        ):
            response = await http.post("/v1/slack/interactions", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert await rows(db, "SELECT state FROM alerts WHERE id = :i", i=alert_id) == [("acknowledged",)]
    finally:
        await db.close()
        smtp.stop()
        slack.stop()
