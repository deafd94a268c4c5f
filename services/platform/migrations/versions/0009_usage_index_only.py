"""Usage days readable from the primary key alone

Revision ID: 0009
Revises: 0008

Scoring reads each account's last 9 weeks of ``usage_daily``: 63 rows, written one day at a time, so on 63
different pages; fetching them was the largest database cost of a sweep. The primary key now carries what
scoring reads (``quantity`` and ``active_users``, the number of distinct users, kept by PostgreSQL from
``users``), so the read is an index-only scan (measured on 200,000 accounts: 2.5 to 3 times faster).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE usage_daily ADD COLUMN active_users integer GENERATED ALWAYS AS (cardinality(users)) STORED"
    )
    op.execute(
        "ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, "
        "ADD CONSTRAINT pk_usage_daily PRIMARY KEY (account_id, day, metric) INCLUDE (quantity, active_users)"
    )
    op.execute("COMMENT ON COLUMN usage_daily.active_users IS 'distinct users of the day (cardinality of users)'")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, "
        "ADD CONSTRAINT pk_usage_daily PRIMARY KEY (account_id, day, metric)"
    )
    op.drop_column("usage_daily", "active_users")
