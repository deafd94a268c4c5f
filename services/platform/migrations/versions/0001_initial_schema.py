"""initial schema

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner_kam_id", sa.Text(collation="C"), nullable=False),
        sa.Column("arr", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("renewal_date", sa.Date(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("growth_potential", sa.Text(), nullable=True),
        sa.Column("strategic_reference", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("parent_account_id", sa.Text(collation="C"), nullable=True),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_index("ix_accounts_owner_kam_id", "accounts", ["owner_kam_id"], unique=False)
    op.create_index("ix_accounts_parent_account_id", "accounts", ["parent_account_id"], unique=False)
    op.create_table(
        "contacts",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("contact_id", sa.Text(collation="C"), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("previous_role", sa.Text(), nullable=True),
        sa.Column("last_change", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("name_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("title_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "contact_id", name=op.f("pk_contacts")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingress", sa.Text(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index(
        "uq_dead_letters_origin", "dead_letters", ["ingress", "origin", sa.literal_column("md5(raw)")], unique=True
    )
    op.create_table(
        "engagements",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(collation="C"), nullable=False),
        sa.Column("event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("nps_score", sa.SmallInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "event_time", "source", "event_id", name=op.f("pk_engagements")),
    )
    op.create_table(
        "event_keys",
        sa.Column("source", sa.Text(collation="C"), nullable=False),
        sa.Column("event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "event_id", name=op.f("pk_event_keys")),
    )
    op.create_table(
        "invoices",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("invoice_id", sa.Text(collation="C"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "invoice_id", name=op.f("pk_invoices")),
    )
    op.create_table(
        "kams",
        sa.Column("kam_id", sa.Text(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("slack_user_id", sa.Text(), nullable=True),
        sa.Column("manager_kam_id", sa.Text(collation="C"), nullable=True),
        sa.Column("locale", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("kam_id", name=op.f("pk_kams")),
    )
    op.create_table(
        "outcomes",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(collation="C"), nullable=False),
        sa.Column("event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("arr_before", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("arr_after", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "event_time", "source", "event_id", name=op.f("pk_outcomes")),
    )
    op.create_table(
        "raw_events",
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(collation="C"), nullable=False),
        sa.Column("event_id", sa.Text(collation="C"), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(collation="C"), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        postgresql_partition_by="RANGE (event_time)",
    )
    op.create_index("ix_raw_events_subject_time", "raw_events", ["subject", "event_time"], unique=False)
    op.create_table(
        "rescore_queue",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_ids", postgresql.ARRAY(sa.Text(collation="C")), nullable=False),
        sa.Column("latest_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rescore_queue")),
    )
    op.create_table(
        "tickets",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("ticket_id", sa.Text(collation="C"), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("priority", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("category_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("csat", sa.SmallInteger(), nullable=True),
        sa.Column("csat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("reopenings", sa.Integer(), nullable=False),
        sa.Column("last_event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "ticket_id", name=op.f("pk_tickets")),
    )
    op.create_table(
        "usage_daily",
        sa.Column("account_id", sa.Text(collation="C"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False, comment="UTC day of the event time"),
        sa.Column("metric", sa.Text(collation="C"), nullable=False),
        sa.Column("quantity", sa.Numeric(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column(
            "users",
            postgresql.ARRAY(sa.Text(collation="C")),
            nullable=False,
            comment="distinct user ids active that day",
        ),
        sa.PrimaryKeyConstraint("account_id", "day", "metric", name=op.f("pk_usage_daily")),
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("tickets")
    op.drop_table("rescore_queue")
    op.drop_index("ix_raw_events_subject_time", table_name="raw_events")
    op.drop_table("raw_events")
    op.drop_table("outcomes")
    op.drop_table("kams")
    op.drop_table("invoices")
    op.drop_table("event_keys")
    op.drop_table("engagements")
    op.drop_index("uq_dead_letters_origin", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("contacts")
    op.drop_index("ix_accounts_parent_account_id", table_name="accounts")
    op.drop_index("ix_accounts_owner_kam_id", table_name="accounts")
    op.drop_table("accounts")
