"""The SQL behind reminders, digests, `status` and the workbook: where each unit stands, what
happened in a week, the current answers and the version log. It only reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.models import share_percent
from service.store import tables as t
from service.store.base import StoreBase, aware


@dataclass(frozen=True)
class MailFact:
    """One mail the outbox holds about a unit, oldest first."""

    kind: str  # leader-invitation, leader-reminder-before, leader-correction, escalation, ...
    key: str  # the dedupe key less "campaign:unit:" ("invitation", "reminder-before:2", ...)
    status: str  # queued, sending, sent, bounced, failed (refused when sent)
    at: dt.datetime  # sent, or queued while it waits
    to_address: str


@dataclass(frozen=True)
class VersionFact:
    """One version of a unit's form as stored: when, whether valid, what was wrong or flagged."""

    version: int
    received_at: dt.datetime
    valid: bool
    problems: tuple[dict[str, str], ...]
    flags: tuple[dict[str, str], ...]
    file_name: str
    inbound_id: int | None


@dataclass(frozen=True)
class FailureFact:
    """An address that bounced: since when and what the server said."""

    address: str
    reason: str
    since: dt.datetime


@dataclass(frozen=True)
class AwayFact:
    """The newest out-of-office reply from the leader's address."""

    address: str
    seen_at: dt.datetime
    returns_on: dt.date | None


@dataclass(frozen=True)
class UnitRecord:
    """One unit as the store knows it: the raw facts its state is made of.

    ``unit_records`` reads them for every unit in one transaction; ``campaign.state`` turns a
    record into the typed ``UnitState`` that the rules, the mails, the digests, the workbook, the
    web page and `status` all read. Nothing here decides anything.
    """

    code: str
    faculty: str
    leader_email: str
    active: bool
    mails: tuple[MailFact, ...]
    versions: int  # forms received, valid or not
    first_received_at: dt.datetime | None
    newest: VersionFact | None  # the newest version by time received
    current: VersionFact | None  # the current version: the newest valid one
    failure: FailureFact | None  # the leader's address, while it fails
    away: AwayFact | None  # the leader's newest out-of-office reply
    last_inbound_at: dt.datetime | None
    needs_review: int  # its messages waiting for a person


@dataclass(frozen=True)
class FacultyProgress:
    faculty: str
    units: int
    submitted: int  # units with at least one form received, valid or not
    valid: int  # units whose current version is valid
    missing: int  # active units without a valid form

    @property
    def percent(self) -> int:
        """Whole percent valid, rounded down (``share_percent``, as on every surface)."""
        return share_percent(self.valid, self.units)


class ReportStore(StoreBase):
    def unit_records(self, campaign_id: str, *, include_inactive: bool = True) -> list[UnitRecord]:
        """Every unit (or every active one) with what it has been sent and received, in faculty
        and code order. A handful of grouped queries in one transaction, joined here."""
        u, s, o, i, f = t.units, t.submissions, t.outbox, t.inbound, t.address_failures
        where = [u.c.campaign_id == campaign_id, *([] if include_inactive else [u.c.active.is_(True)])]
        with self._tx() as conn:
            units = conn.execute(
                sa.select(u.c.id, u.c.code, u.c.faculty, u.c.active, u.c.leader_email)
                .where(*where)
                .order_by(u.c.faculty, u.c.code)
            ).all()
            versions = conn.execute(
                sa.select(
                    s.c.unit_id,
                    s.c.version,
                    s.c.received_at,
                    s.c.valid,
                    s.c.current,
                    s.c.problems,
                    s.c.flags,
                    s.c.file_name,
                    s.c.inbound_id,
                )
                .where(s.c.campaign_id == campaign_id)
                .order_by(s.c.unit_id, s.c.received_at, s.c.version)
            ).all()
            failures = {
                r.address.lower(): FailureFact(r.address, r.reason, aware(r.since) or _NEVER)
                for r in conn.execute(
                    sa.select(f.c.address, f.c.reason, f.c.since).where(f.c.campaign_id == campaign_id)
                )
            }
            mails = conn.execute(
                sa.select(
                    o.c.unit_id,
                    o.c.dedupe_key,
                    o.c.kind,
                    o.c.status,
                    o.c.sent_at,
                    o.c.created_at,
                    o.c.to_address,
                )
                .where(o.c.campaign_id == campaign_id, o.c.unit_id.is_not(None))
                .order_by(o.c.id)
            ).all()
            away_rows = conn.execute(
                sa.select(i.c.unit_id, i.c.sender, i.c.received_at, i.c.detail)
                .where(i.c.campaign_id == campaign_id, i.c.kind == "auto-reply", i.c.unit_id.is_not(None))
                .order_by(i.c.received_at)
            ).all()
            last_in = dict(
                conn.execute(
                    sa.select(i.c.unit_id, sa.func.max(i.c.received_at))
                    .where(i.c.campaign_id == campaign_id)
                    .group_by(i.c.unit_id)
                ).all()
            )
            review: dict[int, int] = dict(
                conn.execute(
                    sa.select(i.c.unit_id, sa.func.count())
                    .where(i.c.campaign_id == campaign_id, i.c.outcome == "review")
                    .group_by(i.c.unit_id)
                ).all()
            )
        mails_of, versions_of, away_of = _by_unit(mails), _by_unit(versions), _by_unit(away_rows)
        out = []
        for uid, code, faculty, active, email in units:
            prefix = f"{campaign_id}:{code}:"
            forms = versions_of.get(uid, [])  # by time received
            newest, current = _newest_and_current(forms)
            leader_away = [a for a in away_of.get(uid, []) if a.sender.lower() == email.lower()]
            out.append(
                UnitRecord(
                    code=code,
                    faculty=faculty,
                    leader_email=email,
                    active=bool(active),
                    mails=tuple(
                        MailFact(
                            r.kind,
                            r.dedupe_key.removeprefix(prefix),
                            r.status,
                            aware(r.sent_at) or aware(r.created_at) or _NEVER,
                            r.to_address,
                        )
                        for r in mails_of.get(uid, [])
                    ),
                    versions=len(forms),
                    first_received_at=aware(forms[0].received_at) if forms else None,
                    newest=newest,
                    current=current,
                    failure=failures.get(email.lower()),
                    away=away_fact(leader_away[-1]) if leader_away else None,
                    last_inbound_at=aware(last_in.get(uid)),
                    needs_review=int(review.get(uid, 0)),
                )
            )
        return out

    def faculty_progress(self, campaign_id: str) -> list[FacultyProgress]:
        """Per faculty: active units, units that sent anything, units with a valid form, missing."""
        s = t.submissions
        any_sub = sa.exists().where(s.c.unit_id == t.units.c.id)
        valid_sub = sa.exists().where(s.c.unit_id == t.units.c.id, s.c.current.is_(True), s.c.valid.is_(True))
        query = (
            sa.select(
                t.units.c.faculty,
                sa.func.count().label("units"),
                sa.func.sum(sa.case((any_sub, 1), else_=0)).label("submitted"),
                sa.func.sum(sa.case((valid_sub, 1), else_=0)).label("valid"),
            )
            .where(t.units.c.campaign_id == campaign_id, t.units.c.active.is_(True))
            .group_by(t.units.c.faculty)
            .order_by(t.units.c.faculty)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            FacultyProgress(
                r.faculty, r.units, int(r.submitted or 0), int(r.valid or 0), r.units - int(r.valid or 0)
            )
            for r in rows
        ]

    def events(self, campaign_id: str, kind_prefix: str = "") -> list[dict[str, Any]]:
        query = (
            sa.select(t.events.c.at, t.events.c.kind, t.events.c.detail, t.units.c.code)
            .outerjoin(t.units, t.units.c.id == t.events.c.unit_id)
            .where(t.events.c.campaign_id == campaign_id, t.events.c.kind.startswith(kind_prefix))
            .order_by(t.events.c.id)
        )
        with self._tx() as conn:
            return [
                {"at": r.at, "kind": r.kind, "unit": r.code, "detail": r.detail} for r in conn.execute(query)
            ]

    def current_submission(self, campaign_id: str, code: str) -> dict[str, Any] | None:
        """The unit's current valid version: answers and flags as stored, version, time."""
        s, u = t.submissions, t.units
        with self._tx() as conn:
            row = conn.execute(
                sa.select(s.c.answers, s.c.flags, s.c.version, s.c.received_at)
                .join(u, u.c.id == s.c.unit_id)
                .where(
                    u.c.campaign_id == campaign_id,
                    u.c.code == code,
                    s.c.current.is_(True),
                    s.c.valid.is_(True),
                )
            ).first()
        if row is None:
            return None
        return {
            "answers": row.answers,
            "flags": list(row.flags),
            "version": row.version,
            "received_at": aware(row.received_at),
        }

    # -- the master workbook (read in streams: 10,000 answer sets never sit in memory) ----------

    def _unit_filter(self, campaign_id: str, faculty: str | None) -> list[Any]:
        u = t.units
        return [u.c.campaign_id == campaign_id, *([u.c.faculty == faculty] if faculty else [])]

    def current_versions(self, campaign_id: str, faculty: str | None = None) -> Iterator[dict[str, Any]]:
        """The current valid version of each active unit, by faculty and code, streamed."""
        u, s = t.units, t.submissions
        query = (
            sa.select(u.c.code, s.c.version, s.c.received_at, s.c.answers, s.c.flags)
            .join(u, u.c.id == s.c.unit_id)
            .where(
                *self._unit_filter(campaign_id, faculty),
                u.c.active.is_(True),
                s.c.current.is_(True),
                s.c.valid.is_(True),
            )
            .order_by(u.c.faculty, u.c.code)
        )
        yield from self._stream(query)

    def version_log(self, campaign_id: str, faculty: str | None = None) -> Iterator[dict[str, Any]]:
        """Every version received, with its provenance and problems, by faculty, code and version,
        streamed."""
        u, s, i = t.units, t.submissions, t.inbound
        query = (
            sa.select(
                u.c.code,
                s.c.version,
                s.c.received_at,
                s.c.valid,
                s.c.problems,
                s.c.sender,
                i.c.message_id,
                s.c.file_name,
                s.c.file_sha256,
            )
            .join(u, u.c.id == s.c.unit_id)
            .outerjoin(i, i.c.id == s.c.inbound_id)
            .where(*self._unit_filter(campaign_id, faculty))
            .order_by(u.c.faculty, u.c.code, s.c.version)
        )
        yield from self._stream(query)

    def _stream(self, query: Any) -> Iterator[dict[str, Any]]:
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True, yield_per=500).execute(query):
                out = dict(row._mapping)
                out["received_at"] = aware(out["received_at"])
                yield out

    def new_submissions(self, campaign_id: str, since: dt.datetime) -> list[dict[str, Any]]:
        """Forms received since ``since``, oldest first, with their unit's code."""
        s, u = t.submissions, t.units
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(u.c.code, s.c.received_at, s.c.version, s.c.valid)
                .join(u, u.c.id == s.c.unit_id)
                .where(s.c.campaign_id == campaign_id, s.c.received_at >= since)
                .order_by(s.c.received_at)
            ).all()
        return [
            {
                "code": r.code,
                "received_at": aware(r.received_at),
                "version": r.version,
                "valid": bool(r.valid),
            }
            for r in rows
        ]


_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _by_unit(rows: Iterable[Any]) -> dict[int, list[Any]]:
    """Rows grouped by their ``unit_id``, in the order they came."""
    out: dict[int, list[Any]] = {}
    for row in rows:
        out.setdefault(row.unit_id, []).append(row)
    return out


def _newest_and_current(forms: Sequence[Any]) -> tuple[VersionFact | None, VersionFact | None]:
    """Of a unit's versions (by time received), the two a state needs: the newest, and the
    current valid one (usually the same). Only these are turned into values."""
    if not forms:
        return None, None
    newest = _version(forms[-1])
    current = next((v for v in reversed(forms) if v.current and v.valid), None)
    if current is None:
        return newest, None
    return newest, newest if current is forms[-1] else _version(current)


def _version(row: Any) -> VersionFact:
    return VersionFact(
        row.version,
        aware(row.received_at) or _NEVER,
        bool(row.valid),
        tuple(row.problems or ()),
        tuple(row.flags or ()),
        row.file_name,
        row.inbound_id,
    )


def away_fact(row: Any) -> AwayFact:
    """An out-of-office reply's row (sender, received_at, detail) as an ``AwayFact``."""
    back = (row.detail or {}).get("returns_on")
    return AwayFact(
        row.sender, aware(row.received_at) or _NEVER, dt.date.fromisoformat(back) if back else None
    )
