"""Database tables (SQLAlchemy Core metadata). Alembic migrations create them; queries use them.

``raw_events`` is range-partitioned by month of the event time; its partitions are created on demand
by ingestion and dropped by retention, so they are not declared here.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TZ = DateTime(timezone=True)
# Identifiers are opaque: byte-order ("C") collation keeps them deterministic and their indexes cheap
# (memcmp instead of locale-aware comparison on every key of every index insert).
Id = Text(collation="C")

# Idempotency ledger: one row per (source, id) ever accepted. Kept apart from raw_events because a
# unique key on a month-partitioned table would have to include the month.
event_keys = Table(
    "event_keys",
    metadata,
    Column("source", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("event_time", TZ, nullable=False),
    PrimaryKeyConstraint("source", "event_id"),
)

raw_events = Table(
    "raw_events",
    metadata,
    Column("event_time", TZ, nullable=False),
    Column("source", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("type", Text, nullable=False),
    Column("subject", Id, nullable=False),
    Column("received_at", TZ, nullable=False),
    Column("payload", JSONB, nullable=False),
    Index("ix_raw_events_subject_time", "subject", "event_time"),
    postgresql_partition_by="RANGE (event_time)",
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("received_at", TZ, nullable=False),
    Column("ingress", Text, nullable=False),
    Column("origin", Text),
    Column("reason", Text, nullable=False),
    Column("field", Text),
    Column("raw", LargeBinary, nullable=False),
    Column("replayed_at", TZ),
    # A redelivered Kafka record or a replayed file line is dead-lettered once (the digest keeps two
    # different records apart should an origin ever repeat, as in-memory test brokers do).
    Index("uq_dead_letters_origin", "ingress", "origin", text("md5(raw)"), unique=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", Id, primary_key=True),
    Column("name", Text, nullable=False),
    Column("owner_kam_id", Id, nullable=False),
    Column("arr", Numeric(20, 4), nullable=False),
    Column("currency", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("renewal_date", Date),
    Column("segment", Text),
    Column("industry", Text),
    Column("growth_potential", Text),
    Column("strategic_reference", Boolean, nullable=False, server_default=text("false")),
    Column("parent_account_id", Id),
    Column("last_event_time", TZ, nullable=False),
    Column("last_event_id", Text, nullable=False),
    Index("ix_accounts_owner_kam_id", "owner_kam_id"),
    Index("ix_accounts_parent_account_id", "parent_account_id"),
)

kams = Table(
    "kams",
    metadata,
    Column("kam_id", Id, primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("slack_user_id", Text),
    Column("manager_kam_id", Id),
    Column("locale", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("last_event_time", TZ, nullable=False),
    Column("last_event_id", Text, nullable=False),
)

usage_daily = Table(
    "usage_daily",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("day", Date, nullable=False, comment="UTC day of the event time"),
    Column("metric", Id, nullable=False),
    Column("quantity", Numeric, nullable=False),
    Column("events", Integer, nullable=False),
    Column("users", ARRAY(Id), nullable=False, comment="distinct user ids active that day"),
    PrimaryKeyConstraint("account_id", "day", "metric"),
)

tickets = Table(
    "tickets",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("ticket_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("category", Text),
    Column("category_at", TZ),
    Column("csat", SmallInteger),
    Column("csat_at", TZ),
    Column("first_seen_at", TZ, nullable=False),
    Column("opened_at", TZ),
    Column("resolved_at", TZ),
    Column("escalations", Integer, nullable=False),
    Column("reopenings", Integer, nullable=False),
    Column("last_event_time", TZ, nullable=False),
    Column("last_event_id", Text, nullable=False),
    PrimaryKeyConstraint("account_id", "ticket_id"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("invoice_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("amount", Numeric(20, 4), nullable=False),
    Column("currency", Text, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("issued_at", TZ),
    Column("paid_at", TZ),
    Column("failures", Integer, nullable=False),
    Column("last_event_time", TZ, nullable=False),
    Column("last_event_id", Text, nullable=False),
    PrimaryKeyConstraint("account_id", "invoice_id"),
)

contacts = Table(
    "contacts",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("contact_id", Id, nullable=False),
    Column("role", Text, nullable=False),
    Column("previous_role", Text),
    Column("last_change", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("name", Text),
    Column("name_at", TZ),
    Column("email", Text),
    Column("email_at", TZ),
    Column("title", Text),
    Column("title_at", TZ),
    Column("added_at", TZ),
    Column("left_at", TZ),
    Column("last_event_time", TZ, nullable=False),
    Column("last_event_id", Text, nullable=False),
    PrimaryKeyConstraint("account_id", "contact_id"),
)

engagements = Table(
    "engagements",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("event_time", TZ, nullable=False),
    Column("source", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("kind", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("nps_score", SmallInteger),
    PrimaryKeyConstraint("account_id", "event_time", "source", "event_id"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("event_time", TZ, nullable=False),
    Column("source", Id, nullable=False),
    Column("event_id", Id, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("arr_before", Numeric(20, 4)),
    Column("arr_after", Numeric(20, 4)),
    Column("reason", Text),
    PrimaryKeyConstraint("account_id", "event_time", "source", "event_id"),
)

# Accounts whose signals changed, one row per ingested batch (a single insert on the hot path rather than
# one upsert per account); the health engine drains it and rescores each account once.
rescore_queue = Table(
    "rescore_queue",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_ids", ARRAY(Id), nullable=False),
    Column("latest_event_time", TZ, nullable=False),
)
