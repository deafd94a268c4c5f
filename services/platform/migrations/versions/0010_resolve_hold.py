"""A hold before auto-resolving: when an open alert's condition was found clear, and when it resolves

Revision ID: 0010
Revises: 0009

An alert whose condition clears stays open until the condition has stayed clear for the rule's hold (against
flapping: a signal going back and forth across a rule's threshold re-opened the same alert within days).
``clearing_since`` is when the condition was first found clear this time (NULL: it holds), ``resolves_at``
when the alert resolves unless the condition comes back first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "alerts",
        sa.Column("clearing_since", _TZ, nullable=True, comment="condition clear since, held open (NULL: it holds)"),
    )
    op.add_column(
        "alerts",
        sa.Column("resolves_at", _TZ, nullable=True, comment="when a held alert resolves unless its condition returns"),
    )


def downgrade() -> None:
    op.drop_column("alerts", "resolves_at")
    op.drop_column("alerts", "clearing_since")
