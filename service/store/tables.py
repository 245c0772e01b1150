"""The database schema, as SQLAlchemy Core tables. Only ``store/`` and its migrations use it.

Times are stored as timezone-aware UTC (``UtcDateTime()``); SQLite keeps them as ISO
text, so ``store`` re-attaches UTC when it reads them back. The migrations in ``migrations/`` must
produce exactly this schema; a test compares the two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    SQLite has no time zones and hands back naive values; PostgreSQL hands back the session's
    zone. Normalising here means no caller ever compares naive with aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware UTC time")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("title", Text, nullable=False),
    Column("form_id", String(100), nullable=False),
    Column("form_version", Integer, nullable=False),
    Column("opens", Date, nullable=False),
    Column("deadline", Date, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

units = Table(
    "units",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("faculty", String(64), nullable=False),
    Column("leader_name", Text, nullable=False),
    Column("leader_email", String(320), nullable=False),
    Column("language", String(2), nullable=False),
    Column("verneombud_name", Text, nullable=False, default=""),
    Column("verneombud_email", String(320), nullable=False, default=""),
    Column("superior_email", String(320), nullable=False, default=""),
    # a unit that left the roster is deactivated, never deleted: its history stays
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("campaign_id", "code"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("unit_id", ForeignKey("units.id"), nullable=True),
    Column("kind", String(32), nullable=False),
    # e.g. "aml-2020:IE-IDI:reminder:2": one row per step, so nothing is ever sent twice
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("recipients", JSON, nullable=False),
    # the first recipient, for the per-address hourly cap (an index, not a scan of the JSON)
    Column("to_address", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("payload", LargeBinary, nullable=True),
    Column("status", String(16), nullable=False),  # queued, sending, sent, failed, bounced
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Index("ix_outbox_status", "status"),
    Index("ix_outbox_to_address", "to_address", "created_at"),
)

inbound = Table(
    "inbound",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("message_id", String(998), nullable=False),
    Column("folder", String(255), nullable=False),
    Column("uidvalidity", Integer, nullable=False),
    Column("uid", Integer, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("subject", Text, nullable=False),
    Column("raw_path", Text, nullable=False),  # the raw message, archived before processing
    Column("sha256", String(64), nullable=False),
    Column("kind", String(32), nullable=True),  # submission, bounce, auto-reply, question...
    # stored (raw archived, row written) -> processed (decision committed) -> done (moved)
    Column("status", String(16), nullable=False),
    Column("outcome", String(32), nullable=True),  # receipt, correction, review, ignored...
    Column("target_folder", String(255), nullable=True),  # where it goes, decided by processing
    Column("unit_id", ForeignKey("units.id"), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("processed_at", UtcDateTime(), nullable=True),
    UniqueConstraint("folder", "uidvalidity", "uid"),
    Index("ix_inbound_message_id", "message_id"),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("unit_id", ForeignKey("units.id"), nullable=False),
    Column("inbound_id", ForeignKey("inbound.id"), nullable=True),
    Column("version", Integer, nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("sender", String(320), nullable=False),
    Column("valid", Boolean, nullable=False),
    # the unit's current version: its newest valid one by time received
    Column("current", Boolean, nullable=False, default=False),
    Column("answers", JSON, nullable=False),
    Column("problems", JSON, nullable=False),
    Column("flags", JSON, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("unit_id", "version"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("unit_id", ForeignKey("units.id"), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_events_campaign_id", "campaign_id", "at"),
)

mailbox_state = Table(
    "mailbox_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("folder", String(255), nullable=False),
    # a new UIDVALIDITY means every UID changed: rescan from 0 (idempotent by Message-ID)
    Column("uidvalidity", Integer, nullable=False),
    Column("last_uid", Integer, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("campaign_id", "folder"),
)

address_failures = Table(
    "address_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("unit_id", ForeignKey("units.id"), nullable=True),
    Column("inbound_id", ForeignKey("inbound.id"), nullable=True),
    Column("reason", Text, nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    UniqueConstraint("campaign_id", "address"),
)

runner = Table(
    "runner",
    metadata,
    Column("id", Integer, primary_key=True),
    # one row per campaign: whoever holds it (host:pid) is the only one that sends
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False, unique=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("detail", JSON, nullable=False),  # the last run of each job, for `status`
)

cosign = Table(
    "cosign",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("unit_id", ForeignKey("units.id"), nullable=False),
    # the verneombud is asked to confirm one valid version, once: store/cosign.py
    Column("submission_id", ForeignKey("submissions.id"), nullable=False, unique=True),
    Column("version", Integer, nullable=False),
    Column("asked_to", String(320), nullable=False),  # the verneombud's address when asked
    Column("asked_at", UtcDateTime(), nullable=False),
    Column("request_outbox_id", ForeignKey("outbox.id"), nullable=True),
    Column("request_message_id", String(255), nullable=False),
    Column("reminded_at", UtcDateTime(), nullable=True),
    Column("reminder_message_id", String(255), nullable=True),
    Column("answered_at", UtcDateTime(), nullable=True),
    Column("reading", String(16), nullable=True),  # confirmed, disputed; the newest answer counts
    Column("words", Text, nullable=True),  # their own words, verbatim
    Column("answered_by", String(320), nullable=True),
    Column("answered_by_name", Text, nullable=True),
    Column("answer_inbound_id", ForeignKey("inbound.id"), nullable=True),
    Index("ix_cosign_unit_id", "unit_id", "version"),
)
