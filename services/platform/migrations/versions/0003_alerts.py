"""alerts, their transitions and feedback, the notification outbox

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.Text(collation="C")
_TZ = sa.DateTime(timezone=True)
_JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dedup_key", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False, comment="firing, acknowledged or resolved"),
        sa.Column("fired_at", _TZ, nullable=False, comment="event time at which the condition became true"),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.Column("resolved_at", _TZ, nullable=True),
        sa.Column("acknowledged_at", _TZ, nullable=True),
        sa.Column("snoozed_until", _TZ, nullable=True),
        sa.Column("escalated_at", _TZ, nullable=True),
        sa.Column("last_notified_at", _TZ, nullable=True),
        sa.Column("delivery", sa.Text(), nullable=True, comment="immediate, digest or folded"),
        sa.Column("folded_into", sa.BigInteger(), nullable=True),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("title_fr", sa.Text(), nullable=False),
        sa.Column("drivers", _JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "uq_alerts_open_dedup_key",
        "alerts",
        ["dedup_key"],
        unique=True,
        postgresql_where=sa.text("state <> 'resolved'"),
    )
    op.create_index("ix_alerts_account_id", "alerts", ["account_id", "fired_at"])
    op.create_table(
        "alert_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False, comment="a KAM id, an API key name, or kamwatch"),
        sa.Column("via", sa.Text(), nullable=False, comment="engine, api, slack, cli"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_transitions")),
    )
    op.create_index("ix_alert_transitions_alert_id", "alert_transitions", ["alert_id", "at"])
    op.create_table(
        "alert_feedback",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False, comment="useful or false_alarm"),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_feedback")),
    )
    op.create_index("ix_alert_feedback_alert_id", "alert_feedback", ["alert_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, comment="immediate, digest, escalation, reminder, resolved"),
        sa.Column("channel", sa.Text(), nullable=False, comment="slack, email, team_channel"),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("kam_id", _ID, nullable=True),
        sa.Column("alert_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column("payload", _JSONB, nullable=False),
        sa.Column("status", sa.Text(), nullable=False, comment="pending, sent or failed"),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("send_after", _TZ, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index(
        "ix_notifications_pending",
        "notifications",
        ["send_after"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("at", _TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    op.create_index("ix_notification_attempts_notification_id", "notification_attempts", ["notification_id"])


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_index("ix_notifications_pending", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("alert_feedback")
    op.drop_table("alert_transitions")
    op.drop_index("ix_alerts_account_id", table_name="alerts")
    op.drop_index("uq_alerts_open_dedup_key", table_name="alerts")
    op.drop_table("alerts")
