"""A fingerprint of each current health score

Revision ID: 0006
Revises: 0005

A sweep that finds an account's score unchanged (most of them, every 15 minutes) then only moves its
``as_of`` instead of rewriting its components and drivers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMMENT = "digest of risk, level, components, drivers and config version"


def upgrade() -> None:
    op.add_column("account_health", sa.Column("fingerprint", sa.LargeBinary(), nullable=True, comment=_COMMENT))


def downgrade() -> None:
    op.drop_column("account_health", "fingerprint")
