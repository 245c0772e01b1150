"""the co-signature: per unit and valid version, the request to the verneombud, its reminder and
their answer

Revision ID: 0002_cosign
Revises: 0001_initial
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_cosign"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cosign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("asked_to", sa.String(320), nullable=False),
        sa.Column("asked_at", TS, nullable=False),
        sa.Column("request_outbox_id", sa.Integer(), nullable=True),
        sa.Column("request_message_id", sa.String(255), nullable=False),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("reminder_message_id", sa.String(255), nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("reading", sa.String(16), nullable=True),
        sa.Column("words", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(320), nullable=True),
        sa.Column("answered_by_name", sa.Text(), nullable=True),
        sa.Column("answer_inbound_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_cosign_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_cosign_unit_id_units"),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name="fk_cosign_submission_id_submissions"
        ),
        sa.ForeignKeyConstraint(
            ["request_outbox_id"], ["outbox.id"], name="fk_cosign_request_outbox_id_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["answer_inbound_id"], ["inbound.id"], name="fk_cosign_answer_inbound_id_inbound"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cosign"),
        sa.UniqueConstraint("submission_id", name="uq_cosign_submission_id"),
    )
    op.create_index("ix_cosign_unit_id", "cosign", ["unit_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_cosign_unit_id", table_name="cosign")
    op.drop_table("cosign")
