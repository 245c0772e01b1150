"""The store: campaigns, the roster and the reports; the outbox and the inbox come in from
``store_outbox`` and ``store_inbox``. SQLite by default, any SQLAlchemy URL accepted.

Each public method is one transaction, and the time is always passed in (see ``storebase``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from service.errors import StoreError, UnknownUnitError
from service.models import Unit
from service.store import tables as t
from service.store.base import add_event, aware
from service.store.campaign import CampaignStore, RunnerLock, UnitSnapshot
from service.store.inbox import InboundRow, InboxStore, UnitHistory
from service.store.outbox import OutboxRow, OutboxStore
from service.store.purge import PurgeStore

__all__ = [
    "CampaignInfo",
    "FacultyProgress",
    "InboundRow",
    "OutboxRow",
    "RosterDiff",
    "RunnerLock",
    "Store",
    "UnitChange",
    "UnitHistory",
    "UnitSnapshot",
    "UnitStatus",
]

UNIT_FIELDS = tuple(f.name for f in fields(Unit))


@dataclass(frozen=True)
class CampaignInfo:
    id: str
    title: str
    form_id: str
    form_version: int
    opens: dt.date
    deadline: dt.date
    timezone: str


@dataclass(frozen=True)
class UnitChange:
    code: str
    fields: tuple[str, ...]  # which roster fields changed; empty for added/removed


@dataclass(frozen=True)
class RosterDiff:
    added: tuple[str, ...]
    changed: tuple[UnitChange, ...]
    removed: tuple[str, ...]
    reactivated: tuple[str, ...]
    unchanged: int


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


class Store(OutboxStore, InboxStore, CampaignStore, PurgeStore):
    # -- campaign and roster --------------------------------------------------------------------

    def ensure_campaign(self, info: CampaignInfo, now: dt.datetime) -> bool:
        """Create the campaign row, or bring it in line with the config. True if it was new."""
        values = {
            "title": info.title,
            "form_id": info.form_id,
            "form_version": info.form_version,
            "opens": info.opens,
            "deadline": info.deadline,
            "timezone": info.timezone,
        }
        with self._tx() as conn:
            found = conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == info.id)).first()
            if found is None:
                conn.execute(
                    t.campaigns.insert().values(id=info.id, created_at=now, updated_at=now, **values)
                )
                add_event(conn, info.id, None, now, "campaign.created", values)
                return True
            changed = {k: v for k, v in values.items() if getattr(found, k) != v}
            if changed:
                conn.execute(
                    t.campaigns.update().where(t.campaigns.c.id == info.id).values(updated_at=now, **changed)
                )
                add_event(conn, info.id, None, now, "campaign.updated", changed)
            return False

    def campaign(self, campaign_id: str) -> CampaignInfo:
        with self._tx() as conn:
            row = conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).first()
        if row is None:
            raise StoreError(f"campaign {campaign_id!r} is not in the database; run `skjemapost init`")
        return CampaignInfo(
            row.id, row.title, row.form_id, row.form_version, row.opens, row.deadline, row.timezone
        )

    def import_roster(self, campaign_id: str, roster: Sequence[Unit], now: dt.datetime) -> RosterDiff:
        """Make the campaign's units match ``roster``, in one transaction, logging every change.

        Units missing from the roster are deactivated (never deleted: their mail and submissions
        stay); units that come back are reactivated.
        """
        self.campaign(campaign_id)
        self._unit_ids.pop(campaign_id, None)  # new units get new ids
        incoming = {u.code: u for u in roster}
        added, changed, removed, reactivated = [], [], [], []
        unchanged = 0
        with self._tx() as conn:
            existing = {
                r.code: r
                for r in conn.execute(sa.select(t.units).where(t.units.c.campaign_id == campaign_id))
            }
            for code, unit in incoming.items():
                values = {n: getattr(unit, n) for n in UNIT_FIELDS}
                row = existing.get(code)
                if row is None:
                    key = conn.execute(
                        t.units.insert().values(
                            campaign_id=campaign_id, active=True, created_at=now, updated_at=now, **values
                        )
                    ).inserted_primary_key
                    uid = int(key[0]) if key else None
                    add_event(conn, campaign_id, uid, now, "unit.added", values)
                    added.append(code)
                    continue
                diff = {
                    n: {"from": getattr(row, n), "to": v} for n, v in values.items() if getattr(row, n) != v
                }
                if not diff and row.active:
                    unchanged += 1
                    continue
                conn.execute(
                    t.units.update()
                    .where(t.units.c.id == row.id)
                    .values(active=True, updated_at=now, **values)
                )
                if not row.active:
                    add_event(conn, campaign_id, row.id, now, "unit.reactivated", diff)
                    reactivated.append(code)
                if diff:
                    add_event(conn, campaign_id, row.id, now, "unit.changed", diff)
                    changed.append(UnitChange(code, tuple(diff)))
            for code, row in existing.items():
                if code not in incoming and row.active:
                    conn.execute(
                        t.units.update().where(t.units.c.id == row.id).values(active=False, updated_at=now)
                    )
                    add_event(conn, campaign_id, row.id, now, "unit.removed", {})
                    removed.append(code)
        return RosterDiff(tuple(added), tuple(changed), tuple(removed), tuple(reactivated), unchanged)

    def units(self, campaign_id: str, *, include_inactive: bool = False) -> list[Unit]:
        query = sa.select(t.units).where(t.units.c.campaign_id == campaign_id)
        if not include_inactive:
            query = query.where(t.units.c.active.is_(True))
        with self._tx() as conn:
            return [_unit(r) for r in conn.execute(query.order_by(t.units.c.faculty, t.units.c.code))]

    def unit(self, campaign_id: str, code: str) -> Unit:
        """The unit with ``code`` (active or not); UnknownUnitError if the roster never had it."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(t.units).where(
                    t.units.c.campaign_id == campaign_id,
                    sa.func.upper(t.units.c.code) == code.strip().upper(),
                )
            ).first()
        if row is None:
            raise UnknownUnitError(code)
        return _unit(row)

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

    def unit_status(self, campaign_id: str) -> list[UnitStatus]:
        """Per active unit: invited when, forms received, valid or not, last activity, bounces,
        messages waiting for review. A handful of grouped queries, joined here."""
        u, s, o, i = t.units, t.submissions, t.outbox, t.inbound
        with self._tx() as conn:
            units = conn.execute(
                sa.select(u.c.id, u.c.code, u.c.faculty, u.c.leader_email)
                .where(u.c.campaign_id == campaign_id, u.c.active.is_(True))
                .order_by(u.c.faculty, u.c.code)
            ).all()
            invited = dict(
                conn.execute(
                    sa.select(o.c.unit_id, sa.func.min(o.c.sent_at))
                    .where(
                        o.c.campaign_id == campaign_id,
                        o.c.kind == "leader-invitation",
                        o.c.status.in_(("sent", "bounced")),
                    )
                    .group_by(o.c.unit_id)
                ).all()
            )
            subs = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    sa.select(
                        s.c.unit_id,
                        sa.func.count(),
                        sa.func.max(sa.case((s.c.current.is_(True), 1), else_=0)),
                    )
                    .where(s.c.campaign_id == campaign_id)
                    .group_by(s.c.unit_id)
                )
            }
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
            failing = {
                r.address: r.reason
                for r in conn.execute(
                    sa.select(t.address_failures.c.address, t.address_failures.c.reason).where(
                        t.address_failures.c.campaign_id == campaign_id
                    )
                )
            }
        out = []
        for uid, code, faculty, email in units:
            n, current = subs.get(uid, (0, 0))
            times = [x for x in (aware(invited.get(uid)), aware(last_in.get(uid))) if x]
            reason = failing.get(email.lower())
            out.append(
                UnitStatus(
                    code,
                    faculty,
                    email,
                    aware(invited.get(uid)),
                    n,
                    bool(current),
                    max(times) if times else None,
                    f"{email}: {reason}" if reason else "",
                    review.get(uid, 0),
                )
            )
        return out

    def review_queue(self, campaign_id: str) -> list[InboundRow]:
        """Messages waiting for a person, oldest first."""
        return self.inbound_with_outcome(campaign_id, "review")

    # -- reports --------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class UnitStatus:
    code: str
    faculty: str
    leader_email: str
    invited_at: dt.datetime | None
    versions: int
    valid: bool  # its current version is valid
    last_activity: dt.datetime | None
    bounced: str  # the failing address and why, "" if none
    needs_review: int


def _unit(row: Any) -> Unit:
    return Unit(**{n: getattr(row, n) for n in UNIT_FIELDS})
