"""Account lifecycle (the account_state view), feedback by channel, Slack interactions seen once

Revision ID: 0050
Revises: 0071

``account_state`` derives, per account, what its outcomes say about it: an outcome newer than the account's
profile (its newest ``kamwatch.account.v1`` event; the outcome wins a tie) decides. ``churned`` closes the
account (status ``closed``, with the date and reason); ``renewed``/``expanded``/``downgraded`` carry the ARR
after (``arr_after``) and the next renewal (the old one moved on by whole years past the outcome) until a
newer profile says otherwise; a later profile event reopens a closed account. Derived when read, from the
stored rows alone, so it does not depend on the order events arrived in.

``alert_feedback.via`` says where a verdict came from (api, cli, slack, email, widget).
``slack_interactions`` keeps each signed Slack request for a while, so a replayed one changes nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0050"
down_revision: str | None = "0071"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_STATE_VIEW = """
CREATE VIEW account_state AS
SELECT a.account_id,
       CASE WHEN o.outcome = 'churned' THEN 'closed' ELSE 'open' END AS status,
       o.outcome,
       o.event_time AS outcome_at,
       o.reason AS outcome_reason,
       CASE WHEN o.outcome IN ('renewed', 'expanded', 'downgraded') AND o.arr_after IS NOT NULL
            THEN o.arr_after ELSE a.arr END AS arr,
       CASE WHEN o.outcome IN ('renewed', 'expanded', 'downgraded') AND a.renewal_date IS NOT NULL
                 AND a.renewal_date <= (o.event_time AT TIME ZONE 'UTC')::date
            THEN (a.renewal_date + make_interval(years =>
                    date_part('year', age((o.event_time AT TIME ZONE 'UTC')::date, a.renewal_date))::int + 1))::date
            ELSE a.renewal_date END AS renewal_date
FROM accounts a
LEFT JOIN LATERAL (
    SELECT x.outcome, x.event_time, x.reason, x.arr_after FROM outcomes x
    WHERE x.account_id = a.account_id AND x.event_time >= a.last_event_time
    ORDER BY x.event_time DESC, x.event_id COLLATE "C" DESC
    LIMIT 1
) o ON true
"""


def upgrade() -> None:
    op.execute(ACCOUNT_STATE_VIEW)
    op.add_column(
        "alert_feedback",
        sa.Column("via", sa.Text(), nullable=True, comment="api, cli, slack, email or widget"),
    )
    op.create_table(
        "slack_interactions",
        sa.Column("signature", sa.Text(), nullable=False, comment="Slack's signature of the request"),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_slack_interactions")),
    )


def downgrade() -> None:
    op.drop_table("slack_interactions")
    op.drop_column("alert_feedback", "via")
    op.execute("DROP VIEW account_state")
