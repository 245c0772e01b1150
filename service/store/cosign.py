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
from service.models import MessageKind, NewMail
from service.store import tables as t
from service.store.base import StoreBase, add_event, aware
from service.store.outbox import queue_in
from service.store.reports import AwayFact, FailureFact, away_fact

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


@dataclass(frozen=True)
class CosignRecord:
    """One unit's co-signature facts: its newest request (None: never asked), the roster's
    verneombud address now, their newest out-of-office reply and their failing address."""

    code: str
    verneombud_email: str
    request: CosignRequest | None
    away: AwayFact | None = None
    failure: FailureFact | None = None


@dataclass(frozen=True)
class CosignVersion:
    """One valid version of a unit's form, as a request about it needs it: its answers (as
    stored), who sent it and when, and the message that brought it (its archived bytes hold the
    leader's own file; ``raw_path`` and ``message_id`` are "" when no message is known)."""

    unit_code: str
    version: int
    received_at: dt.datetime
    sender: str
    answers: dict[str, Any]
    file_name: str
    file_sha256: str
    raw_path: str = ""
    message_id: str = ""


@dataclass(frozen=True)
class CosignCandidate:
    """An active unit whose current valid version has no request yet (``cosign_candidates``):
    that version, the roster's two addresses, the newest request about an earlier version and
    that version's answers (so a version that changes nothing is not asked about again), and our
    invitation's Message-ID (a request threads under the leader's message, else under it), and
    whether either address is known to fail."""

    version: CosignVersion
    verneombud_email: str
    leader_email: str
    earlier: CosignRequest | None = None
    earlier_answers: dict[str, Any] | None = None
    invitation_message_id: str = ""
    verneombud_failing: bool = False
    leader_failing: bool = False


class CosignStore(StoreBase):
    def cosign_candidates(self, campaign_id: str) -> list[CosignCandidate]:
        """Every active unit whose current valid version has no request yet, by code, in one
        transaction. A unit whose newest version repeats the answers already asked about stays
        a candidate (the rules pass it by): such resends are few."""
        u, s, c, o, f = t.units, t.submissions, t.cosign, t.outbox, t.address_failures
        asked = sa.exists().where(c.c.submission_id == s.c.id)
        with self._tx() as conn:
            rows = conn.execute(
                _versions()
                .add_columns(u.c.id.label("unit_id"), u.c.verneombud_email, u.c.leader_email)
                .where(
                    u.c.campaign_id == campaign_id,
                    u.c.active.is_(True),
                    s.c.current.is_(True),
                    s.c.valid.is_(True),
                    sa.not_(asked),
                )
                .order_by(u.c.code)
            ).all()
            if not rows:
                return []
            unit_ids = [r.unit_id for r in rows]
            earlier: dict[int, Any] = {}
            for row in conn.execute(
                _requests()
                .add_columns(s.c.answers.label("asked_answers"))
                .join(s, s.c.id == c.c.submission_id)
                .where(c.c.unit_id.in_(unit_ids))
                .order_by(c.c.version)
            ):
                earlier[row.unit_id] = row  # by version: the newest wins
            invitations = dict(
                conn.execute(
                    sa.select(o.c.unit_id, o.c.message_id).where(
                        o.c.campaign_id == campaign_id,
                        o.c.unit_id.in_(unit_ids),
                        o.c.kind == "leader-invitation",
                        o.c.status != "failed",
                    )
                ).all()
            )
            failing = set(
                conn.execute(sa.select(f.c.address).where(f.c.campaign_id == campaign_id)).scalars()
            )
        out = []
        for r in rows:
            before = earlier.get(r.unit_id)
            out.append(
                CosignCandidate(
                    _version(r),
                    r.verneombud_email,
                    r.leader_email,
                    _request(before) if before is not None else None,
                    dict(before.asked_answers) if before is not None else None,
                    invitations.get(r.unit_id, ""),
                    r.verneombud_email.lower() in failing,
                    r.leader_email.lower() in failing,
                )
            )
        return out

    def cosign_version(self, campaign_id: str, unit_code: str, version: int) -> CosignVersion | None:
        """Version ``version`` of the unit's form, as a request or an answer about it needs it."""
        u, s = t.units, t.submissions
        with self._tx() as conn:
            row = conn.execute(
                _versions().where(
                    u.c.campaign_id == campaign_id,
                    sa.func.upper(u.c.code) == unit_code.strip().upper(),
                    s.c.version == version,
                )
            ).first()
        return _version(row) if row is not None else None

    def queue_cosign_request(
        self,
        campaign_id: str,
        mail: NewMail,
        *,
        unit_code: str,
        version: int,
        asked_to: str,
        now: dt.datetime,
    ) -> bool:
        """Queue the request ``mail`` and record it, in one transaction: a crash leaves both or
        neither. False (nothing queued) when that version was asked about already."""
        with self._tx() as conn:
            if _asked(conn, campaign_id, unit_code, version):
                return False
            queue_in(conn, campaign_id, [mail], now, self.unit_ids(conn, campaign_id))
            request_in(
                conn,
                campaign_id,
                unit_code,
                version=version,
                message_id=mail.message_id,
                asked_to=asked_to,
                now=now,
            )
        return True

    def queue_cosign_reminder(
        self, campaign_id: str, request_id: int, mail: NewMail, *, now: dt.datetime
    ) -> bool:
        """Queue the one reminder ``mail`` and record it on request ``request_id``, in one
        transaction; False (nothing queued) when the request already had its reminder."""
        with self._tx() as conn:
            if not _remind_in(conn, request_id, mail.message_id, now):
                return False
            queue_in(conn, campaign_id, [mail], now, self.unit_ids(conn, campaign_id))
        return True

    def cosign_requests_to(self, campaign_id: str, address: str) -> list[CosignRequest]:
        """Each unit's newest request, of the units whose newest request went to ``address``
        (a reply from that address without a thread or a reference may answer one of them)."""
        c, later = t.cosign, t.cosign.alias("later_request")
        newest = (
            sa.select(sa.func.max(later.c.version))
            .where(later.c.unit_id == c.c.unit_id)
            .correlate(c)
            .scalar_subquery()
        )
        with self._tx() as conn:
            rows = conn.execute(
                _requests().where(
                    c.c.campaign_id == campaign_id,
                    c.c.asked_to == address.strip().lower(),
                    c.c.version == newest,
                )
            ).all()
        return [_request(r) for r in rows]

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
        with self._tx() as conn:
            return _remind_in(conn, request_id, message_id, now)

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

    def cosign_may_answer(
        self, campaign_id: str, message_ids: Sequence[str], sender: str, unit_codes: Sequence[str]
    ) -> bool:
        """Whether any request could be the one a message answers: one in its thread
        (``message_ids``), one sent to ``sender``, or one about a unit it names. One query, so
        the inbox pays almost nothing for the many messages that answer no request."""
        c, u = t.cosign, t.units
        ids = [m for m in message_ids if m]
        could = [c.c.asked_to == sender.strip().lower()]
        if ids:
            could += [c.c.request_message_id.in_(ids), c.c.reminder_message_id.in_(ids)]
        if unit_codes:
            could.append(sa.func.upper(u.c.code).in_([code.strip().upper() for code in unit_codes]))
        with self._tx() as conn:
            row = conn.execute(
                sa.select(c.c.id)
                .join(u, u.c.id == c.c.unit_id)
                .where(c.c.campaign_id == campaign_id, sa.or_(*could))
                .limit(1)
            ).first()
        return row is not None

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
                away[row.sender.lower()] = away_fact(row)
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


def _remind_in(conn: Connection, request_id: int, message_id: str, now: dt.datetime) -> bool:
    """Record the one reminder (``message_id``) on request ``request_id``, with its event;
    False when the request already had one."""
    c = t.cosign
    if not conn.execute(
        c.update()
        .where(c.c.id == request_id, c.c.reminded_at.is_(None))
        .values(reminded_at=now, reminder_message_id=message_id)
    ).rowcount:
        return False
    row = conn.execute(sa.select(c.c.campaign_id, c.c.unit_id).where(c.c.id == request_id)).one()
    add_event(conn, row.campaign_id, row.unit_id, "cosign.reminded", {"request": request_id}, at=now)
    return True


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


def _asked(conn: Connection, campaign_id: str, unit_code: str, version: int) -> bool:
    c, u = t.cosign, t.units
    return (
        conn.execute(
            sa.select(c.c.id)
            .join(u, u.c.id == c.c.unit_id)
            .where(
                c.c.campaign_id == campaign_id,
                sa.func.upper(u.c.code) == unit_code.strip().upper(),
                c.c.version == version,
            )
        ).first()
        is not None
    )


def _versions() -> Any:
    """A unit's versions with the message that brought each (if it is known)."""
    u, s, i = t.units, t.submissions, t.inbound
    return (
        sa.select(
            u.c.code,
            s.c.version,
            s.c.received_at,
            s.c.sender,
            s.c.answers,
            s.c.file_name,
            s.c.file_sha256,
            i.c.raw_path,
            i.c.message_id,
        )
        .join(u, u.c.id == s.c.unit_id)
        .outerjoin(i, i.c.id == s.c.inbound_id)
    )


def _version(row: Any) -> CosignVersion:
    received_at = aware(row.received_at)
    assert received_at is not None
    return CosignVersion(
        unit_code=row.code,
        version=row.version,
        received_at=received_at,
        sender=row.sender,
        answers=dict(row.answers or {}),
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        raw_path=row.raw_path or "",
        message_id=row.message_id or "",
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
