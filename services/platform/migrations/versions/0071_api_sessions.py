"""Page sessions: the /login cookie holds a session token, not the API key; logout revokes it

Revision ID: 0071
Revises: 0070

A session stands for the key it was opened with (``key_id``): logout, its expiry or the key's revocation ends
it. Only the sha256 of its token is kept. Keys gain the ``write:all`` scope; a key bound to a KAM acts on the
accounts of that KAM and their reports.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0071"
down_revision: str | None = "0070"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)
_SCOPES = ("admin, ingest, read:all, read:own", "admin, ingest, read:all, read:own, write:all")
_KAM = (
    "the KAM a read:own key is bound to",
    "the KAM the key is bound to (it acts on their accounts and their reports')",
)


def _comments(new: int) -> None:
    old = 1 - new
    op.alter_column(
        "api_keys",
        "scopes",
        existing_type=sa.ARRAY(sa.Text()),
        existing_nullable=False,
        comment=_SCOPES[new],
        existing_comment=_SCOPES[old],
    )
    op.alter_column(
        "api_keys",
        "kam_id",
        existing_type=sa.Text(collation="C"),
        existing_nullable=True,
        comment=_KAM[new],
        existing_comment=_KAM[old],
    )


def upgrade() -> None:
    op.create_table(
        "api_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column(
            "revoked_at", _TZ, nullable=True, comment="logout (NULL: live until expires_at, or its key's revocation)"
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_api_sessions_key_id_api_keys"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_sessions")),
    )
    op.create_index("uq_api_sessions_token_hash", "api_sessions", ["token_hash"], unique=True)
    _comments(1)


def downgrade() -> None:
    _comments(0)
    op.drop_index("uq_api_sessions_token_hash", table_name="api_sessions")
    op.drop_table("api_sessions")
