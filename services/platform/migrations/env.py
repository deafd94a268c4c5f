"""Alembic environment: runs on the connection handed over by ``services.platform.database`` (never builds one)."""

from __future__ import annotations

from alembic import context

from schemas.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `kamwatch migrate`")

context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
