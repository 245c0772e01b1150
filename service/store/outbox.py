"""The outbox's SQL: one row per mail, with a dedupe key, moving queued -> sending -> sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.models import NewMail
from service.store import tables as t
from service.store.base import StoreBase, aware

# -- the outbox: values ----------------------------------------------------------------------
# A row per mail, created before anything is sent. status: queued -> sending -> sent | failed;
# "sending" is set just before a row's SMTP transaction, so after a crash only the rows left in
# "sending" can have gone out unrecorded.

OUTBOX_STATES = ("queued", "sending", "sent", "failed", "bounced")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    unit_code: str | None
    dedupe_key: str
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    payload: bytes
    status: str
    attempts: int
    last_error: str | None


class OutboxStore(StoreBase):
    def existing_keys(self, campaign_id: str, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        found: set[str] = set()
        with self._tx() as conn:
            for i in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
                found.update(
                    conn.execute(
                        sa.select(t.outbox.c.dedupe_key).where(
                            t.outbox.c.campaign_id == campaign_id,
                            t.outbox.c.dedupe_key.in_(wanted[i : i + 500]),
                        )
                    ).scalars()
                )
        return found

    def queue(self, campaign_id: str, mails: Sequence[NewMail], now: dt.datetime) -> int:
        """Add mails to the outbox in one transaction; a dedupe key already there is skipped."""
        if not mails:
            return 0
        with self._tx() as conn:
            return queue_in(conn, campaign_id, mails, now, self.unit_ids(conn, campaign_id))

    def outbox_rows(
        self, campaign_id: str, statuses: Sequence[str], limit: int | None = None
    ) -> list[OutboxRow]:
        query = (
            sa.select(t.outbox, t.units.c.code)
            .outerjoin(t.units, t.units.c.id == t.outbox.c.unit_id)
            .where(t.outbox.c.campaign_id == campaign_id, t.outbox.c.status.in_(statuses))
            .order_by(t.outbox.c.id)
            .limit(limit)
        )
        with self._tx() as conn:
            return [
                OutboxRow(
                    r.id,
                    r.kind,
                    r.code,
                    r.dedupe_key,
                    r.message_id,
                    tuple(r.recipients),
                    r.subject,
                    r.payload or b"",
                    r.status,
                    r.attempts,
                    r.last_error,
                )
                for r in conn.execute(query)
            ]

    def mark(self, row_id: int, status: str, now: dt.datetime, error: str | None = None) -> None:
        """Move one row to ``status``; "sending" also counts an attempt."""
        self.mark_many([(row_id, status, error)], now)

    def mark_many(self, marks: Sequence[tuple[int, str, str | None]], now: dt.datetime) -> None:
        """Move rows to new states, each ``(row id, status, error)``, in one transaction, in order.

        The send path commits about once per message (a drain's outcomes ride along with the next
        row's "sending"), so the statements are built once (below) and only their parameters change.
        """
        with self._tx() as conn:
            for row_id, status, error in marks:
                assert status in OUTBOX_STATES
                params: dict[str, Any] = {"row_id": row_id, "status": status, "now": now}
                if status == "sent":
                    stmt = _MARK_SENT
                    params["error"] = error[:2000] if error else None
                elif error is not None:
                    stmt, params["error"] = _MARK_WITH_ERROR, error[:2000]
                else:
                    stmt = _MARK_SENDING if status == "sending" else _MARK
                conn.execute(stmt, params)

    def outbox_counts(self, campaign_id: str) -> dict[str, int]:
        query = (
            sa.select(t.outbox.c.status, sa.func.count())
            .where(t.outbox.c.campaign_id == campaign_id)
            .group_by(t.outbox.c.status)
        )
        with self._tx() as conn:
            return {status: n for status, n in conn.execute(query)}

    def outbox_message(self, message_id: str) -> tuple[str, str | None] | None:
        """(kind, unit code) of the mail we sent with ``message_id``, if we sent it."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(t.outbox.c.kind, t.units.c.code)
                .outerjoin(t.units, t.units.c.id == t.outbox.c.unit_id)
                .where(t.outbox.c.message_id == message_id)
            ).first()
        return (row.kind, row.code) if row else None

    def sent_to_since(self, campaign_id: str, address: str, since: dt.datetime) -> int:
        """How many mails went (or are queued) to ``address`` since ``since``: the loop guard."""
        with self._tx() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        t.outbox.c.to_address == address.lower(),
                        t.outbox.c.created_at >= since,
                        t.outbox.c.campaign_id == campaign_id,
                    )
                ).scalar_one()
            )

    def last_mail_of_kind(self, campaign_id: str, kind: str, key_prefix: str = "") -> dt.datetime | None:
        o = t.outbox
        with self._tx() as conn:
            value = conn.execute(
                sa.select(sa.func.max(o.c.created_at)).where(
                    o.c.campaign_id == campaign_id, o.c.kind == kind, o.c.dedupe_key.startswith(key_prefix)
                )
            ).scalar()
        return aware(value)


def queue_in(
    conn: Connection, campaign_id: str, mails: Sequence[NewMail], now: dt.datetime, unit_ids: dict[str, int]
) -> int:
    """Queue ``mails`` inside the caller's transaction (so an inbound message's answers commit
    together with its decision); dedupe keys already in the outbox are skipped."""
    keys = [m.dedupe_key for m in mails]
    existing = set(
        conn.execute(
            sa.select(t.outbox.c.dedupe_key).where(
                t.outbox.c.campaign_id == campaign_id, t.outbox.c.dedupe_key.in_(keys)
            )
        ).scalars()
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "unit_id": unit_ids.get(m.unit_code or ""),
            "kind": m.kind,
            "dedupe_key": m.dedupe_key,
            "message_id": m.message_id,
            "recipients": list(m.recipients),
            "to_address": (m.recipients or ("",))[0].lower(),
            "subject": m.subject,
            "payload": m.payload,
            "status": "queued",
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for m in mails
        if m.dedupe_key not in existing
    ]
    if rows:
        conn.execute(t.outbox.insert(), rows)
    return len(rows)


_BY_ID = t.outbox.update().where(t.outbox.c.id == sa.bindparam("row_id"))
_MARK = _BY_ID.values(status=sa.bindparam("status"), updated_at=sa.bindparam("now"))
_MARK_SENDING = _MARK.values(attempts=t.outbox.c.attempts + 1)
_MARK_WITH_ERROR = _MARK.values(last_error=sa.bindparam("error"))
_MARK_SENT = _MARK.values(sent_at=sa.bindparam("now"), last_error=sa.bindparam("error"))
