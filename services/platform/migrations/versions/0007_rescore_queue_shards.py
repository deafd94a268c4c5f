"""Rescore queue split into shards of accounts

Revision ID: 0007
Revises: 0006

Each ingested batch queues its touched accounts as one row per shard (a stable hash of the account id), and a
rescorer claims a whole shard at a time, so several evaluator processes share the rescoring without scoring
the same account twice. ``queued_at`` lets a rescorer wait for a burst of batches to settle (bounded by a
maximum delay) before it rescores: a backfill is scored once, not once per batch.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rescore_queue",
        sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0", comment="hash shard of the accounts"),
    )
    op.add_column(
        "rescore_queue",
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("clock_timestamp()")),
    )
    op.create_index("ix_rescore_queue_shard_id", "rescore_queue", ["shard", "id"])


def downgrade() -> None:
    op.drop_index("ix_rescore_queue_shard_id", table_name="rescore_queue")
    op.drop_column("rescore_queue", "queued_at")
    op.drop_column("rescore_queue", "shard")
