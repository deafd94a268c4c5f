"""Shared fixtures: a real PostgreSQL for the whole run, a fresh migrated database for each test.

The server is ``KAMWATCH_TEST_DATABASE_URL`` when set (any PostgreSQL 14+ where we may create databases),
otherwise an embedded pgserver in a temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.platform.database import Database, sqlalchemy_url, start_embedded
from services.platform.settings import Settings
from tests.dbutil import cloned_database, create_template


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAMWATCH_TEST_DATABASE_URL")
    if configured:
        yield sqlalchemy_url(configured)
        return
    url, server = start_embedded(tmp_path_factory.mktemp("pg") / "pgdata")
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
