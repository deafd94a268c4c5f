"""Dead letters keep a Kafka record's headers and key, and are published to the DLQ topic from the table

Revision ID: 0073
Revises: 0072

A rejected Kafka record was published to the DLQ topic from the consuming handler, after the batch's commit: a
failed publish (a record over the producer's size limit, a missing topic) failed and rewound the batch, and a
batch re-read after a crash published its dead letters again. Now the batch's transaction only records them
(with the record's headers and key, so that a binary-mode CloudEvent keeps its attributes) and a relay publishes
what is not yet published. ``claimed_until``: a relay holds the letter until then (a relay that dies lets it go
when that time passes); ``publishing_since``: it may be on the topic since then (a relay handed it to its
producer without hearing back), so the next relay looks for it there before sending it again; ``published_at``:
it is on the topic. Dead letters stored before this revision were published by the handler.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0073"
down_revision: str | None = "0072"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dead_letters",
        sa.Column("headers", JSONB, comment="a Kafka record's headers, as received: [[name, value], ...]"),
    )
    op.add_column("dead_letters", sa.Column("record_key", sa.LargeBinary, comment="a Kafka record's key"))
    op.add_column(
        "dead_letters",
        sa.Column("claimed_until", sa.DateTime(timezone=True), comment="held by a relay for the DLQ topic until"),
    )
    op.add_column(
        "dead_letters",
        sa.Column("publishing_since", sa.DateTime(timezone=True), comment="may be on the DLQ topic since"),
    )
    op.add_column(
        "dead_letters",
        sa.Column("published_at", sa.DateTime(timezone=True), comment="published to the DLQ topic (Kafka only)"),
    )
    op.execute("UPDATE dead_letters SET published_at = received_at WHERE ingress = 'kafka'")
    op.create_index(
        "ix_dead_letters_unpublished",
        "dead_letters",
        ["id"],
        postgresql_where=sa.text("ingress = 'kafka' AND published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_dead_letters_unpublished", table_name="dead_letters")
    for column in ("published_at", "publishing_since", "claimed_until", "record_key", "headers"):
        op.drop_column("dead_letters", column)
