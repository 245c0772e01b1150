"""The SQL behind reminders, digests, `status` and the workbook: where each unit stands, what
happened in a week, the current answers and the version log. It only reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.store import tables as t
from service.store.base import StoreBase, aware


@dataclass(frozen=True)
class UnitRecord:
    """One unit as the store knows it: the facts every report and rule starts from.

    Built by ``unit_records`` in one pass, so `status`, the reminders, the digests and the workbook
    never disagree on them. Two times of the invitation are kept, because they answer two questions:
    ``invited_at`` is when the unit counts as invited for the rules: the invitation's sent time, or
    its queued time while it waits (so no reminder is queued beside a waiting invitation);
    ``invitation_sent_at`` is only when it left (sent, or bounced later), which `status` shows.
    """

    code: str
    faculty: str
    leader_email: str
    active: bool
    versions: int  # forms received, valid or not
    has_valid: bool  # its current version is valid
    failure: str | None  # why the leader's address fails, None while it works
    sent: frozenset[str]  # outbox keys for this unit ("invitation", "reminder-before:1", ...)
    reminders: tuple[dt.datetime, ...]  # when reminders went out, oldest first
    invited_at: dt.datetime | None
    invitation_sent_at: dt.datetime | None
    escalated_at: dt.datetime | None
    last_inbound_at: dt.datetime | None
    needs_review: int  # its messages waiting for a person

    @property
    def failing(self) -> bool:
        return self.failure is not None

    @property
    def last_activity(self) -> dt.datetime | None:
        times = [x for x in (self.invitation_sent_at, self.last_inbound_at) if x]
        return max(times) if times else None


@dataclass(frozen=True)
class FacultyProgress:
    faculty: str
    units: int
    submitted: int  # units with at least one form received, valid or not
    valid: int  # units whose current version is valid
    missing: int  # active units without a valid form

    @property
    def percent(self) -> float:
        return 100.0 * self.valid / self.units if self.units else 0.0


class ReportStore(StoreBase):
    def unit_records(self, campaign_id: str, *, include_inactive: bool = True) -> list[UnitRecord]:
        """Every unit (or every active one) with what it has been sent and received, in faculty
        and code order. A handful of grouped queries, joined here."""
        u, s, o, i, f = t.units, t.submissions, t.outbox, t.inbound, t.address_failures
        where = [u.c.campaign_id == campaign_id, *([] if include_inactive else [u.c.active.is_(True)])]
        with self._tx() as conn:
            units = conn.execute(
                sa.select(u.c.id, u.c.code, u.c.faculty, u.c.active, u.c.leader_email)
                .where(*where)
                .order_by(u.c.faculty, u.c.code)
            ).all()
            forms = {
                unit_id: (int(n), bool(valid))
                for unit_id, n, valid in conn.execute(
                    sa.select(
                        s.c.unit_id,
                        sa.func.count(),
                        sa.func.max(
                            sa.case((sa.and_(s.c.current.is_(True), s.c.valid.is_(True)), 1), else_=0)
                        ),
                    )
                    .where(s.c.campaign_id == campaign_id)
                    .group_by(s.c.unit_id)
                )
            }
            failing = dict(
                conn.execute(sa.select(f.c.address, f.c.reason).where(f.c.campaign_id == campaign_id)).all()
            )
            mails = conn.execute(
                sa.select(o.c.unit_id, o.c.dedupe_key, o.c.kind, o.c.status, o.c.sent_at, o.c.created_at)
                .where(o.c.campaign_id == campaign_id, o.c.unit_id.is_not(None), o.c.status != "failed")
                .order_by(o.c.id)
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
        per_unit: dict[int, list[Any]] = {}
        for m in mails:
            per_unit.setdefault(m.unit_id, []).append(m)
        out = []
        for uid, code, faculty, active, email in units:
            prefix = f"{campaign_id}:{code}:"
            rows = per_unit.get(uid, [])
            when = [(r.kind, aware(r.sent_at) or aware(r.created_at)) for r in rows]
            invitations = [r for r in rows if r.kind == "leader-invitation"]
            went = [aware(r.sent_at) for r in invitations if r.status in ("sent", "bounced") and r.sent_at]
            versions, valid = forms.get(uid, (0, False))
            reason = failing.get(email.lower())
            out.append(
                UnitRecord(
                    code=code,
                    faculty=faculty,
                    leader_email=email,
                    active=bool(active),
                    versions=versions,
                    has_valid=valid,
                    failure=reason if reason is not None else None,
                    sent=frozenset(
                        r.dedupe_key[len(prefix) :] for r in rows if r.dedupe_key.startswith(prefix)
                    ),
                    reminders=tuple(w for k, w in when if k.startswith("leader-reminder") and w),
                    invited_at=next((w for k, w in when if k == "leader-invitation"), None),
                    invitation_sent_at=min((w for w in went if w), default=None),
                    escalated_at=next((w for k, w in when if k == "escalation"), None),
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

    def version_summary(
        self, campaign_id: str, faculty: str | None = None
    ) -> tuple[dict[str, tuple[int, dt.datetime]], frozenset[str]]:
        """Per active unit: (versions received, newest receipt time); and the codes whose current
        version is valid."""
        u, s = t.units, t.submissions
        where = [*self._unit_filter(campaign_id, faculty), u.c.active.is_(True)]
        with self._tx() as conn:
            counts = {
                code: (int(n), aware(at) or dt.datetime.min.replace(tzinfo=dt.UTC))
                for code, n, at in conn.execute(
                    sa.select(u.c.code, sa.func.count(s.c.id), sa.func.max(s.c.received_at))
                    .join(u, u.c.id == s.c.unit_id)
                    .where(*where)
                    .group_by(u.c.code)
                )
            }
            valid = frozenset(
                conn.execute(
                    sa.select(u.c.code)
                    .join(s, s.c.unit_id == u.c.id)
                    .where(*where, s.c.current.is_(True), s.c.valid.is_(True))
                ).scalars()
            )
        return counts, valid

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
        """Every version received, with its provenance, by faculty, code and version, streamed."""
        u, s, i = t.units, t.submissions, t.inbound
        query = (
            sa.select(
                u.c.code,
                s.c.version,
                s.c.received_at,
                s.c.valid,
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

    def current_flags(self, campaign_id: str) -> list[tuple[str, list[dict[str, str]]]]:
        """(unit code, flags) of every current valid version that raised any."""
        s, u = t.submissions, t.units
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(u.c.code, s.c.flags)
                .join(u, u.c.id == s.c.unit_id)
                .where(s.c.campaign_id == campaign_id, s.c.current.is_(True), s.c.valid.is_(True))
            ).all()
        return [(code, list(flags)) for code, flags in rows if flags]

    def bounces_since(self, campaign_id: str, since: dt.datetime) -> list[dict[str, Any]]:
        f, u = t.address_failures, t.units
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(u.c.code, f.c.address, f.c.since, f.c.reason)
                .outerjoin(u, u.c.id == f.c.unit_id)
                .where(f.c.campaign_id == campaign_id, f.c.since >= since)
            ).all()
        return [
            {"code": r.code, "address": r.address, "at": aware(r.since), "reason": r.reason} for r in rows
        ]

    def auto_replies_since(self, campaign_id: str, since: dt.datetime) -> list[dict[str, Any]]:
        i, u = t.inbound, t.units
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(u.c.code, i.c.sender, i.c.received_at, i.c.detail)
                .outerjoin(u, u.c.id == i.c.unit_id)
                .where(i.c.campaign_id == campaign_id, i.c.kind == "auto-reply", i.c.received_at >= since)
                .order_by(i.c.received_at)
            ).all()
        out = []
        for r in rows:
            back = (r.detail or {}).get("returns_on")
            out.append(
                {
                    "code": r.code,
                    "address": r.sender,
                    "seen_at": aware(r.received_at),
                    "returns_on": dt.date.fromisoformat(back) if back else None,
                }
            )
        return out

    # -- the runner lock ------------------------------------------------------------------------
