"""The outbox: every mail is a row before it is sent; ``drain_once`` sends what is queued.

Guarantees (see DESIGN.md, "Mail"): a row is sent at least once and never again once marked
sent; a crash leaves only rows in "sending", which the next drain resolves first, by finding
their sent copies when that check is on, or by sending them again when it is off (so at most the
messages that were in flight are duplicated). 4xx replies and lost connections are retried with
backoff; a 5xx marks the row failed with the server's reply; a row still failing after its
retries stays queued for the next run.

The store commits about once per message, not twice (``_Marks``): each row's "sending" is its own
commit, made just before its SMTP transaction as the guarantees need, and the outcomes that came in
since ride along in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from service.clock import Clock
from service.mail.smtpreason import DOMAIN, NO_SUCH_ADDRESS, meaning
from service.net.imap import SentCopies
from service.net.smtp import Outgoing, Result, SmtpSettings, send_all
from service.store.database import Store
from service.store.outbox import OutboxRow

Mark = tuple[int, str, str | None]  # (outbox row id, status, error)


@dataclass
class DrainReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    recovered: int = 0  # rows left "sending" by a crash that had in fact gone out
    resent: int = 0  # rows left "sending" by a crash that are sent again
    failures: list[tuple[str, str]] = field(default_factory=list)  # (dedupe key, reason)


@dataclass(frozen=True)
class Transport:
    """How mail leaves: the SMTP settings, the envelope sender, and the optional sent copy."""

    smtp: SmtpSettings
    mail_from: str
    copies: SentCopies | None = None
    copy_to: str = ""  # the service's own address, when copies are on


class _Marks:
    """The drain's row states, in as few commits as the crash guarantees allow.

    A row's "sending" is committed just before its SMTP transaction (``start``), as before. An
    outcome (sent, failed, back to queued) is not committed on its own: it rides along in the next
    row's "sending" commit, or, if no row starts first, is committed as soon as the event loop
    comes round (``call_soon``, before it waits on anything), with the outcomes that came in
    meanwhile. So a message that went out is unrecorded hardly longer than with a commit of its
    own, and a crash still leaves only the rows in flight in "sending"; the store just commits
    about once per message instead of twice.
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self.pending: list[Mark] = []
        self.flush_scheduled = False
        self.error: Exception | None = None  # a commit that failed inside the loop, raised after it

    def start(self, row_id: int) -> None:
        self._commit((row_id, "sending", None))

    def settle(self, row_id: int, status: str, error: str | None) -> None:
        self.pending.append((row_id, status, error))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_in_loop)

    def flush(self) -> None:
        if self.pending:
            self._commit()

    def _commit(self, *more: Mark) -> None:
        self.store.mark_many([*self.pending, *more], self.clock.now())
        self.pending.clear()  # only once committed: a failed commit leaves them for the next try

    def _flush_in_loop(self) -> None:
        self.flush_scheduled = False
        try:
            self.flush()
        except Exception as exc:  # a callback's exception would only be logged by the loop
            self.error = exc


def recover(store: Store, campaign_id: str, transport: Transport, clock: Clock, report: DrainReport) -> None:
    """Resolve the rows a crash left in "sending": sent if their copy exists, else queued."""
    inflight = store.outbox_rows(campaign_id, ["sending"])
    if not inflight:
        return
    went_out = transport.copies.find(r.message_id for r in inflight) if transport.copies else set()
    for row in inflight:
        if row.message_id in went_out:
            store.mark(row.id, "sent", clock.now())
            report.recovered += 1
        else:
            store.mark(row.id, "queued", clock.now(), "interrupted; sending again")
            report.resent += 1


def drain_once(
    store: Store,
    campaign_id: str,
    transport: Transport,
    clock: Clock,
    *,
    limit: int | None = None,
    progress: Callable[[OutboxRow, Result], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> DrainReport:
    """Send every queued row once (with retries); returns what happened."""
    report = DrainReport()
    recover(store, campaign_id, transport, clock, report)
    rows = {r.id: r for r in store.outbox_rows(campaign_id, ["queued"], limit)}
    copy = (transport.copy_to,) if transport.copies and transport.copy_to else ()
    messages = [Outgoing(r.id, transport.mail_from, r.recipients + copy, r.payload) for r in rows.values()]

    marks = _Marks(store, clock)

    def started(msg: Outgoing) -> None:
        marks.start(msg.key)

    def done(msg: Outgoing, result: Result) -> None:
        row = rows[msg.key]
        if result.fate == "sent" and _addressee_refused(row.recipients[0], result):
            # the copies went (the verneombud's, the service's own), but the one the mail is for
            # was refused for good: for its reader the mail failed, as if it were sent alone
            result = Result("failed", result.detail)
        if result.fate == "sent":
            marks.settle(row.id, "sent", result.detail or None)
            report.sent += 1
        elif result.fate == "failed":
            marks.settle(row.id, "failed", result.detail)
            if row.kind.startswith(("leader-", "verneombud-")) and meaning(result.detail) in (
                NO_SUCH_ADDRESS,
                DOMAIN,
            ):
                # the leader's (or the verneombud's) address was refused at once: it fails, as on
                # a bounce, so the unit is not left waiting on a mail that never went
                store.note_failing_address(
                    campaign_id, row.recipients[0], row.unit_code, result.detail, clock.now()
                )
            report.failed += 1
            report.failures.append((row.dedupe_key, result.detail))
        else:
            marks.settle(row.id, "queued", result.detail)
            report.deferred += 1
            report.failures.append((row.dedupe_key, result.detail))
        if progress:
            progress(row, result)

    if messages:
        try:
            asyncio.run(
                send_all(
                    messages,
                    transport.smtp,
                    started,
                    done,
                    should_stop=lambda: should_stop() or marks.error is not None,
                )
            )
        finally:
            marks.flush()  # what the last loop turn left
        if marks.error is not None:
            raise marks.error
    if transport.copies and report.sent:
        transport.copies.file()
    return report


def _addressee_refused(addressee: str, result: Result) -> bool:
    """Whether the server refused ``addressee`` (the first recipient, whom the mail is for) with
    a permanent (5xx) reply in a transaction that went to the other recipients."""
    return any(
        address.lower() == addressee.lower() and reply.startswith("5") for address, reply in result.refused
    )
