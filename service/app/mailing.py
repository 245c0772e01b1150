"""Mail in and out: the invitations, the outbox, the inbox and what a person decides in review.

Each method is one command's work (`send`, `poll`, `review`), on the parts of an ``App``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from imap_tools import BaseMailBox

from service.app.wiring import App
from service.clock import local
from service.errors import SkjemapostError
from service.jobs import closing
from service.jobs.cosign import ask_once
from service.jobs.drain import DrainReport, drain_once
from service.jobs.poll import PollReport, poll_once, settle_review
from service.mail.compose import Attachment
from service.mail.parser import parse
from service.models import Decision, MessageKind, NewMail, Unit
from service.net.imap import connect as connect_imap
from service.net.smtp import Result
from service.store.inbox import InboundRow
from service.store.outbox import OutboxRow


class ReviewError(SkjemapostError, ValueError):
    exit_code = 2


class Mailing:
    def __init__(self, app: App) -> None:
        self.app = app

    def invitations_due(self) -> list[Unit]:
        """Active units that have no invitation in the outbox yet."""
        self.app.ready()
        units = self.app.store.units(self.app.campaign_id)
        have = self.app.store.existing_keys(
            self.app.campaign_id, (f"{self.app.campaign_id}:{u.code}:invitation" for u in units)
        )
        return [u for u in units if f"{self.app.campaign_id}:{u.code}:invitation" not in have]

    def queue_invitations(self, units: list[Unit], batch: int = 100) -> int:
        """Render each unit's invitation with its form and queue it, ``batch`` per transaction."""
        queued = 0
        for i in range(0, len(units), batch):
            now = self.app.clock.now()
            mails: list[NewMail] = [self.app.letters.invitation(u, now) for u in units[i : i + batch]]
            queued += self.app.store.queue(self.app.campaign_id, mails, now)
        return queued

    def queued_count(self) -> int:
        """Rows waiting to be sent (or left in flight), without loading their messages."""
        self.app.ready()
        counts = self.app.store.outbox_counts(self.app.campaign_id)
        return counts.get("queued", 0) + counts.get("sending", 0)

    def queued(self) -> list[OutboxRow]:
        self.app.ready()
        return self.app.store.outbox_rows(self.app.campaign_id, ["queued", "sending"])

    def drain(
        self,
        progress: Callable[[OutboxRow, Result], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> DrainReport:
        self.app.ready()
        return drain_once(
            self.app.store,
            self.app.campaign_id,
            self.app.transport(),
            self.app.clock,
            progress=progress,
            should_stop=should_stop,
        )

    def poll(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        box: BaseMailBox | None = None,
    ) -> tuple[PollReport, DrainReport]:
        """Read everything new in the inbox, ask the verneombud to confirm each form it registered
        (``jobs.cosign.ask_once``), then send the answers and the requests it queued."""
        self.app.ready()
        own_box = box is None
        box = box or connect_imap(self.app.imap_settings())
        try:
            report = poll_once(
                box,
                self.app.store,
                self.app.processor(),
                self.app.archive,
                self.app.clock,
                progress=progress,
                should_stop=should_stop,
            )
        finally:
            if own_box:
                box.logout()
        if not should_stop():
            self.ask_cosign()
        sent = self.drain(should_stop=should_stop) if self.queued_count() else DrainReport()
        return report, sent

    def ask_cosign(self) -> int:
        """Queue the verneombud's requests due now (``jobs.cosign.ask_once``); how many."""
        app = self.app
        return len(ask_once(app.store, app.config, app.letters, app.clock.now()).asked)

    def final_summary(
        self, compile_to: Callable[[Path], object], *, by_hand: bool = False, again: bool = False
    ) -> tuple[NewMail | None, DrainReport]:
        """HR's final summary with the master workbook (``jobs.closing``), queued and sent: by
        `run` when it is due, or ``by_hand`` at any time once the campaign is closed (``again``: a
        fresh copy although one went). ``compile_to`` writes the workbook to the path it is given
        (``Operations.compile``); it runs only when a summary goes. None when none is due."""
        app = self.app
        app.ready()
        now = app.clock.now()
        if by_hand:
            closing.require_closed(app.config, now)
        elif not closing.final_summary_due(app.store, app.config, now):
            return None, DrainReport()
        if closing.sent_count(app.store, app.config) and not again:
            return None, DrainReport()
        with tempfile.TemporaryDirectory() as tmp:
            name = f"{app.campaign_id}-{local(now, app.config.campaign.timezone):%Y%m%d}.xlsx"
            compile_to(Path(tmp) / name)
            workbook = [Attachment(name, (Path(tmp) / name).read_bytes())]
        mail = closing.final_summary(app.store, app.config, app.letters, now, workbook, again=again)
        if mail is None:
            return None, DrainReport()
        app.store.queue(app.campaign_id, [mail], now)
        return mail, self.drain()

    def review_queue(self) -> list[InboundRow]:
        self.app.ready()
        return self.app.store.review_queue(self.app.campaign_id)

    def review(self, row_id: int, *, unit: str | None = None, note: str = "") -> Decision:
        """A person's choice for a message in review: assign it to ``unit`` (it is then processed
        as that unit's submission) or, without a unit, dismiss it. Recorded in the event log."""
        self.app.ready()
        row = self.app.store.inbound_by_id(row_id)
        if row.outcome != "review":
            raise ReviewError(f"message {row_id} is not waiting for review (it is {row.outcome})")
        now = self.app.clock.now()
        processor = self.app.processor()
        code = (
            self.app.store.unit(self.app.campaign_id, unit).code if unit is not None else None
        )  # a typo stops here

        def decide() -> Decision:
            if code is None:
                return Decision(
                    MessageKind(row.kind or "unknown"),
                    "dismissed",
                    self.app.config.imap.folders.ignored,
                    row.unit_code,
                    {"review": "dismissed", "note": note},
                )
            mail = parse(self.app.archive.get(row.raw_path))
            decision = processor.decide(mail, row.id, row.received_at, now, force_unit=code)
            return replace(decision, detail=decision.detail | {"review": "assigned", "note": note})

        box = connect_imap(self.app.imap_settings())
        try:
            decision = settle_review(box, self.app.store, processor, row, now=now, decide=decide)
        finally:
            box.logout()
        if self.ask_cosign() or decision.answers:  # an assigned form is asked about like any other
            self.drain()
        return decision
