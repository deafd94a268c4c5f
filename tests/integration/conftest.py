"""Fixtures of the integration tests: a real PostgreSQL for the whole run, a fresh migrated database for each
test; the local SMTP and Slack servers and settings pointing at them.

The server is ``KAMWATCH_TEST_DATABASE_URL`` when set (any PostgreSQL 14+ where we may create databases),
otherwise an embedded pgserver in a temporary directory, shared by the pytest-xdist workers of the run (each
builds its own template database on it).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pgserver import get_server  # type: ignore[attr-defined]  # re-exported without __all__
from pydantic import SecretStr

from services.platform.database import Database, sqlalchemy_url
from services.platform.settings import Settings
from tests.configs import RULES_PATH, SCORING_PATH
from tests.dbutil import cloned_database, create_template
from tests.integration.servers import SlackStandIn, SmtpServer


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    configured = os.environ.get("KAMWATCH_TEST_DATABASE_URL")
    if configured:
        yield sqlalchemy_url(configured)
        return
    # Not under pytest's temporary root: every pytest session starting on the machine makes that root private
    # again (mode 0700), which locks out the embedded server's own system user while it runs. One directory
    # per run, shared by its xdist workers; the last one out stops the server and deletes it.
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    pgdata = Path(tempfile.gettempdir()) / f"kamwatch-test-pg-{run}"
    # Made here, not by get_server: its mkdir(exist_ok=False) races between workers starting together.
    pgdata.mkdir(exist_ok=True)
    server = get_server(pgdata, cleanup_mode="delete")
    yield sqlalchemy_url(server.get_uri())
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
    # The mechanism tests' own scoring and rules (the shipped ones come from kamwatch tune and move).
    return Settings(
        database_url=database_url, data_dir=tmp_path / "data", scoring_config=SCORING_PATH, alert_rules=RULES_PATH
    )


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
