"""Cleared notes owed to KAMs: when a resolved alert's "cleared" note became owed, and when it goes out

Revision ID: 0008
Revises: 0007

A warning or info alert that resolves owes its KAM a short "cleared" note, which never makes a digest of its
own: it waits for the KAM's next digest with news, at most a configured number of days. ``cleared_note_since``
is when the note became owed (NULL: none is owed), ``cleared_note_at`` when it goes or went out (NULL: still
waiting); the partial index finds the waiting ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "alerts",
        sa.Column("cleared_note_since", _TZ, nullable=True, comment="when its cleared note became owed (NULL: none)"),
    )
    op.add_column(
        "alerts",
        sa.Column("cleared_note_at", _TZ, nullable=True, comment="when its cleared note goes out (NULL: waiting)"),
    )
    op.create_index(
        "ix_alerts_cleared_note_waiting",
        "alerts",
        ["account_id"],
        postgresql_where=sa.text("cleared_note_since IS NOT NULL AND cleared_note_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_cleared_note_waiting", table_name="alerts")
    op.drop_column("alerts", "cleared_note_at")
    op.drop_column("alerts", "cleared_note_since")
