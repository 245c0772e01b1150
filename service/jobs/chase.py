"""Reminders and escalations: turn "who is due what at time T" (``campaign.plan.due``) into queued mail.

The co-signature's one reminder to the verneombud is ``jobs.cosign``'s, queued in the same
`remind` and `run` cycle.

The rules are pure (``campaign``); this module reads where every unit stands from the store,
asks the rules, and has ``letters`` write the mails. Called with the same ``now`` twice it queues
nothing the second time: every step has its dedupe key.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from service.campaign.plan import Step, days_left, due, is_closed, is_send_time, plan
from service.campaign.state import UnitState, step_key, unit_states
from service.clock import local
from service.config.settings import Config
from service.errors import SkjemapostError
from service.jobs.poll import Archive
from service.mail.classifier import spreadsheets
from service.mail.compose import Attachment
from service.mail.letters import Letters
from service.mail.parser import parse
from service.models import NewMail, Unit
from service.store.database import Store

log = logging.getLogger(__name__)


@dataclass
class ChaseReport:
    due: list[tuple[str, str]] = field(default_factory=list)  # (unit code, step key)
    queued: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (unit code, why)
    waiting: bool = False  # not a send time: nothing goes now
    closed: bool = False  # the campaign is closed (campaign.closes): nothing goes any more


def due_steps(store: Store, config: Config, now: dt.datetime) -> list[tuple[Unit, UnitState, Step]]:
    """Every active unit's one due step at ``now`` (most have none; none once the campaign is closed)."""
    if is_closed(now, config.campaign):
        return []
    steps = plan(config.campaign, config.schedule)
    units = {u.code: u for u in store.units(config.campaign.id)}
    out = []
    for state in unit_states(
        store, config.campaign, config.schedule, now, include_inactive=False, cosign=config.cosign
    ):
        if state.code not in units:
            continue  # added after the states were read: it goes next time
        step = due(now, steps, state)
        if step is not None:
            out.append((units[state.code], state, step))
    return out


def chase_once(
    store: Store, config: Config, letters: Letters, now: dt.datetime, *, dry_run: bool = False
) -> ChaseReport:
    """Queue what is due now (or, with ``dry_run``, only say what it would be)."""
    report = ChaseReport()
    if is_closed(now, config.campaign):
        report.closed = True  # no reminder or escalation after campaign.closes, however late
        return report
    if not is_send_time(now, config.schedule, config.campaign.timezone):
        # outreach goes on working days from the send hour; a step missed while the service
        # was down waits for the next such time, and then goes once
        report.waiting = True
        return report
    mails: list[NewMail] = []
    own_copy = OwnCopies(store, config.storage.data_dir / "raw")
    for unit, state, step in due_steps(store, config, now):
        report.due.append((unit.code, step.key))
        if dry_run:
            continue
        mail = _mail(config, letters, unit, state, step=step, now=now, own_copy=own_copy)
        if mail is None:
            report.skipped.append((unit.code, f"{step.key}: nobody to send it to"))
            continue
        mails.append(_again(mail, state, step.key))
    if mails:
        report.queued = store.queue(config.campaign.id, mails, now)
    return report


def _again(mail: NewMail, state: UnitState, step: str) -> NewMail:
    """A step sent again (its first mail bounced to an address the roster has since corrected)
    gets a key of its own: the outbox keeps one row per key, and the bounced row stays."""
    earlier = sum(1 for o in state.outreach if step_key(o.key) == step)
    return replace(mail, dedupe_key=f"{mail.dedupe_key}@{earlier + 1}") if earlier else mail


class OwnCopies:
    """The leader's own filled copy of a form that needs correction, from the archived reply,
    so a reminder can send it back to be fixed rather than a blank form."""

    def __init__(self, store: Store, raw_root: Path) -> None:
        self.store, self.archive = store, Archive(raw_root)

    def of(self, state: UnitState) -> Attachment | None:
        if state.newest_inbound_id is None or not state.newest_file_name:
            return None
        try:
            row = self.store.inbound_by_id(state.newest_inbound_id)
            mail = parse(self.archive.get(row.raw_path))
        except (OSError, SkjemapostError):
            return None  # purged or unreadable: a fresh form goes instead
        for att in spreadsheets(mail):
            if att.filename == state.newest_file_name:
                return Attachment(att.filename, att.data)
        return None


def _mail(
    config: Config,
    letters: Letters,
    unit: Unit,
    state: UnitState,
    *,
    step: Step,
    now: dt.datetime,
    own_copy: OwnCopies,
) -> NewMail | None:
    left = days_left(now, config.campaign)
    tz = config.campaign.timezone
    invited_on = local(state.invitation_sent_at or state.invited_at or now, tz).date()
    if step.kind == "invitation":
        return letters.invitation(unit, now)
    if step.kind.startswith("reminder") and state.needs_correction:
        return letters.reminder_correction(
            unit, state, step.key, days_left=left, own=own_copy.of(state), now=now
        )
    if step.kind == "reminder-before":
        return letters.reminder_before(unit, step.number, max(left, 0), invited_on, now)
    if step.kind == "reminder-after":
        return letters.reminder_after(unit, max(-left, 1), now)
    if not unit.superior_email and not config.coordinators_for(unit.faculty):
        log.warning("escalation for %s skipped: no superior leader and no coordinator", unit.code)
        return None
    return letters.escalation(unit, state, max(-left, 1), now)
