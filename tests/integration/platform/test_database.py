from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

import schemas.access_tables  # noqa: F401  (registers the access tables on the metadata)
from schemas.tables import metadata
from services.platform.database import Database, alembic_config


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
