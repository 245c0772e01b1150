"""The SQL behind `skjemapost purge`: find the archived raw mail of a campaign, and remove the
personal data from its rows, in one transaction.

What counts as personal, and why, is decided in ``jobs.purge``; this module only knows
the columns. Rows are never deleted (except failing addresses, whose key *is* the address): the
statuses, counts, answers and SHA-256 sums that HR's reports are built from stay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.errors import StoreError
from service.store import tables as t
from service.store.base import StoreBase, add_event
from service.store.cosign import scrub_cosign_in

Scrub = Callable[[Any], Any]  # JSON value in, the same value without personal data out

UNIT_CONTACTS = ("leader_name", "leader_email", "verneombud_name", "verneombud_email", "superior_email")
FINAL_OUTBOX = ("sent", "failed", "bounced")


@dataclass(frozen=True)
class RawFiles:
    """The archived raw messages of rows to purge, split by whether anything else needs them."""

    remove: tuple[str, ...]  # paths only rows being purged refer to
    shared: tuple[str, ...]  # also referred to by a row that is kept (another campaign, or newer)
    rows: int  # inbound rows before the cutoff that still name a file
    in_review: int  # of those, waiting for a person's decision


@dataclass(frozen=True)
class RowsPurged:
    inbound: int = 0
    submissions: int = 0
    outbox: int = 0
    units: int = 0
    events: int = 0
    address_failures: int = 0
    cosign: int = 0  # the co-signature's requests: who was asked, who answered, their words
    outbox_pending: int = 0  # rows before the cutoff not yet sent: kept as they are

    @property
    def total(self) -> int:
        return (
            self.inbound
            + self.submissions
            + self.outbox
            + self.units
            + self.events
            + self.address_failures
            + self.cosign
        )


class PurgeStore(StoreBase):
    def raw_files(self, campaign_id: str, cutoff: dt.datetime) -> RawFiles:
        """The raw files of the campaign's messages received before ``cutoff``."""
        i = t.inbound
        old = sa.and_(i.c.campaign_id == campaign_id, i.c.received_at < cutoff, i.c.raw_path != "")
        with self._tx() as conn:
            rows = conn.execute(sa.select(i.c.raw_path, i.c.outcome).where(old)).all()
            paths = sorted({r.raw_path for r in rows})
            kept: set[str] = set()
            for n in range(0, len(paths), 500):  # stay under SQLite's bound-parameter limit
                kept.update(
                    conn.execute(
                        sa.select(i.c.raw_path).where(i.c.raw_path.in_(paths[n : n + 500]), sa.not_(old))
                    ).scalars()
                )
        return RawFiles(
            tuple(p for p in paths if p not in kept),
            tuple(p for p in paths if p in kept),
            len(rows),
            sum(1 for r in rows if r.outcome == "review"),
        )

    def purge_personal_data(
        self,
        campaign_id: str,
        cutoff: dt.datetime,
        now: dt.datetime,
        *,
        scrub: Scrub,
        event: dict[str, Any] | None,
        dry_run: bool,
        scrub_answers: Scrub | None = None,
    ) -> RowsPurged:
        """Remove personal data from the campaign's rows before ``cutoff`` (and the contacts of
        its units), in one transaction; with ``dry_run`` count the same and roll back.

        ``event``, when given and anything changed, is logged as ``purge.done`` with the counts
        merged in. Only rows that still hold something are touched and counted, so a second run
        changes nothing and reports zeros.
        """
        try:
            with self.engine.connect() as conn:
                tx = conn.begin()
                try:
                    done = RowsPurged(
                        inbound=_inbound(conn, campaign_id, cutoff, scrub),
                        submissions=_submissions(conn, campaign_id, cutoff, scrub_answers),
                        outbox=_outbox(conn, campaign_id, cutoff, scrub),
                        units=_units(conn, campaign_id, now),
                        events=_events(conn, campaign_id, cutoff, scrub),
                        address_failures=_failures(conn, campaign_id, cutoff),
                        cosign=scrub_cosign_in(conn, campaign_id, cutoff),
                        outbox_pending=int(
                            conn.execute(
                                sa.select(sa.func.count()).where(
                                    *_old_outbox(campaign_id, cutoff, final=False)
                                )
                            ).scalar_one()
                        ),
                    )
                    if event is not None and done.total and not dry_run:
                        counts = {k: v for k, v in asdict(done).items() if k != "outbox_pending"}
                        add_event(conn, campaign_id, None, "purge.done", event | {"rows": counts}, at=now)
                except BaseException:
                    tx.rollback()
                    raise
                if dry_run:
                    tx.rollback()
                else:
                    tx.commit()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc
        return done

    def campaign_ids(self) -> list[str]:
        with self._tx() as conn:
            return list(conn.execute(sa.select(t.campaigns.c.id).order_by(t.campaigns.c.id)).scalars())


def _inbound(conn: Connection, campaign_id: str, cutoff: dt.datetime, scrub: Scrub) -> int:
    i = t.inbound
    rows = conn.execute(
        sa.select(i.c.id, i.c.detail).where(
            i.c.campaign_id == campaign_id,
            i.c.received_at < cutoff,
            sa.or_(i.c.sender != "", i.c.subject != "", i.c.raw_path != ""),
        )
    ).all()
    if rows:
        conn.execute(
            i.update()
            .where(i.c.id == sa.bindparam("row_id"))
            .values(sender="", subject="", raw_path="", detail=sa.bindparam("clean")),
            [{"row_id": r.id, "clean": scrub(r.detail)} for r in rows],
        )
    return len(rows)


def _submissions(conn: Connection, campaign_id: str, cutoff: dt.datetime, scrub_answers: Scrub | None) -> int:
    """Sender and file name of every version before ``cutoff``, and its personal answers."""
    s = t.submissions
    rows = conn.execute(
        sa.select(s.c.id, s.c.sender, s.c.file_name, s.c.answers).where(
            s.c.campaign_id == campaign_id, s.c.received_at < cutoff
        )
    ).all()
    changed = []
    for r in rows:
        answers = scrub_answers(r.answers) if scrub_answers and r.answers else r.answers
        if r.sender or r.file_name or answers != r.answers:
            changed.append({"row_id": r.id, "clean": answers})
    if changed:
        conn.execute(
            s.update()
            .where(s.c.id == sa.bindparam("row_id"))
            .values(sender="", file_name="", answers=sa.bindparam("clean")),
            changed,
        )
    return len(changed)


def _old_outbox(campaign_id: str, cutoff: dt.datetime, *, final: bool) -> list[Any]:
    o = t.outbox
    states = o.c.status.in_(FINAL_OUTBOX) if final else o.c.status.not_in(FINAL_OUTBOX)
    return [o.c.campaign_id == campaign_id, states, sa.func.coalesce(o.c.sent_at, o.c.created_at) < cutoff]


def _outbox(conn: Connection, campaign_id: str, cutoff: dt.datetime, scrub: Scrub) -> int:
    o = t.outbox
    rows = conn.execute(
        sa.select(o.c.id, o.c.last_error).where(
            *_old_outbox(campaign_id, cutoff, final=True),
            sa.or_(o.c.payload.is_not(None), o.c.to_address != "", o.c.subject != ""),
        )
    ).all()
    if rows:
        conn.execute(
            o.update()
            .where(o.c.id == sa.bindparam("row_id"))
            .values(payload=None, recipients=[], to_address="", subject="", last_error=sa.bindparam("clean")),
            [{"row_id": r.id, "clean": scrub(r.last_error)} for r in rows],
        )
    return len(rows)


def _units(conn: Connection, campaign_id: str, now: dt.datetime) -> int:
    u = t.units
    return int(
        conn.execute(
            u.update()
            .where(u.c.campaign_id == campaign_id, sa.or_(*(u.c[c] != "" for c in UNIT_CONTACTS)))
            .values(updated_at=now, **{c: "" for c in UNIT_CONTACTS})
        ).rowcount
    )


def _events(conn: Connection, campaign_id: str, cutoff: dt.datetime, scrub: Scrub) -> int:
    """Events before the cutoff, and the roster's events (``unit.*``) whatever their date: they
    carry the same contacts the units lose."""
    e = t.events
    changed = [
        {"row_id": r.id, "clean": clean}
        for r in conn.execute(
            sa.select(e.c.id, e.c.detail).where(
                e.c.campaign_id == campaign_id, sa.or_(e.c.at < cutoff, e.c.kind.startswith("unit."))
            )
        )
        if (clean := scrub(r.detail)) != r.detail
    ]
    if changed:
        conn.execute(
            e.update().where(e.c.id == sa.bindparam("row_id")).values(detail=sa.bindparam("clean")), changed
        )
    return len(changed)


def _failures(conn: Connection, campaign_id: str, cutoff: dt.datetime) -> int:
    f = t.address_failures
    return int(conn.execute(f.delete().where(f.c.campaign_id == campaign_id, f.c.since < cutoff)).rowcount)
