from sqlalchemy import text

from services.database import Database


async def test_migrations_are_idempotent(db: Database) -> None:
    await db.migrate()
    async with db.unit_of_work() as conn:
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert version == "0001"
