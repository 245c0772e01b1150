"""The co-signature's SQL: per unit and valid version, the request to the verneombud, its one
reminder and their answer; and per unit, the facts its co-signature stage is built from.

One row per valid version asked about (``tables.cosign``, unique by submission): asking again
about the same version changes nothing. The newest answer to a request counts (a verneombud who
first writes "Enig" and then a comment has a comment); every answer is also an event
(``cosign.answered``), so the history stays. ``campaign.cosign`` turns a ``CosignRecord`` into
the typed stage; nothing here decides anything.

The ``*_in`` functions run inside the caller's transaction, so the inbox can record an answer
together with its decision and the mails it queues (as ``outbox.queue_in`` does); the
``CosignStore`` methods are the same, each one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.errors import StoreError, UnknownUnitError
from service.models import MessageKind
from service.store import tables as t
from service.store.base import StoreBase, add_event, aware
from service.store.reports import AwayFact, FailureFact

READINGS = ("confirmed", "disputed")
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class CosignRequest:
    """One request to a unit's verneombud, about one valid version, and what came of it."""

    id: int
    unit_code: str
    version: int
    asked_to: str
    asked_at: dt.datetime
    request_message_id: str
    reminded_at: dt.datetime | None = None
    reminder_message_id: str | None = None
    answered_at: dt.datetime | None = None
    reading: str | None = None  # confirmed, disputed
    words: str | None = None
    answered_by: str | None = None
    answered_by_name: str | None = None

    @property
    def message_ids(self) -> tuple[str, ...]:
        """Our Message-IDs a reply to this request may name (In-Reply-To, References)."""
        return tuple(m for m in (self.request_message_id, self.reminder_message_id) if m)


@dataclass(frozen=True)
class CosignRecord:
    """One unit's co-signature facts: its newest request (None: never asked), the roster's
    verneombud address now, their newest out-of-office reply and their failing address."""

    code: str
    verneombud_email: str
    request: CosignRequest | None
    away: AwayFact | None = None
    failure: FailureFact | None = None


class CosignStore(StoreBase):
    def record_cosign_request(
        self,
        campaign_id: str,
        unit_code: str,
        *,
        version: int,
        message_id: str,
        asked_to: str,
        now: dt.datetime,
    ) -> CosignRequest:
        """The verneombud was asked (``message_id``: the request's, queued in the outbox) to
        confirm ``version``; the request already recorded for that version when there is one."""
        with self._tx() as conn:
            return request_in(
                conn,
                campaign_id,
                unit_code,
                version=version,
                message_id=message_id,
                asked_to=asked_to,
                now=now,
            )

    def record_cosign_reminder(self, request_id: int, *, message_id: str, now: dt.datetime) -> bool:
        """The one reminder went (``message_id``); False when the request already had one."""
        c = t.cosign
        with self._tx() as conn:
            done = conn.execute(
                c.update()
                .where(c.c.id == request_id, c.c.reminded_at.is_(None))
                .values(reminded_at=now, reminder_message_id=message_id)
            ).rowcount
            if done:
                row = conn.execute(sa.select(c.c.campaign_id, c.c.unit_id).where(c.c.id == request_id)).one()
                add_event(
                    conn, row.campaign_id, row.unit_id, "cosign.reminded", {"request": request_id}, at=now
                )
        return bool(done)

    def record_cosign_answer(
        self,
        request_id: int,
        *,
        reading: str,
        words: str,
        answered_by: str,
        answered_by_name: str = "",
        inbound_id: int | None = None,
        at: dt.datetime,
    ) -> CosignRequest:
        """The answer to request ``request_id``, received ``at``: it replaces an earlier one."""
        with self._tx() as conn:
            return answer_in(
                conn,
                request_id,
                reading=reading,
                words=words,
                answered_by=answered_by,
                answered_by_name=answered_by_name,
                inbound_id=inbound_id,
                at=at,
            )

    def cosign_request_for(self, campaign_id: str, message_ids: Sequence[str]) -> CosignRequest | None:
        """The request a reply answers: the one whose request or reminder has one of the reply's
        ``message_ids`` (its In-Reply-To and References); None when it names neither."""
        ids = [m for m in message_ids if m]
        if not ids:
            return None
        c = t.cosign
        with self._tx() as conn:
            row = conn.execute(
                _requests()
                .where(
                    c.c.campaign_id == campaign_id,
                    sa.or_(c.c.request_message_id.in_(ids), c.c.reminder_message_id.in_(ids)),
                )
                .order_by(c.c.version.desc())
                .limit(1)
            ).first()
        return _request(row) if row is not None else None

    def cosign_requests(self, campaign_id: str, unit_code: str) -> list[CosignRequest]:
        """Every request about the unit's versions, oldest first."""
        c, u = t.cosign, t.units
        with self._tx() as conn:
            rows = conn.execute(
                _requests()
                .where(c.c.campaign_id == campaign_id, sa.func.upper(u.c.code) == unit_code.strip().upper())
                .order_by(c.c.version)
            ).all()
        return [_request(r) for r in rows]

    def cosign_records(self, campaign_id: str, *, include_inactive: bool = True) -> dict[str, CosignRecord]:
        """Every unit's co-signature facts by unit code, from one transaction: its newest request,
        the verneombud's newest out-of-office reply (from their address, whichever unit it
        was matched to: one person may be verneombud for several) and their failing address."""
        u, c, i, f = t.units, t.cosign, t.inbound, t.address_failures
        where = [u.c.campaign_id == campaign_id, *([] if include_inactive else [u.c.active.is_(True)])]
        with self._tx() as conn:
            units = conn.execute(sa.select(u.c.code, u.c.verneombud_email).where(*where)).all()
            newest: dict[str, CosignRequest] = {}
            for row in conn.execute(_requests().where(c.c.campaign_id == campaign_id).order_by(c.c.version)):
                newest[row.code] = _request(row)  # by version: the last one wins
            away: dict[str, AwayFact] = {}
            for row in conn.execute(
                sa.select(i.c.sender, i.c.received_at, i.c.detail)
                .where(i.c.campaign_id == campaign_id, i.c.kind == MessageKind.AUTO_REPLY.value)
                .order_by(i.c.received_at)
            ):
                back = (row.detail or {}).get("returns_on")
                away[row.sender.lower()] = AwayFact(
                    row.sender,
                    aware(row.received_at) or _NEVER,
                    dt.date.fromisoformat(back) if back else None,
                )
            failures = {
                r.address.lower(): FailureFact(r.address, r.reason, aware(r.since) or _NEVER)
                for r in conn.execute(
                    sa.select(f.c.address, f.c.reason, f.c.since).where(f.c.campaign_id == campaign_id)
                )
            }
        return {
            code: CosignRecord(
                code,
                email,
                newest.get(code),
                away.get(email.lower()) if email else None,
                failures.get(email.lower()) if email else None,
            )
            for code, email in units
        }


def request_in(
    conn: Connection,
    campaign_id: str,
    unit_code: str,
    *,
    version: int,
    message_id: str,
    asked_to: str,
    now: dt.datetime,
) -> CosignRequest:
    """``CosignStore.record_cosign_request`` inside the caller's transaction."""
    u, s, c, o = t.units, t.submissions, t.cosign, t.outbox
    unit = conn.execute(
        sa.select(u.c.id, u.c.code).where(
            u.c.campaign_id == campaign_id, sa.func.upper(u.c.code) == unit_code.strip().upper()
        )
    ).first()
    if unit is None:
        raise UnknownUnitError(unit_code)
    form = conn.execute(
        sa.select(s.c.id, s.c.valid).where(s.c.unit_id == unit.id, s.c.version == version)
    ).first()
    if form is None or not form.valid:
        what = "no such version" if form is None else "that version is not valid"
        raise StoreError(f"unit {unit.code} version {version}: {what}; only a valid form is confirmed")
    found = conn.execute(_requests().where(c.c.submission_id == form.id)).first()
    if found is not None:
        return _request(found)
    outbox_id = conn.execute(sa.select(o.c.id).where(o.c.message_id == message_id)).scalar()
    key = conn.execute(
        c.insert().values(
            campaign_id=campaign_id,
            unit_id=unit.id,
            submission_id=form.id,
            version=version,
            asked_to=asked_to.lower(),
            asked_at=now,
            request_outbox_id=outbox_id,
            request_message_id=message_id,
        )
    ).inserted_primary_key
    assert key is not None
    add_event(
        conn, campaign_id, unit.id, "cosign.asked", {"version": version, "to": asked_to.lower()}, at=now
    )
    return _request(conn.execute(_requests().where(c.c.id == key[0])).one())


def answer_in(
    conn: Connection,
    request_id: int,
    *,
    reading: str,
    words: str,
    answered_by: str,
    answered_by_name: str = "",
    inbound_id: int | None = None,
    at: dt.datetime,
) -> CosignRequest:
    """``CosignStore.record_cosign_answer`` inside the caller's transaction."""
    if reading not in READINGS:
        raise ValueError(f"a co-signature answer is {' or '.join(READINGS)}, not {reading!r}")
    c = t.cosign
    row = conn.execute(sa.select(c.c.campaign_id, c.c.unit_id).where(c.c.id == request_id)).first()
    if row is None:
        raise StoreError(f"no co-signature request {request_id}")
    conn.execute(
        c.update()
        .where(c.c.id == request_id)
        .values(
            answered_at=at,
            reading=reading,
            words=words,
            answered_by=answered_by.lower(),
            answered_by_name=answered_by_name,
            answer_inbound_id=inbound_id,
        )
    )
    detail = {"request": request_id, "reading": reading, "by": answered_by.lower(), "inbound": inbound_id}
    add_event(conn, row.campaign_id, row.unit_id, "cosign.answered", detail, at=at)
    return _request(conn.execute(_requests().where(c.c.id == request_id)).one())


def scrub_cosign_in(conn: Connection, campaign_id: str, cutoff: dt.datetime) -> int:
    """Retention (for ``purge``): the personal data of requests asked before ``cutoff`` (the
    address asked, the words, who answered) removed; the readings and times stay. How many
    rows still held any."""
    c = t.cosign
    personal = sa.or_(
        c.c.asked_to != "",
        c.c.words.is_not(None),
        c.c.answered_by.is_not(None),
        c.c.answered_by_name.is_not(None),
    )
    return int(
        conn.execute(
            c.update()
            .where(c.c.campaign_id == campaign_id, c.c.asked_at < cutoff, personal)
            .values(asked_to="", words=None, answered_by=None, answered_by_name=None)
        ).rowcount
    )


def _requests() -> Any:
    c, u = t.cosign, t.units
    return sa.select(c, u.c.code).join(u, u.c.id == c.c.unit_id)


def _request(row: Any) -> CosignRequest:
    asked_at = aware(row.asked_at)
    assert asked_at is not None
    return CosignRequest(
        id=row.id,
        unit_code=row.code,
        version=row.version,
        asked_to=row.asked_to,
        asked_at=asked_at,
        request_message_id=row.request_message_id,
        reminded_at=aware(row.reminded_at),
        reminder_message_id=row.reminder_message_id,
        answered_at=aware(row.answered_at),
        reading=row.reading,
        words=row.words,
        answered_by=row.answered_by,
        answered_by_name=row.answered_by_name,
    )
