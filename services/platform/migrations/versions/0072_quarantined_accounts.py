"""Accounts set aside when evaluating them fails, so that one account never stops the others

Revision ID: 0072
Revises: 0050
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0072"
down_revision: str | None = "0050"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    now = sa.text("transaction_timestamp()")
    op.create_table(
        "quarantined_accounts",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False, comment="scoring or alerting"),
        sa.Column("trigger", sa.Text(), nullable=False, comment="event, sweep or manual"),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False, comment="the evaluation time that failed"),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column(
            "events", JSONB(), server_default=sa.text("'[]'::jsonb"), nullable=False, comment="the newest events"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_quarantined_accounts")),
    )


def downgrade() -> None:
    op.drop_table("quarantined_accounts")
