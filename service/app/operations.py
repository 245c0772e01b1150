"""The campaign's recurring work, for `remind`, `digest`, `simulate` and `run`.

``Operations`` wraps an ``App`` (config, store, letters, clock) the way the CLI and the runner
need it; each method is one step that can run at any time and is safe to repeat.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from service.app.mailing import Mailing
from service.app.setup import Setup
from service.app.wiring import App
from service.campaign.plan import is_digest_due, simulate
from service.campaign.state import UnitState
from service.clock import local
from service.errors import SkjemapostError
from service.forms.answers import flags_for, from_json, problem_rows, summary
from service.forms.read import read_form
from service.forms.validate import validate
from service.jobs import collate
from service.jobs.chase import ChaseReport, chase_once
from service.jobs.cosign import CosignReport, cosign_once
from service.jobs.digest import digests
from service.jobs.drain import DrainReport
from service.jobs.poll import PollReport, StopFlag
from service.mail.compose import Attachment, Mailbox
from service.mail.letters import Reply
from service.models import Language, NewMail


@dataclass
class RemindReport:
    """What `remind` did, step by step; ``total`` is everything it sent."""

    #: what an earlier run left in the queue (cut short, or deferred), sent before anything else
    left_over: DrainReport = field(default_factory=DrainReport)
    polled: PollReport | None = None
    answered: DrainReport = field(default_factory=DrainReport)  # the answers the poll queued
    chase: ChaseReport = field(default_factory=ChaseReport)
    # the verneombud's requests a poll left to ask, and their one reminder (jobs.cosign)
    cosign: CosignReport = field(default_factory=CosignReport)
    sent: DrainReport = field(default_factory=DrainReport)  # the reminders and escalations

    @property
    def total(self) -> DrainReport:
        return added(self.left_over, self.answered, self.sent)


def added(*reports: DrainReport) -> DrainReport:
    """Several drains' reports as one: the counts summed, the failures in order."""
    total = DrainReport()
    for report in reports:
        for f in fields(report):
            setattr(total, f.name, getattr(total, f.name) + getattr(report, f.name))
    return total


PREVIEW_KINDS = (
    "leader-invitation",
    "leader-reminder-before",
    "leader-reminder-after",
    "escalation",
    "leader-receipt",
    "leader-correction",
    "coordinator-digest",
    "hr-digest",
)


class PreviewError(SkjemapostError, LookupError):
    exit_code = 2


class CompileError(SkjemapostError, ValueError):
    exit_code = 2


class Operations:
    def __init__(self, app: App) -> None:
        self.app = app
        self.mailing = Mailing(app)
        self.compiled_on: dt.date | None = None  # the nightly workbook, once a (local) day

    @property
    def now(self) -> dt.datetime:
        return self.app.clock.now()

    def remind(self, *, dry_run: bool = False, should_stop: StopFlag | None = None) -> RemindReport:
        """Poll first (nobody who just replied is reminded), then queue and send what is due.

        What an earlier run left in the queue goes out before the poll, so each step's report
        says what that step sent (``RemindReport``), the rest of an interrupted run included.
        """
        app, stop = self.app, should_stop or StopFlag()
        report = RemindReport()
        if not dry_run:
            if self.mailing.queued_count():
                report.left_over = self.mailing.drain(should_stop=stop)
            report.polled, report.answered = self.mailing.poll(should_stop=stop)
        app.ready()
        report.chase = chase_once(app.store, app.config, app.letters, self.now, dry_run=dry_run)
        if not dry_run:
            report.cosign = cosign_once(app.store, app.config, app.letters, self.now)
        if not dry_run and self.mailing.queued_count():
            report.sent = self.mailing.drain(should_stop=stop)
        return report

    def digests_due(self) -> list[NewMail]:
        self.app.ready()
        attach = self._workbook_slice if self.app.config.mail.digest_workbook else (lambda f: ())
        return digests(self.app.store, self.app.config, self.app.letters, self.now, attachments=attach)

    def compile(self, output: Path | None = None, faculty: str | None = None) -> tuple[Path, dict[str, int]]:
        """Write the master workbook (of one faculty if given); returns where, and rows per sheet."""
        app = self.app
        cfg = app.config
        app.ready()
        units = app.store.units(app.campaign_id)
        faculties = {u.faculty for u in units}
        if faculty is not None and faculty not in faculties:
            raise CompileError(
                f"no active unit in faculty {faculty!r} (known: {', '.join(sorted(faculties))})"
            )
        if output is None:
            stamp = local(self.now, cfg.campaign.timezone).strftime("%Y%m%d-%H%M")
            output = cfg.storage.data_dir / "compiled" / f"{app.campaign_id}-{stamp}.xlsx"
        output.parent.mkdir(parents=True, exist_ok=True)
        coordinators = {
            f: ", ".join(f"{c.name} <{c.email}>" for c in cfg.coordinators_for(f)) for f in faculties
        }
        sources = collate.load(
            app.store,
            campaign=cfg.campaign,
            schedule=cfg.schedule,
            now=self.now,
            coordinators=coordinators,
            faculty=faculty,
            cosign=cfg.cosign,
        )
        return output, collate.write_xlsx(collate.sheets(sources, app.form), output)

    def _workbook_slice(self, faculty: str) -> list[Attachment]:
        with tempfile.TemporaryDirectory() as tmp:
            day = local(self.now, self.app.config.campaign.timezone)
            name = f"{self.app.campaign_id}-{faculty}-{day:%Y%m%d}.xlsx"
            path, _ = self.compile(Path(tmp) / name, faculty)
            return [Attachment(name, path.read_bytes())]

    def digest(self, *, dry_run: bool = False) -> tuple[list[NewMail], DrainReport]:
        """This week's digests (each once per ISO week); sent unless ``dry_run``."""
        mails = self.digests_due()
        if dry_run or not mails:
            return mails, DrainReport()
        self.app.store.queue(self.app.campaign_id, mails, self.now)
        return mails, self.mailing.drain()

    def preview(self, kind: str, code: str, lang: Language | None = None) -> NewMail:
        """The mail ``kind`` about unit ``code`` as it would go now; nothing is queued or sent.

        Receipts show the unit's current valid form; correction requests the problems of the
        unit's blank form (every required field); digests the unit's faculty (or all, for HR).
        """
        app = self.app
        app.ready()
        unit = app.store.unit(app.campaign_id, code)
        if lang:
            unit = replace(unit, language=lang)
        now, today, letters = self.now, app.today(), app.letters
        days_left = (app.config.campaign.deadline - today).days
        invited_on = min(today, app.config.campaign.opens)
        leader = Mailbox(unit.leader_email, unit.leader_name)
        if kind == "leader-invitation":
            return letters.invitation(unit, now)
        if kind == "leader-reminder-before":
            return letters.reminder_before(unit, 1, max(days_left, 0), invited_on, now)
        if kind == "leader-reminder-after":
            return letters.reminder_after(unit, max(-days_left, 1), now)
        if kind == "escalation":
            return letters.escalation(unit, self.state(code), max(-days_left, 1), now)
        if kind == "leader-correction":
            blank = letters.form_for(unit, unit.language)
            reading = read_form(blank.data, app.form)
            problems = validate(app.form, reading, unit.language)
            return letters.correction(
                unit,
                Reply(leader, "preview"),
                problem_rows(app.form, reading, problems, unit.language),
                received_at=now,
                attachment=None,
                now=now,
            )
        if kind == "leader-receipt":
            current = app.store.current_submission(app.campaign_id, unit.code)
            if current is None:
                raise PreviewError(
                    f"{unit.code} has no valid form registered yet: a receipt preview "
                    "shows the unit's current form"
                )
            answers = from_json(app.form, current["answers"])
            return letters.receipt(
                unit,
                Reply(leader, "preview"),
                {
                    "version": current["version"],
                    "updated": current["version"] > 1,
                    "received_at": current["received_at"],
                    "sent_by": "",
                    "summary": summary(app.form, answers, unit.language),
                    "flags": flags_for(current["flags"], unit.language),
                },
                now,
            )
        mails = digests(app.store, app.config, letters, now, include_sent=True)
        wanted = f":digest:{'hr' if kind == 'hr-digest' else unit.faculty}:"
        found = next((m for m in mails if wanted in m.dedupe_key), None)
        if found is None:
            raise PreviewError(
                f"no {kind} for {unit.faculty}: check coordinators and hr.recipients in the config"
            )
        return found

    def simulate(self, start: dt.date, end: dt.date) -> list[tuple[dt.date, str, str]]:
        """The day-by-day plan from ``start`` to ``end`` for the units as they stand now."""
        app = self.app
        return simulate(app.config.campaign, app.config.schedule, self.states(), start, end)

    def states(self, *, include_inactive: bool = True) -> list[UnitState]:
        """Where every unit stands now (``Setup.unit_status``)."""
        return Setup(self.app).unit_status(include_inactive=include_inactive)

    def state(self, code: str) -> UnitState:
        return next(s for s in self.states() if s.code == code)

    def cycle(self, stop: StopFlag) -> dict[str, Any]:
        """One turn of `run`: poll, remind, send, and the digests when it is their time."""
        app = self.app
        reminded = self.remind(should_stop=stop)
        sent = reminded.total  # an earlier run's queue, the poll's answers and the reminders
        result: dict[str, Any] = {
            "polled": reminded.polled.fetched if reminded.polled else 0,
            "due": len(reminded.chase.due),
            "cosign_reminded": len(reminded.cosign.reminded),
            "sent": sent.sent,
            "failed": sent.failed,
        }
        if reminded.left_over.sent:
            result["sent_left_over"] = reminded.left_over.sent  # of "sent": what an earlier run left
        if sent.recovered or sent.resent:  # rows an interrupted run left in flight
            result["found_already_sent"], result["sent_again"] = sent.recovered, sent.resent
        cid, tz = app.campaign_id, app.config.campaign.timezone
        last = app.store.last_mail_of_kind(cid, "hr-digest") or app.store.last_mail_of_kind(
            cid, "coordinator-digest"
        )
        # the first on plan.first_digest_day, none once the campaign is closed (plan.is_digest_due)
        if not stop() and is_digest_due(self.now, app.config.campaign, app.config.schedule, last):
            mails, digested = self.digest()
            result["digests"] = len(mails)
            result["sent"] += digested.sent
            result["failed"] += digested.failed
        if not stop() and self.mailing.final_summary(self.compile)[0] is not None:
            result["final_summary"] = 1  # HR's, once, when the campaign has closed (jobs.closing)
        today = local(self.now, tz)
        compile_due = today.hour >= app.config.schedule.compile_hour and self.compiled_on != today.date()
        if not stop() and compile_due:
            path, _ = self.compile(app.config.storage.data_dir / "compiled" / f"{cid}-nightly.xlsx")
            self.compiled_on = today.date()
            result["compiled"] = str(path)
        return result
