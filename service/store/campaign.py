"""The SQL behind reminders, digests and the runner: where each unit stands, what happened in a
week, and the one-runner lock with its heartbeat."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.store import tables as t
from service.store.base import StoreBase, aware


@dataclass(frozen=True)
class UnitSnapshot:
    """One unit as the campaign rules see it."""

    code: str
    faculty: str
    active: bool
    has_valid: bool
    failing: bool  # the leader's address bounced
    sent: frozenset[str]  # outbox keys for this unit ("invitation", "reminder-before:1", ...)
    reminders: tuple[dt.datetime, ...]  # when reminders went out, oldest first
    invited_at: dt.datetime | None
    escalated_at: dt.datetime | None


@dataclass(frozen=True)
class RunnerLock:
    holder: str
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime
    expires_at: dt.datetime
    detail: dict[str, Any]

    def alive(self, now: dt.datetime) -> bool:
        """Held at ``now``: renewed recently enough and not released."""
        return self.expires_at > now


RELEASED = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class CampaignStore(StoreBase):
    def unit_snapshots(self, campaign_id: str) -> list[UnitSnapshot]:
        """Every unit (active or not) with what it has been sent and whether it is done."""
        u, s, o = t.units, t.submissions, t.outbox
        with self._tx() as conn:
            units = conn.execute(
                sa.select(u.c.id, u.c.code, u.c.faculty, u.c.active, u.c.leader_email)
                .where(u.c.campaign_id == campaign_id)
                .order_by(u.c.faculty, u.c.code)
            ).all()
            valid = set(
                conn.execute(
                    sa.select(s.c.unit_id).where(
                        s.c.campaign_id == campaign_id, s.c.current.is_(True), s.c.valid.is_(True)
                    )
                ).scalars()
            )
            failing = set(
                conn.execute(
                    sa.select(t.address_failures.c.address).where(
                        t.address_failures.c.campaign_id == campaign_id
                    )
                ).scalars()
            )
            mails = conn.execute(
                sa.select(o.c.unit_id, o.c.dedupe_key, o.c.kind, o.c.status, o.c.sent_at, o.c.created_at)
                .where(o.c.campaign_id == campaign_id, o.c.unit_id.is_not(None), o.c.status != "failed")
                .order_by(o.c.id)
            ).all()
        per_unit: dict[int, list[Any]] = {}
        for m in mails:
            per_unit.setdefault(m.unit_id, []).append(m)
        out = []
        for uid, code, faculty, active, email in units:
            prefix = f"{campaign_id}:{code}:"
            rows = per_unit.get(uid, [])
            sent = frozenset(r.dedupe_key[len(prefix) :] for r in rows if r.dedupe_key.startswith(prefix))
            when = [(r.kind, aware(r.sent_at) or aware(r.created_at)) for r in rows]
            out.append(
                UnitSnapshot(
                    code,
                    faculty,
                    bool(active),
                    uid in valid,
                    email.lower() in failing,
                    sent,
                    tuple(w for k, w in when if k.startswith("leader-reminder") and w),
                    next((w for k, w in when if k == "leader-invitation"), None),
                    next((w for k, w in when if k == "escalation"), None),
                )
            )
        return out

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

    def last_mail_of_kind(self, campaign_id: str, kind: str, key_prefix: str = "") -> dt.datetime | None:
        o = t.outbox
        with self._tx() as conn:
            value = conn.execute(
                sa.select(sa.func.max(o.c.created_at)).where(
                    o.c.campaign_id == campaign_id, o.c.kind == kind, o.c.dedupe_key.startswith(key_prefix)
                )
            ).scalar()
        return aware(value)

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

    def review_counts(self, campaign_id: str) -> dict[str | None, int]:
        """Messages waiting for a person, by the faculty of their unit (None: no unit known)."""
        i, u = t.inbound, t.units
        with self._tx() as conn:
            rows = conn.execute(
                sa.select(u.c.faculty, sa.func.count())
                .outerjoin(u, u.c.id == i.c.unit_id)
                .where(i.c.campaign_id == campaign_id, i.c.outcome == "review")
                .group_by(u.c.faculty)
            ).all()
        return {faculty: n for faculty, n in rows}

    # -- the runner lock ------------------------------------------------------------------------

    def acquire_runner(self, campaign_id: str, holder: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
        """Take (or renew) the one-runner lock; False while another holder's lock is alive.

        The lock is a row with an expiry: a runner that dies stops renewing it, and another may
        take over once it has expired. The update is conditional, so two runners racing on one
        PostgreSQL cannot both win.
        """
        r = t.runner
        with self._tx() as conn:
            taken = conn.execute(
                r.update()
                .where(r.c.campaign_id == campaign_id, sa.or_(r.c.holder == holder, r.c.expires_at < now))
                .values(
                    holder=holder,
                    heartbeat_at=now,
                    expires_at=now + ttl,
                    acquired_at=sa.case((r.c.holder == holder, r.c.acquired_at), else_=now),
                )
            ).rowcount
            if taken:
                return True
            if conn.execute(sa.select(r.c.id).where(r.c.campaign_id == campaign_id)).first():
                return False
            try:
                with conn.begin_nested():
                    conn.execute(
                        r.insert().values(
                            campaign_id=campaign_id,
                            holder=holder,
                            acquired_at=now,
                            heartbeat_at=now,
                            expires_at=now + ttl,
                            detail={},
                        )
                    )
            except sa.exc.IntegrityError:
                return False  # another runner inserted the row first
            return True

    def heartbeat(
        self, campaign_id: str, holder: str, now: dt.datetime, ttl: dt.timedelta, detail: dict[str, Any]
    ) -> bool:
        r = t.runner
        with self._tx() as conn:
            return bool(
                conn.execute(
                    r.update()
                    .where(r.c.campaign_id == campaign_id, r.c.holder == holder)
                    .values(heartbeat_at=now, expires_at=now + ttl, detail=detail)
                ).rowcount
            )

    def take_over_runner(
        self, campaign_id: str, old: str, holder: str, now: dt.datetime, ttl: dt.timedelta
    ) -> bool:
        """Take the lock from ``old`` (known to be dead), unless someone else took it first."""
        r = t.runner
        with self._tx() as conn:
            return bool(
                conn.execute(
                    r.update()
                    .where(r.c.campaign_id == campaign_id, r.c.holder == old)
                    .values(holder=holder, acquired_at=now, heartbeat_at=now, expires_at=now + ttl)
                ).rowcount
            )

    def release_runner(self, campaign_id: str, holder: str, now: dt.datetime) -> None:
        """Free the lock. It expires at the epoch, not ``now``: a command run with an earlier
        ``--as-of`` must find it free too."""
        r = t.runner
        with self._tx() as conn:
            conn.execute(
                r.update()
                .where(r.c.campaign_id == campaign_id, r.c.holder == holder)
                .values(expires_at=RELEASED, heartbeat_at=now)
            )

    def runner(self, campaign_id: str) -> RunnerLock | None:
        r = t.runner
        with self._tx() as conn:
            row = conn.execute(sa.select(r).where(r.c.campaign_id == campaign_id)).first()
        if row is None:
            return None
        return RunnerLock(
            row.holder,
            aware(row.acquired_at) or dt.datetime.min.replace(tzinfo=dt.UTC),
            aware(row.heartbeat_at) or dt.datetime.min.replace(tzinfo=dt.UTC),
            aware(row.expires_at) or dt.datetime.min.replace(tzinfo=dt.UTC),
            dict(row.detail or {}),
        )
