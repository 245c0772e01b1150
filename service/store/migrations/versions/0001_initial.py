"""initial schema: campaigns, units, outbox, inbound, submissions, events, mailbox state,
address failures

Revision ID: 0001_initial
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("form_id", sa.String(100), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Date(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("faculty", sa.String(64), nullable=False),
        sa.Column("leader_name", sa.Text(), nullable=False),
        sa.Column("leader_email", sa.String(320), nullable=False),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("verneombud_name", sa.Text(), nullable=False),
        sa.Column("verneombud_email", sa.String(320), nullable=False),
        sa.Column("superior_email", sa.String(320), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_units_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_units"),
        sa.UniqueConstraint("campaign_id", "code", name="uq_units_campaign_id"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_outbox_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_outbox_unit_id_units"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_index("ix_outbox_to_address", "outbox", ["to_address", "created_at"])
    op.create_table(
        "inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("raw_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("target_folder", sa.String(255), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("processed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_inbound_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_inbound_unit_id_units"),
        sa.PrimaryKeyConstraint("id", name="pk_inbound"),
        sa.UniqueConstraint("folder", "uidvalidity", "uid", name="uq_inbound_folder"),
    )
    op.create_index("ix_inbound_message_id", "inbound", ["message_id"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_submissions_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_submissions_unit_id_units"),
        sa.ForeignKeyConstraint(["inbound_id"], ["inbound.id"], name="fk_submissions_inbound_id_inbound"),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.UniqueConstraint("unit_id", "version", name="uq_submissions_unit_id"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_events_campaign_id_campaigns"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_events_unit_id_units"),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_campaign_id", "events", ["campaign_id", "at"])
    op.create_table(
        "mailbox_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("uidvalidity", sa.Integer(), nullable=False),
        sa.Column("last_uid", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_mailbox_state_campaign_id_campaigns"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox_state"),
        sa.UniqueConstraint("campaign_id", "folder", name="uq_mailbox_state_campaign_id"),
    )
    op.create_table(
        "address_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name="fk_address_failures_campaign_id_campaigns"
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name="fk_address_failures_unit_id_units"),
        sa.ForeignKeyConstraint(
            ["inbound_id"], ["inbound.id"], name="fk_address_failures_inbound_id_inbound"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_address_failures"),
        sa.UniqueConstraint("campaign_id", "address", name="uq_address_failures_campaign_id"),
    )

    op.create_table(
        "runner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name="fk_runner_campaign_id_campaigns"),
        sa.PrimaryKeyConstraint("id", name="pk_runner"),
        sa.UniqueConstraint("campaign_id", name="uq_runner_campaign_id"),
    )


def downgrade() -> None:
    for table in (
        "runner",
        "address_failures",
        "mailbox_state",
        "events",
        "submissions",
        "inbound",
        "outbox",
        "units",
        "campaigns",
    ):
        op.drop_table(table)
