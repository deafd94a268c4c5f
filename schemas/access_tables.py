"""Tables of API access control: hashed API keys and the generated signing secrets.

Importing this module registers the tables on ``schemas.tables.metadata``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Identity, Index, LargeBinary, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY

from schemas.tables import TZ, Id, metadata

# The key itself is never stored: only its sha256 (keys are 256-bit random, so a fast hash is enough)
# and a short visible prefix to find the row and to recognise the key in listings.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("prefix", Id, nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("name", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False, comment="admin, ingest, read:all, read:own, write:all"),
    Column("kam_id", Id, comment="the KAM the key is bound to (it acts on their accounts and their reports')"),
    Column("created_at", TZ, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", TZ),
    Column("revoked_at", TZ),
    Index("uq_api_keys_prefix", "prefix", unique=True),
)

# Secrets kamwatch generates once and every process shares (the widget-token signing key).
app_secrets = Table(
    "app_secrets",
    metadata,
    Column("name", Id, primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", TZ, nullable=False),
)

# Page sessions opened by /login: the cookie holds the session token, never the API key; only its sha256 is kept.
api_sessions = Table(
    "api_sessions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("token_hash", LargeBinary, nullable=False),
    Column("key_id", BigInteger, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("revoked_at", TZ, comment="logout (NULL: live until expires_at, or its key's revocation)"),
    Index("uq_api_sessions_token_hash", "token_hash", unique=True),
)
