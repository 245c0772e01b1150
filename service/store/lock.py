"""The runner lock's SQL: one row per campaign with a holder and an expiry.

The rules around it (who may take it, renewing it, taking it from a dead holder) live in
``service.jobs.lease``; this is only the conditional updates that make it safe on one database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from service.store import tables as t
from service.store.base import StoreBase, aware


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


class LockStore(StoreBase):
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
