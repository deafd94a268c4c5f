"""Shared fixtures: a real PostgreSQL for the whole run, a fresh migrated database for each test.

The server is ``KAMWATCH_TEST_DATABASE_URL`` when set (any PostgreSQL 14+ where we may create databases),
otherwise an embedded pgserver in a temporary directory.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url

from services.database import Database, sqlalchemy_url, start_embedded
from services.settings import Settings

_TEMPLATE = "kamwatch_template"
_counter = itertools.count()


def _dsn(url: str, database: str) -> str:
    """A plain libpq-style DSN for asyncpg (admin work), pointing at ``database``."""
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


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
async def template_database(pg_server_url: str) -> str:
    admin = await asyncpg.connect(_dsn(pg_server_url, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {_TEMPLATE}")
    finally:
        await admin.close()
    template_url = make_url(pg_server_url).set(database=_TEMPLATE).render_as_string(hide_password=False)
    db = await Database.open(Settings(database_url=template_url))
    await db.migrate()
    await db.close()
    return pg_server_url


@pytest.fixture
async def database_url(template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test (cloned from the template), dropped afterwards."""
    name = f"kamwatch_test_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(_dsn(template_database, "postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
    finally:
        await admin.close()
    yield make_url(template_database).set(database=name).render_as_string(hide_password=False)
    admin = await asyncpg.connect(_dsn(template_database, "postgres"))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await Database.open(settings)
    yield database
    await database.close()
