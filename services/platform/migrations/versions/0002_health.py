"""health scores, history, overrides, sweep bookkeeping

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.Text(collation="C")
_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "account_health",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("as_of", _TZ, nullable=False),
        sa.Column("risk", sa.Numeric(4, 1), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("level_since", _TZ, nullable=False, comment="as_of at which the account entered its current level"),
        sa.Column("components", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("drivers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("config_version", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_health")),
    )
    op.create_index("ix_account_health_level", "account_health", ["level"])
    op.create_table(
        "account_health_history",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("as_of", _TZ, nullable=False),
        sa.Column("risk", sa.Numeric(4, 1), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column(
            "components", postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment="component name -> risk"
        ),
        sa.Column("driver_codes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("config_version", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False, comment="event or sweep"),
        sa.PrimaryKeyConstraint("account_id", "as_of", name=op.f("pk_account_health_history")),
    )
    op.create_table(
        "health_overrides",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("revoked_at", _TZ, nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_overrides")),
    )
    op.create_index("ix_health_overrides_account_id", "health_overrides", ["account_id", "created_at"])
    op.create_table(
        "sweep_runs",
        sa.Column("as_of", _TZ, nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("as_of", "shard", name=op.f("pk_sweep_runs")),
    )


def downgrade() -> None:
    op.drop_table("sweep_runs")
    op.drop_index("ix_health_overrides_account_id", table_name="health_overrides")
    op.drop_table("health_overrides")
    op.drop_table("account_health_history")
    op.drop_index("ix_account_health_level", table_name="account_health")
    op.drop_table("account_health")
