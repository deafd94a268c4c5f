"""Notifications survive an outage: retried over a time window, and visibly undeliverable

Revision ID: 0070
Revises: 0012

``failing_since`` is the first failed attempt of a notification's current run of failures: the alerter retries
until that is older than the outage window (``KAMWATCH_ALERTER_RETRY_WINDOW_S``), then marks it ``failed``.
A notification on a channel the alerter has no server for, or to an address that is not one valid address, is
``undeliverable``. Both wait for ``kamwatch notifications retry``; the partial index finds them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0070"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = "pending, sent, failed or undeliverable"


def upgrade() -> None:
    op.add_column(
        "notifications",
        sa.Column(
            "failing_since",
            sa.DateTime(timezone=True),
            nullable=True,
            comment="first failed attempt of the current run of failures (NULL: none)",
        ),
    )
    op.alter_column(
        "notifications",
        "status",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment=_STATUS,
        existing_comment="pending, sent or failed",
    )
    op.create_index(
        "ix_notifications_unsent",
        "notifications",
        ["status", "id"],
        postgresql_where=sa.text("status IN ('failed', 'undeliverable')"),
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_unsent", table_name="notifications")
    op.execute("UPDATE notifications SET status = 'failed' WHERE status = 'undeliverable'")
    op.alter_column(
        "notifications",
        "status",
        existing_type=sa.Text(),
        existing_nullable=False,
        comment="pending, sent or failed",
        existing_comment=_STATUS,
    )
    op.drop_column("notifications", "failing_since")
