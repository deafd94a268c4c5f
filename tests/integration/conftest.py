"""Fixtures of the integration tests: a real PostgreSQL for the whole run, a fresh migrated database for each
test; the local SMTP and Slack servers and settings pointing at them.

The server is ``KAMWATCH_TEST_DATABASE_URL`` when set (any PostgreSQL 14+ where we may create databases),
otherwise an embedded pgserver in a temporary directory, shared by the pytest-xdist workers of the run (each
builds its own template database on it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.platform.database import Database, sqlalchemy_url, start_embedded
from services.platform.settings import Settings
from tests.dbutil import cloned_database, create_template
from tests.integration.servers import SlackStandIn, SmtpServer


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAMWATCH_TEST_DATABASE_URL")
    if configured:
        yield sqlalchemy_url(configured)
        return
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own base directory; their parent is the run's, shared by all.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    url, server = start_embedded(shared / "pg" / "pgdata")
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
async def server_url(pg_server_url: str) -> str:
    """The server, once the migrated template database exists on it."""
    await create_template(pg_server_url)
    return pg_server_url


@pytest.fixture
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test, dropped afterwards."""
    async with cloned_database(server_url) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await Database.open(settings)
    yield database
    await database.close()


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
