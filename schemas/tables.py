"""Database tables (SQLAlchemy Core metadata). Alembic migrations create them; queries use them.

``raw_events`` is range-partitioned by month of the event time; its partitions are created on demand
by ingestion and dropped by retention, so they are not declared here.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB

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

# Arrival is bookkeeping, not a signal (scores and alerts read event times): the database stamps it, one value
# per storing transaction, so ingestion sends nothing per row for it.
RECEIVED_NOW = text("transaction_timestamp()")
RECEIVED_AT = "when it was stored: the start of the storing transaction (database clock)"

# Idempotency ledger: one row per (source, id) ever accepted. Kept apart from raw_events because a
# unique key on a month-partitioned table would have to include the month.
event_keys = Table(
    "event_keys",
    metadata,
    Column("source", Id, nullable=False),
    Column("event_id", Id, nullable=False),
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
    Column("received_at", TZ, nullable=False, server_default=RECEIVED_NOW, comment=RECEIVED_AT),
    Column("payload", JSON, nullable=False, comment="the event as received"),
    Index("ix_raw_events_subject_time", "subject", "event_time"),
    postgresql_partition_by="RANGE (event_time)",
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("received_at", TZ, nullable=False, server_default=RECEIVED_NOW, comment=RECEIVED_AT),
    Column("ingress", Text, nullable=False),
    Column("origin", Text),
    Column("reason", Text, nullable=False),
    Column("field", Text),
    Column("raw", LargeBinary, nullable=False),
    Column("replayed_at", TZ),
    Column("headers", JSONB, comment="a Kafka record's headers, as received: [[name, value], ...]"),
    Column("record_key", LargeBinary, comment="a Kafka record's key"),
    # Kafka dead letters are published to the DLQ topic by a relay, from here (see migration 0020).
    Column("claimed_until", TZ, comment="held by a relay for the DLQ topic until"),
    Column("publishing_since", TZ, comment="may be on the DLQ topic since"),
    Column("published_at", TZ, comment="published to the DLQ topic (Kafka only)"),
    # A redelivered Kafka record or a replayed file line is dead-lettered once (the digest keeps two
    # different records apart should an origin ever repeat, as in-memory test brokers do).
    Index("uq_dead_letters_origin", "ingress", "origin", text("md5(raw)"), unique=True),
    Index("ix_dead_letters_unpublished", "id", postgresql_where=text("ingress = 'kafka' AND published_at IS NULL")),
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
    Column(
        "active_users",
        Integer,
        Computed("cardinality(users)", persisted=True),
        comment="distinct users of the day (cardinality of users)",
    ),
    # Carries what scoring reads, so reading an account's weeks of usage is an index-only scan.
    PrimaryKeyConstraint("account_id", "day", "metric", postgresql_include=["quantity", "active_users"]),
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


def account_shard_sql(account_id: str, shards: str) -> str:
    """SQL for the shard, among ``shards``, of the account id ``account_id`` (both SQL expressions): a stable hash
    of the id, so that every worker and process agrees on which accounts a shard holds (the sweep's shards, the
    rescore queue's)."""
    return f"mod(hashtext({account_id})::bigint + 2147483648, {shards})"


# Accounts whose signals changed, one row per ingested batch and shard of accounts (a single insert on the hot
# path rather than one upsert per account); rescorers claim whole shards and rescore each account once.
rescore_queue = Table(
    "rescore_queue",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_ids", ARRAY(Id), nullable=False),
    Column("latest_event_time", TZ, nullable=False),
    Column("shard", SmallInteger, nullable=False, server_default=text("0"), comment="hash shard of the accounts"),
    Column("queued_at", TZ, nullable=False, server_default=text("clock_timestamp()")),
    Index("ix_rescore_queue_shard_id", "shard", "id"),
)

# Current health of each account: the newest score (by as_of), its components and drivers.
account_health = Table(
    "account_health",
    metadata,
    Column("account_id", Id, primary_key=True),
    Column("as_of", TZ, nullable=False),
    Column("risk", Numeric(4, 1), nullable=False),
    Column("level", Text, nullable=False),
    Column("level_since", TZ, nullable=False, comment="as_of at which the account entered its current level"),
    Column("components", JSONB, nullable=False),
    Column("drivers", JSONB, nullable=False),
    Column("config_version", Text, nullable=False),
    Column(
        "fingerprint",
        LargeBinary,
        nullable=True,
        comment="digest of risk, level, components, drivers and config version",
    ),
    Index("ix_account_health_level", "level"),
)

# A row per account per change of score or level, and at least one per UTC day the account was scored.
account_health_history = Table(
    "account_health_history",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("as_of", TZ, nullable=False),
    Column("risk", Numeric(4, 1), nullable=False),
    Column("level", Text, nullable=False),
    Column("components", JSONB, nullable=False, comment="component name -> risk"),
    Column("driver_codes", ARRAY(Text), nullable=False),
    Column("config_version", Text, nullable=False),
    Column("trigger", Text, nullable=False, comment="event or sweep"),
    PrimaryKeyConstraint("account_id", "as_of"),
)

# Manual level pins by a KAM or manager: every override is kept for audit; the active one is the newest
# whose window contains the as-of time and that was not revoked.
health_overrides = Table(
    "health_overrides",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("account_id", Id, nullable=False),
    Column("level", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", TZ, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("revoked_at", TZ),
    Column("revoked_by", Text),
    Index("ix_health_overrides_account_id", "account_id", "created_at"),
)

# One row per (sweep time, shard) done: a shard of a scheduled sweep is taken by exactly one worker.
sweep_runs = Table(
    "sweep_runs",
    metadata,
    Column("as_of", TZ, nullable=False),
    Column("shard", SmallInteger, nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("worker", Text, nullable=False),
    PrimaryKeyConstraint("as_of", "shard"),
)

# Alerts: one open (not resolved) alert per dedup key; every state change is kept in alert_transitions.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dedup_key", Id, nullable=False),
    Column("account_id", Id, nullable=False),
    Column("rule", Text, nullable=False),
    Column("subject", Text),
    Column("severity", Text, nullable=False),
    Column("state", Text, nullable=False, comment="firing, acknowledged or resolved"),
    Column("fired_at", TZ, nullable=False, comment="event time at which the condition became true"),
    Column("updated_at", TZ, nullable=False),
    Column("resolved_at", TZ),
    Column("acknowledged_at", TZ),
    Column("snoozed_until", TZ),
    Column("escalated_at", TZ),
    Column("last_notified_at", TZ),
    Column("delivery", Text, comment="immediate, digest or folded"),
    Column("folded_into", BigInteger),
    Column("title_en", Text, nullable=False),
    Column("title_fr", Text, nullable=False),
    Column("drivers", JSONB, nullable=False),
    Column("cleared_note_since", TZ, comment="when its cleared note became owed (NULL: none)"),
    Column("cleared_note_at", TZ, comment="when its cleared note goes out (NULL: waiting)"),
    Column("clearing_since", TZ, comment="condition clear since, held open (NULL: it holds)"),
    Column("resolves_at", TZ, comment="when a held alert resolves unless its condition returns"),
    Index("uq_alerts_open_dedup_key", "dedup_key", unique=True, postgresql_where=text("state <> 'resolved'")),
    Index("ix_alerts_account_id", "account_id", "fired_at"),
    Index(
        "ix_alerts_cleared_note_waiting",
        "account_id",
        postgresql_where=text("cleared_note_since IS NOT NULL AND cleared_note_at IS NULL"),
    ),
)

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("at", TZ, nullable=False),
    Column("from_state", Text),
    Column("to_state", Text, nullable=False),
    Column("actor", Text, nullable=False, comment="a KAM id, an API key name, or kamwatch"),
    Column("via", Text, nullable=False, comment="engine, api, slack, cli"),
    Column("note", Text),
    Index("ix_alert_transitions_alert_id", "alert_id", "at"),
)

alert_feedback = Table(
    "alert_feedback",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("at", TZ, nullable=False),
    Column("actor", Text, nullable=False),
    Column("verdict", Text, nullable=False, comment="useful or false_alarm"),
    Column("comment", Text),
    Column("via", Text, comment="api, cli, slack, email or widget"),
    Index("ix_alert_feedback_alert_id", "alert_id"),
)

# Signed Slack requests already acted on (kept a few minutes: Slack's signatures expire after five), so that a
# replayed request changes nothing.
slack_interactions = Table(
    "slack_interactions",
    metadata,
    Column("signature", Text, primary_key=True, comment="Slack's signature of the request"),
    Column("at", TZ, nullable=False),
)

# Transactional outbox: written in the alert change's transaction, claimed by alerters (SKIP LOCKED).
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False, comment="immediate, digest, escalation, reminder, resolved"),
    Column("channel", Text, nullable=False, comment="slack, email, team_channel"),
    Column("recipient", Text, nullable=False),
    Column("kam_id", Id),
    Column("alert_ids", ARRAY(BigInteger), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False, comment="pending, sent, failed or undeliverable"),
    Column("created_at", TZ, nullable=False),
    Column("send_after", TZ, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("sent_at", TZ),
    Column("failing_since", TZ, comment="first failed attempt of the current run of failures (NULL: none)"),
    Index("ix_notifications_pending", "send_after", postgresql_where=text("status = 'pending'")),
    Index("ix_notifications_unsent", "status", "id", postgresql_where=text("status IN ('failed', 'undeliverable')")),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("notification_id", BigInteger, nullable=False),
    Column("at", TZ, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("error", Text),
    Index("ix_notification_attempts_notification_id", "notification_id"),
)


# Accounts set aside because loading, scoring, alerting on or rendering them failed (an unforeseen bug or a
# state no event should have made): the others go on; `kamwatch quarantine retry` takes them back.
quarantined_accounts = Table(
    "quarantined_accounts",
    metadata,
    Column("account_id", Id, primary_key=True),
    Column("stage", Text, nullable=False, comment="scoring or alerting"),
    Column("trigger", Text, nullable=False, comment="event, sweep or manual"),
    Column("as_of", TZ, nullable=False, comment="the evaluation time that failed"),
    Column("error", Text, nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("1")),
    Column("first_failed_at", TZ, nullable=False, server_default=RECEIVED_NOW),
    Column("last_failed_at", TZ, nullable=False, server_default=RECEIVED_NOW),
    Column("events", JSONB, nullable=False, server_default=text("'[]'::jsonb"), comment="the newest events"),
)

# Views, derived from the tables when read (created by the migrations; not in ``metadata``, which holds tables).
views = MetaData()

# What an account's outcomes say about it: an outcome newer than its profile decides. ``churned`` closes it
# (``status`` closed, with ``outcome_at`` and ``outcome_reason``); a renewal, expansion or downgrade carries the
# ARR and the renewal date after it, until a newer profile. A later profile event reopens it.
account_state = Table(
    "account_state",
    views,
    Column("account_id", Id, primary_key=True),
    Column("status", Text, nullable=False, comment="open or closed"),
    Column("outcome", Text),
    Column("outcome_at", TZ),
    Column("outcome_reason", Text),
    Column("arr", Numeric(20, 4), nullable=False),
    Column("renewal_date", Date),
)
