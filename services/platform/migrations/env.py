"""Alembic environment. ``kamwatch migrate`` hands over its connection; the ``alembic`` command line (from the
repository root, configured in pyproject.toml) connects to ``KAMWATCH_DATABASE_URL`` or the embedded database,
e.g. ``alembic revision --autogenerate -m "what changes"`` against a development database."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Connection

import schemas.access_tables  # noqa: F401  (registers the access tables on the metadata)
from schemas.tables import metadata


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # Monthly raw-event partitions are created at run time, not declared.
    return not (type_ == "table" and name is not None and name.startswith("raw_events_"))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True, include_object=_include)
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from services.platform.database import Database
    from services.platform.settings import Settings

    db = await Database.open(Settings())
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await db.close()


handed_over = context.config.attributes.get("connection")
if handed_over is not None:
    _run(handed_over)
else:
    asyncio.run(_run_from_settings())
