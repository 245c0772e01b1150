"""Reminders and escalations: turn "who is due what at time T" (``campaign.due``) into queued mail.

The rules are pure (``campaign``); this module reads where every unit stands from the store,
asks the rules, and has ``letters`` write the mails. Called with the same ``now`` twice it queues
nothing the second time: every step has its dedupe key.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from service.campaign.plan import Step, UnitState, days_left, due, is_send_time, plan
from service.clock import local
from service.config.settings import Config
from service.mail.letters import Letters
from service.models import NewMail, Unit
from service.store.database import Store
from service.store.reports import UnitRecord

log = logging.getLogger(__name__)


@dataclass
class ChaseReport:
    due: list[tuple[str, str]] = field(default_factory=list)  # (unit code, step key)
    queued: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (unit code, why)
    waiting: bool = False  # not a send time: nothing goes now


def due_steps(store: Store, config: Config, now: dt.datetime) -> list[tuple[Unit, UnitRecord, Step]]:
    """Every active unit's one due step at ``now`` (most have none)."""
    steps = plan(config.campaign, config.schedule)
    units = {u.code: u for u in store.units(config.campaign.id)}
    out = []
    for snap in store.unit_records(config.campaign.id):
        state = UnitState(
            snap.code,
            snap.active and snap.code in units,
            snap.has_valid,
            snap.failing,
            snap.sent,
            snap.invited_at,
        )
        step = due(now, steps, state)
        if step is not None:
            out.append((units[snap.code], snap, step))
    return out


def chase_once(
    store: Store, config: Config, letters: Letters, now: dt.datetime, *, dry_run: bool = False
) -> ChaseReport:
    """Queue what is due now (or, with ``dry_run``, only say what it would be)."""
    report = ChaseReport()
    if not is_send_time(now, config.schedule, config.campaign.timezone):
        # outreach goes on working days from the send hour; a step missed while the service
        # was down waits for the next such time, and then goes once
        report.waiting = True
        return report
    mails: list[NewMail] = []
    for unit, snap, step in due_steps(store, config, now):
        report.due.append((unit.code, step.key))
        if dry_run:
            continue
        mail = _mail(config, letters, unit, snap, step=step, now=now)
        if mail is None:
            report.skipped.append((unit.code, f"{step.key}: nobody to send it to"))
            continue
        mails.append(mail)
    if mails:
        report.queued = store.queue(config.campaign.id, mails, now)
    return report


def _mail(
    config: Config, letters: Letters, unit: Unit, snap: UnitRecord, *, step: Step, now: dt.datetime
) -> NewMail | None:
    left = days_left(now, config.campaign)
    tz = config.campaign.timezone
    invited_on = local(snap.invited_at or now, tz).date()
    if step.kind == "invitation":
        return letters.invitation(unit, now)
    if step.kind == "reminder-before":
        return letters.reminder_before(unit, step.number, max(left, 0), invited_on, now)
    if step.kind == "reminder-after":
        return letters.reminder_after(unit, max(-left, 1), now)
    if not unit.superior_email and not config.coordinators_for(unit.faculty):
        log.warning("escalation for %s skipped: no superior leader and no coordinator", unit.code)
        return None
    reminders = [local(r, tz).date() for r in snap.reminders]
    return letters.escalation(unit, max(-left, 1), invited_on, reminders, now)
