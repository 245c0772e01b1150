"""The roster's SQL: the campaign's record and its units, with the history a re-import keeps.

A re-import never deletes a unit: one that left the roster is marked inactive (its forms and mail
stay), and one that comes back is reactivated. Each change is an event in the log.
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
from service.store.base import StoreBase, add_event

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


class RosterStore(StoreBase):
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
                add_event(conn, info.id, None, "campaign.created", values, at=now)
                return True
            changed = {k: v for k, v in values.items() if getattr(found, k) != v}
            if changed:
                conn.execute(
                    t.campaigns.update().where(t.campaigns.c.id == info.id).values(updated_at=now, **changed)
                )
                add_event(conn, info.id, None, "campaign.updated", changed, at=now)
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
                    add_event(conn, campaign_id, uid, "unit.added", values, at=now)
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
                    add_event(conn, campaign_id, row.id, "unit.reactivated", diff, at=now)
                    reactivated.append(code)
                if diff:
                    add_event(conn, campaign_id, row.id, "unit.changed", diff, at=now)
                    changed.append(UnitChange(code, tuple(diff)))
            for code, row in existing.items():
                if code not in incoming and row.active:
                    conn.execute(
                        t.units.update().where(t.units.c.id == row.id).values(active=False, updated_at=now)
                    )
                    add_event(conn, campaign_id, row.id, "unit.removed", {}, at=now)
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

    def former_leader_emails(self, campaign_id: str) -> dict[str, str]:
        """Addresses that led a unit earlier in the campaign -> that unit's code."""
        out: dict[str, str] = {}
        with self._tx() as conn:
            for code, detail in conn.execute(
                sa.select(t.units.c.code, t.events.c.detail)
                .join(t.units, t.units.c.id == t.events.c.unit_id)
                .where(t.events.c.campaign_id == campaign_id, t.events.c.kind == "unit.changed")
            ):
                old = (detail or {}).get("leader_email", {}).get("from")
                if old:
                    out[old.lower()] = code
        return out


def _unit(row: Any) -> Unit:
    return Unit(**{n: getattr(row, n) for n in UNIT_FIELDS})
