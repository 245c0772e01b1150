"""The inbox's SQL: inbound messages, their decisions, submissions (versioned), mailbox state,
failing addresses and the review queue.

An inbound message is a row before anything else happens to it (status ``stored``), gets its
decision in one transaction (``processed``: kind, outcome, target folder, submissions, answers
queued), and is ``done`` once the server has moved it. A crash at any point leaves a row whose
status says exactly what is left to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from service.models import Decision, NewSubmission
from service.store import tables as t
from service.store.base import StoreBase, add_event, aware, jsonable
from service.store.cosign import answer_in
from service.store.outbox import queue_in


@dataclass(frozen=True)
class InboundRow:
    id: int
    message_id: str
    folder: str
    uidvalidity: int
    uid: int
    sha256: str
    status: str
    kind: str | None
    outcome: str | None
    target_folder: str | None
    unit_code: str | None
    sender: str
    subject: str
    received_at: dt.datetime
    raw_path: str
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class UnitHistory:
    """What the pipeline needs to know of a unit's earlier forms."""

    versions: int
    has_valid: bool
    newest_valid_at: dt.datetime | None


class InboxStore(StoreBase):
    # -- mailbox state ----------------------------------------------------------------------

    def mailbox_state(self, campaign_id: str, folder: str) -> tuple[int, int] | None:
        """(UIDVALIDITY, last UID done) of ``folder``, or None before the first poll."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(t.mailbox_state.c.uidvalidity, t.mailbox_state.c.last_uid).where(
                    t.mailbox_state.c.campaign_id == campaign_id, t.mailbox_state.c.folder == folder
                )
            ).first()
        return (row.uidvalidity, row.last_uid) if row else None

    def set_mailbox_state(
        self, campaign_id: str, folder: str, uidvalidity: int, last_uid: int, now: dt.datetime
    ) -> None:
        m = t.mailbox_state
        # never backwards within one UIDVALIDITY: a slower second poll must not undo a faster one
        keep = sa.and_(m.c.uidvalidity == uidvalidity, m.c.last_uid > last_uid)
        with self._tx() as conn:
            done = conn.execute(
                m.update()
                .where(m.c.campaign_id == campaign_id, m.c.folder == folder)
                .values(
                    uidvalidity=uidvalidity,
                    updated_at=now,
                    last_uid=sa.case((keep, m.c.last_uid), else_=last_uid),
                )
            ).rowcount
            if not done:
                conn.execute(
                    t.mailbox_state.insert().values(
                        campaign_id=campaign_id,
                        folder=folder,
                        uidvalidity=uidvalidity,
                        last_uid=last_uid,
                        updated_at=now,
                    )
                )

    # -- inbound rows -----------------------------------------------------------------------

    def _inbound(self, where: Any) -> list[InboundRow]:
        query = (
            sa.select(t.inbound, t.units.c.code)
            .outerjoin(t.units, t.units.c.id == t.inbound.c.unit_id)
            .where(where)
            .order_by(t.inbound.c.id)
        )
        with self._tx() as conn:
            return [
                InboundRow(
                    r.id,
                    r.message_id,
                    r.folder,
                    r.uidvalidity,
                    r.uid,
                    r.sha256,
                    r.status,
                    r.kind,
                    r.outcome,
                    r.target_folder,
                    r.code,
                    r.sender,
                    r.subject,
                    r.received_at,
                    r.raw_path,
                    r.detail,
                )
                for r in conn.execute(query)
            ]

    def inbound_at_uids(
        self, campaign_id: str, folder: str, uidvalidity: int, uids: Sequence[int]
    ) -> dict[int, InboundRow]:
        """The rows already stored for ``uids`` (one query for a whole batch)."""
        rows = self._inbound(
            sa.and_(
                t.inbound.c.campaign_id == campaign_id,
                t.inbound.c.folder == folder,
                t.inbound.c.uidvalidity == uidvalidity,
                t.inbound.c.uid.in_(uids),
            )
        )
        return {r.uid: r for r in rows}

    def inbound_with_message_ids(
        self, campaign_id: str, message_ids: Sequence[str]
    ) -> dict[str, list[InboundRow]]:
        """Rows already stored for any of ``message_ids`` (one query for a batch)."""
        out: dict[str, list[InboundRow]] = {}
        if message_ids:
            for r in self._inbound(
                sa.and_(t.inbound.c.campaign_id == campaign_id, t.inbound.c.message_id.in_(list(message_ids)))
            ):
                out.setdefault(r.message_id, []).append(r)
        return out

    def inbound_by_id(self, row_id: int) -> InboundRow:
        return self._inbound(t.inbound.c.id == row_id)[0]

    def inbound_with_outcome(self, campaign_id: str, outcome: str) -> list[InboundRow]:
        return self._inbound(sa.and_(t.inbound.c.campaign_id == campaign_id, t.inbound.c.outcome == outcome))

    def store_inbound(  # noqa: PLR0913 - keyword-only, one per column of the row
        self,
        campaign_id: str,
        *,
        message_id: str,
        folder: str,
        uidvalidity: int,
        uid: int,
        received_at: dt.datetime,
        sender: str,
        subject: str,
        raw_path: str,
        sha256: str,
        now: dt.datetime,
    ) -> int:
        """The message's row, written once its raw bytes are archived; returns its id.

        A second poll of the same mailbox (by hand, on another host) may store the same UID at
        the same moment: the unique (folder, UIDVALIDITY, UID) lets one insert win, and the
        other gets that row back; ``record_decision`` then lets only one decision in.
        """
        i = t.inbound
        with self._tx() as conn:
            try:
                with conn.begin_nested():
                    key = conn.execute(
                        i.insert().values(
                            campaign_id=campaign_id,
                            message_id=message_id[:998],
                            folder=folder,
                            uidvalidity=uidvalidity,
                            uid=uid,
                            received_at=received_at,
                            sender=sender[:320],
                            subject=subject,
                            raw_path=raw_path,
                            sha256=sha256,
                            status="stored",
                            created_at=now,
                        )
                    ).inserted_primary_key
            except sa.exc.IntegrityError:
                return int(
                    conn.execute(
                        sa.select(i.c.id).where(
                            i.c.folder == folder, i.c.uidvalidity == uidvalidity, i.c.uid == uid
                        )
                    ).scalar_one()
                )
        assert key is not None
        return int(key[0])

    def rebind_inbound(self, row_id: int, folder: str, uidvalidity: int, uid: int) -> None:
        """The same message seen at a new UID (after a UIDVALIDITY change): remember where it is."""
        with self._tx() as conn:
            conn.execute(
                t.inbound.update()
                .where(t.inbound.c.id == row_id)
                .values(folder=folder, uidvalidity=uidvalidity, uid=uid)
            )

    def mark_done(self, row_ids: Iterable[int], now: dt.datetime) -> None:
        ids = list(row_ids)
        if ids:
            with self._tx() as conn:
                conn.execute(t.inbound.update().where(t.inbound.c.id.in_(ids)).values(status="done"))

    # -- decisions ----------------------------------------------------------------------------

    def unit_history(self, campaign_id: str, code: str) -> UnitHistory:
        s = t.submissions
        with self._tx() as conn:
            row = conn.execute(
                sa.select(sa.func.count(s.c.id), sa.func.max(sa.case((s.c.valid.is_(True), s.c.received_at))))
                .select_from(s.join(t.units, t.units.c.id == s.c.unit_id))
                .where(t.units.c.campaign_id == campaign_id, t.units.c.code == code)
            ).one()
        newest = aware(row[1])
        return UnitHistory(int(row[0]), newest is not None, newest)

    def note_failing_address(
        self, campaign_id: str, address: str, unit_code: str | None, reason: str, now: dt.datetime
    ) -> None:
        """An address a mail server refused outright while we sent (no bounce will come)."""
        with self._tx() as conn:
            unit_ids = self.unit_ids(conn, campaign_id)
            _add_failure(
                conn,
                campaign_id,
                address,
                unit_id=unit_ids.get(unit_code or ""),
                inbound_id=None,
                reason=reason,
                now=now,
            )

    def record_decision(
        self, campaign_id: str, inbound_id: int, decision: Decision, now: dt.datetime
    ) -> bool:
        """Commit everything one message decided, all or nothing; False (and nothing written)
        when the message already has a decision (another poll got there first).

        Only a row still ``stored``, or one waiting for review (a person's choice), takes a
        decision: the conditional update is the claim, so two polls can never both register
        the same message's forms or queue its answers twice.
        """
        i = t.inbound
        with self._tx() as conn:
            unit_ids = self.unit_ids(conn, campaign_id)
            claimed = conn.execute(
                i.update()
                .where(i.c.id == inbound_id, sa.or_(i.c.status == "stored", i.c.outcome == "review"))
                .values(
                    kind=decision.kind,
                    outcome=decision.outcome,
                    target_folder=decision.folder,
                    unit_id=unit_ids.get(decision.unit_code or ""),
                    detail=jsonable(decision.detail),
                    status="processed",
                    processed_at=now,
                )
            ).rowcount
            if not claimed:
                return False
            for sub in decision.submissions:
                _add_submission(
                    conn, campaign_id, unit_ids[sub.unit_code], sub, inbound_id=inbound_id, now=now
                )
            if decision.answers:
                queue_in(conn, campaign_id, decision.answers, now, unit_ids)
            for address, reason in decision.failing_addresses:
                _add_failure(
                    conn,
                    campaign_id,
                    address,
                    unit_id=unit_ids.get(decision.unit_code or ""),
                    inbound_id=inbound_id,
                    reason=reason,
                    now=now,
                )
            if (answer := decision.cosign_answer) is not None:  # a verneombud's answer
                answer_in(
                    conn,
                    answer.request_id,
                    reading=answer.reading,
                    words=answer.words,
                    answered_by=answer.answered_by,
                    answered_by_name=answer.answered_by_name,
                    inbound_id=inbound_id,
                    at=answer.at,
                )
            if decision.bounced_message_id:
                conn.execute(
                    t.outbox.update()
                    .where(t.outbox.c.message_id == decision.bounced_message_id, t.outbox.c.status == "sent")
                    .values(status="bounced", updated_at=now)
                )
            add_event(
                conn,
                campaign_id,
                unit_ids.get(decision.unit_code or ""),
                f"inbound.{decision.outcome}",
                {"inbound": inbound_id, "kind": decision.kind, **decision.detail},
                at=now,
            )
        return True

    def review_queue(self, campaign_id: str) -> list[InboundRow]:
        """Messages waiting for a person, oldest first."""
        return self.inbound_with_outcome(campaign_id, "review")

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


def _add_submission(
    conn: Connection, campaign_id: str, unit_id: int, sub: NewSubmission, *, inbound_id: int, now: dt.datetime
) -> None:
    s = t.submissions
    current = s.alias("current_version")
    version, current_id, current_at = conn.execute(
        sa.select(
            sa.select(sa.func.coalesce(sa.func.max(s.c.version), 0))
            .where(s.c.unit_id == unit_id)
            .scalar_subquery(),
            sa.select(current.c.id)
            .where(current.c.unit_id == unit_id, current.c.current.is_(True))
            .scalar_subquery(),
            sa.select(current.c.received_at)
            .where(current.c.unit_id == unit_id, current.c.current.is_(True))
            .scalar_subquery(),
        )
    ).one()
    # the current version is the newest *valid* one by the time it was received, so an older
    # file that arrives late never replaces a newer one
    newest_at = aware(current_at)
    takes_over = sub.valid and (newest_at is None or sub.received_at >= newest_at)
    if takes_over and current_id is not None:
        conn.execute(s.update().where(s.c.id == current_id).values(current=False))
    conn.execute(
        s.insert().values(
            campaign_id=campaign_id,
            unit_id=unit_id,
            inbound_id=inbound_id,
            version=int(version) + 1,
            received_at=sub.received_at,
            sender=sub.sender,
            valid=sub.valid,
            current=takes_over,
            answers=jsonable(sub.answers),
            problems=list(sub.problems),
            flags=list(sub.flags),
            file_name=sub.file_name,
            file_sha256=sub.file_sha256,
            created_at=now,
        )
    )


def _add_failure(
    conn: Connection,
    campaign_id: str,
    address: str,
    *,
    unit_id: int | None,
    inbound_id: int | None,
    reason: str,
    now: dt.datetime,
) -> None:
    exists = conn.execute(
        sa.select(t.address_failures.c.id).where(
            t.address_failures.c.campaign_id == campaign_id, t.address_failures.c.address == address.lower()
        )
    ).first()
    if exists is None:
        conn.execute(
            t.address_failures.insert().values(
                campaign_id=campaign_id,
                address=address.lower(),
                unit_id=unit_id,
                inbound_id=inbound_id,
                reason=reason[:2000],
                since=now,
            )
        )
