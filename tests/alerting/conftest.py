"""Fixtures of the alerting tests: the local SMTP and Slack servers, settings pointing at them, a test clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.platform.settings import Settings
from tests.alerting.servers import SlackStandIn, SmtpServer

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    server = SlackStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def alert_settings(settings: Settings, smtp: SmtpServer, slack: SlackStandIn) -> Settings:
    return settings.model_copy(
        update={
            "slack_bot_token": SecretStr("xoxb-test"),
            "slack_api_base_url": slack.api_url,
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_from": "kamwatch <alerts@example.com>",
            "smtp_timeout_s": 5.0,
            "public_url": "https://kamwatch.example.com",
        }
    )
