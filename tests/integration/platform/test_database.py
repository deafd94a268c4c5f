import asyncio
import os
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

import schemas.access_tables  # noqa: F401  (registers the access tables on the metadata)
from schemas.tables import metadata
from services.platform.database import Database, alembic_config
from services.platform.settings import Settings

REPO = Path(__file__).resolve().parents[3]


async def test_migrations_are_idempotent(db: Database) -> None:
    await db.migrate()
    async with db.unit_of_work() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == ScriptDirectory.from_config(alembic_config()).get_current_head()


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [diff for diff in compare_metadata(context, metadata) if "raw_events_" not in repr(diff)]


async def test_migrations_create_exactly_the_declared_tables(db: Database) -> None:
    async with db.unit_of_work() as conn:
        assert await conn.run_sync(_differences) == []


async def test_the_alembic_command_line_finds_no_change_to_autogenerate(settings: Settings) -> None:
    """`alembic check` (what `alembic revision --autogenerate` would write) runs from the repository root on a
    development database (the test's, migrated), and finds the declared tables and the migrations in agreement."""
    env = {**os.environ, "KAMWATCH_DATABASE_URL": settings.database_url or ""}
    alembic = Path(sys.executable).with_name("alembic")
    process = await asyncio.create_subprocess_exec(
        str(alembic), "check", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await process.communicate())[0].decode()
    assert process.returncode == 0, output
    assert "No new upgrade operations detected" in output
