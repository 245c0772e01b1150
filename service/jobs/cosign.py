"""The co-signature's outreach: each valid form's request to the unit's verneombud, and its one
reminder, queued.

``requests_due`` names the units to ask now: the active units whose newest valid version has no
request yet (``store.cosign_candidates``), less those the rules pass by (``due_request``).
``ask_once`` asks them right after each poll (``Mailing.poll``: under `run`'s IDLE watch too, so
a verneombud is asked seconds after the leader's receipt) and after a person's review assigns a
form; ``cosign_once`` asks again and reminds in each `remind` and `run` cycle (``Operations``).
Nothing is remembered between calls: a crash between storing a form and asking about it loses
nothing, the next call asks. Each request is queued and recorded in one transaction
(``store.queue_cosign_request``), so it is asked once.

``reminders_due`` names the requests whose one reminder is due (``campaign.cosign.reminder_due``:
``[cosign] reminder_working_days`` after the request, not while the verneombud is away, never
after ``campaign.closes``); they go at the send hour on working days, like every reminder. With
mode "required" the reminder copies the leader: the unit is done only once it is confirmed.

The rules of ``due_request`` (pure):

- nothing with ``[cosign] mode = "off"``, and nothing once the campaign is closed;
- a version that repeats the answers already asked about is not asked about again: the earlier
  reading stands for it;
- a version the verneombud sent themselves (a corrected form attached to their answer) is for the
  *leader* to confirm (``to_leader``);
- nobody is asked without an address, or at one that fails (the unit's stage says so:
  ``no-address``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field

from service.campaign.cosign import cosign_state, reminder_due
from service.campaign.plan import is_closed, is_send_time
from service.config.settings import Config
from service.errors import SkjemapostError
from service.jobs.cosignreply import asked_about, asked_leader
from service.jobs.poll import Archive
from service.mail.classifier import spreadsheets
from service.mail.compose import Attachment
from service.mail.cosignletters import CosignLetters
from service.mail.letters import Letters
from service.mail.parser import parse
from service.models import Unit
from service.store.cosign import CosignCandidate, CosignRequest, CosignVersion
from service.store.database import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueRequest:
    """One request to send: about ``version`` of ``unit``'s form, to its verneombud (or, with
    ``to_leader``, to its leader), threaded under ``in_reply_to``."""

    unit: Unit
    version: CosignVersion
    to_leader: bool = False
    updated: bool = False  # an earlier version was asked about
    in_reply_to: str = ""

    @property
    def asked_to(self) -> str:
        return (self.unit.leader_email if self.to_leader else self.unit.verneombud_email).lower()


@dataclass(frozen=True)
class DueReminder:
    """The one reminder about ``request``, to whoever it asked."""

    unit: Unit
    request: CosignRequest
    to_leader: bool = False


@dataclass
class CosignReport:
    asked: list[tuple[str, int, str]] = field(default_factory=list)  # (unit, version, address)
    reminded: list[tuple[str, int, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (unit, why)


def due_request(candidate: CosignCandidate, unit: Unit) -> DueRequest | None:
    """The request ``candidate`` (a unit whose newest valid version has no request) is due, or
    None when the rules pass it by (see the module docstring)."""
    v = candidate.version
    earlier = candidate.earlier
    if earlier is not None and candidate.earlier_answers == v.answers:
        return None  # the same answers again: the earlier reading stands
    verneombud = unit.verneombud_email.lower()
    to_leader = bool(verneombud) and v.sender.lower() == verneombud
    if to_leader:
        if not unit.leader_email or candidate.leader_failing:
            return None
    elif not verneombud or candidate.verneombud_failing:
        return None
    return DueRequest(
        unit,
        v,
        to_leader=to_leader,
        updated=earlier is not None,
        in_reply_to=v.message_id or candidate.invitation_message_id,
    )


def requests_due(store: Store, config: Config, now: dt.datetime) -> list[DueRequest]:
    """The requests to send now, from one read of the store (nothing while the campaign is
    closed, or with the co-signature off)."""
    if config.cosign.mode == "off" or is_closed(now, config.campaign):
        return []
    candidates = store.cosign_candidates(config.campaign.id)
    if not candidates:
        return []
    units = {u.code: u for u in store.units(config.campaign.id)}
    due = []
    for c in candidates:
        unit = units.get(c.version.unit_code)
        if unit is not None and (request := due_request(c, unit)) is not None:
            due.append(request)
    return due


def reminders_due(store: Store, config: Config, now: dt.datetime) -> list[DueReminder]:
    """The reminders to send now: at a send time, while the campaign is open."""
    campaign, schedule = config.campaign, config.schedule
    if config.cosign.mode == "off" or is_closed(now, campaign):
        return []
    if not is_send_time(now, schedule, campaign.timezone):
        return []
    units = {u.code: u for u in store.units(campaign.id)}
    out = []
    for code, record in store.cosign_records(campaign.id, include_inactive=False).items():
        unit, request = units.get(code), record.request
        if unit is None or request is None:
            continue
        state = cosign_state(
            record, valid_version=None, settings=config.cosign, campaign=campaign, schedule=schedule, now=now
        )
        if reminder_due(state, now):
            out.append(DueReminder(unit, request, asked_leader(request, unit)))
    return out


def cosign_once(store: Store, config: Config, letters: Letters, now: dt.datetime) -> CosignReport:
    """Ask about every valid version due a request, then queue the reminders due now (`remind`
    and each `run` cycle)."""
    report = ask_once(store, config, letters, now)
    remind_once(store, config, letters, now, report=report)
    return report


def ask_once(
    store: Store, config: Config, letters: Letters, now: dt.datetime, *, report: CosignReport | None = None
) -> CosignReport:
    """Queue the requests due now (after each poll: a form just registered is asked about at once)."""
    report = report if report is not None else CosignReport()
    due_now = requests_due(store, config, now)
    if not due_now:
        return report
    mails = CosignLetters(letters)
    files = LeaderFiles(Archive(config.storage.data_dir / "raw"))
    cid = config.campaign.id
    for due in due_now:
        code, version = due.unit.code, due.version.version
        file = files.of(due.version)
        if file is None:
            log.warning(
                "the file of %s version %s is not in the archive: its verneombud is not asked", code, version
            )
            report.skipped.append((code, f"version {version}: the file is not in the archive"))
            continue
        asked = asked_about(letters.form, due.version, due.unit, updated=due.updated)
        mail = mails.request(
            due.unit, asked, file, now=now, in_reply_to=due.in_reply_to, to_leader=due.to_leader
        )
        if store.queue_cosign_request(
            cid, mail, unit_code=code, version=version, asked_to=due.asked_to, now=now
        ):
            report.asked.append((code, version, due.asked_to))
    return report


def remind_once(
    store: Store, config: Config, letters: Letters, now: dt.datetime, *, report: CosignReport | None = None
) -> CosignReport:
    """Queue the reminders due now (at a send time; none while the campaign is closed)."""
    report = report if report is not None else CosignReport()
    due_now = reminders_due(store, config, now)
    if not due_now:
        return report
    mails = CosignLetters(letters)
    files = LeaderFiles(Archive(config.storage.data_dir / "raw"))
    cid = config.campaign.id
    copy_leader = config.cosign.mode == "required"
    for reminder in due_now:
        request, unit = reminder.request, reminder.unit
        facts = store.cosign_version(cid, unit.code, request.version)
        file = files.of(facts) if facts is not None else None
        if facts is None or file is None:
            report.skipped.append((unit.code, f"reminder about version {request.version}: its file is gone"))
            continue
        mail = mails.reminder(
            unit,
            asked_about(letters.form, facts, unit),
            file,
            asked_at=request.asked_at,
            request_message_id=request.request_message_id,
            now=now,
            to_leader=reminder.to_leader,
            copy_leader=copy_leader,
        )
        if store.queue_cosign_reminder(cid, request.id, mail, now=now):
            report.reminded.append((unit.code, request.version, mail.recipients[0]))
    return report


class LeaderFiles:
    """The file a version came in (the leader's own, or whoever sent it), from the archived
    message that brought it: the request sends the very file back, not a rebuilt one."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive

    def of(self, version: CosignVersion) -> Attachment | None:
        if not version.raw_path:
            return None
        try:
            mail = parse(self.archive.get(version.raw_path))
        except (OSError, SkjemapostError):
            return None  # purged or unreadable
        for att in spreadsheets(mail):
            if hashlib.sha256(att.data).hexdigest() == version.file_sha256:
                return Attachment(att.filename, att.data)
        return None
