"""Who is due what at time T: a campaign's timeline, and one-shot rules over it.

``plan()`` turns the config into the campaign's timeline of ``Step``s: the invitation, reminders
before the deadline, one reminder after it, an escalation; each on a working day at the local send
hour. ``due()`` looks at one unit at one instant and names at most one step to send now;
``skipped()`` names the steps that will never be sent; ``simulate()`` replays ``due()`` day by day
for ``skjemapost simulate``. Pure: no database, no network, no clock; time is passed in.

Design notes, where the rules had a choice:

- Catching up. A loop calls ``due()`` often; after an outage it must not fire every missed step at
  once. So only the *latest* step whose time has come is a candidate, and only if nothing later went
  out already. Earlier missed steps are superseded, reported by ``skipped()`` for the log.
- The invitation always matters: a unit that has none gets it first, however late (a unit added
  mid-campaign). A late invitation supersedes every step scheduled up to when it went out
  (``UnitState.invited_at``), so it is not followed minutes later by a reminder about a date the
  leader never heard of; the next step comes at its own time.
- A step can stop mattering (``Step.expires``): a reminder *before* the deadline once the deadline
  day is over, the reminder *after* it once the escalation's time has come.
- ``max_reminders`` counts reminders before and after the deadline together. When there are more,
  the after-deadline reminder stays (the deadline has passed: the most useful nudge) and the
  *earliest* before-reminders go: they are the closest to the invitation, while the last ones
  before the deadline carry its urgency.
- ``due()`` says *what*, not *when*: ``is_send_time()`` says whether outreach may go now (a working
  day, at or after the send hour), so a restart at 03:00 or on a Saturday waits for the send hour.
- The first weekly digest waits for answers (``first_digest_day``): a digest beside the invitations
  says "0 of 7" and tells nobody anything, so the first one goes on the first digest day at least
  ``schedule.first_digest_after_working_days`` working days after the invitations.
- A campaign ends (``is_closed``): from ``campaign.closes`` on nothing is due (no reminder,
  escalation, digest or notice); only HR's final summary goes, once, from the send hour of the
  first working day at or after the closing day (``is_final_summary_time``).
- The co-signature is not a step of this timeline. A valid form is never chased as missing, in
  any ``[cosign]`` mode: ``due()`` looks at the leader's side (``UnitState.has_valid``). A pending
  confirmation is chased by its own one reminder (``campaign.cosign.reminder_due``, queued by
  ``jobs.cosign``) to the verneombud; with mode "required" (a unit is done only once confirmed:
  ``UnitState.done``) that reminder copies the leader, and nothing goes to the dean for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Literal

from service.campaign.state import Stage, UnitState, escalation_from
from service.campaign.workdays import (
    ONE_DAY,
    add_working_days,
    at_local_hour,
    is_working_day,
    local_date,
    next_working_day,
    previous_working_day,
)
from service.config.settings import WEEKDAYS, Campaign, Schedule

StepKind = Literal["invitation", "reminder-before", "reminder-after", "escalation"]


@dataclass(frozen=True)
class Step:
    """One step of the campaign's timeline, the same for every unit."""

    kind: StepKind
    number: int  # 1, 2, 3… within its kind, in order of sending (as in "reminder-before:2"); else 1
    day: dt.date  # the local day in the campaign's zone
    at: dt.datetime  # aware UTC: the local send hour on `day`
    key: str  # the dedupe-key suffix in the outbox: "invitation", "reminder-before:2", …
    expires: dt.datetime | None = None  # aware UTC: from then on it no longer matters; None = never

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or (self.expires is not None and self.expires.tzinfo is None):
            raise ValueError(f"Step {self.key}: times must be timezone-aware")


NO_REPLIES: Mapping[str, dt.date] = MappingProxyType({})


def plan(campaign: Campaign, schedule: Schedule) -> tuple[Step, ...]:
    """The campaign's timeline, in order of sending; the same for every unit.

    - invitation: the opening day, or the next working day if it is not one;
    - reminder-before:n: ``d`` days before the deadline for each offset, moved back to the previous
      working day (a reminder must come before the deadline); dropped if that is on or before the
      invitation day; two offsets that land on the same day make one reminder;
    - reminder-after: the first working day after the deadline, if configured;
    - escalation: ``escalation_working_days`` working days after the after-deadline reminder (after
      the deadline if there is none); none if 0.

    Working days here (and in the send time and the digest day) exclude ``schedule.closed_days``.
    """

    def at(day: dt.date) -> dt.datetime:
        return at_local_hour(day, schedule.send_hour, campaign.timezone)

    deadline, closed = campaign.deadline, schedule.closed_days
    invited = next_working_day(campaign.opens, closed)
    steps = [Step("invitation", 1, invited, at(invited), "invitation")]

    # the config rejects offsets < 1 (0 would be the deadline itself); skip them here too
    moved = (
        previous_working_day(deadline - dt.timedelta(days=d), closed)
        for d in schedule.reminder_days_before
        if d >= 1
    )
    before = sorted({day for day in moved if day > invited})
    after: dt.date | None = None
    if schedule.reminder_after_deadline:
        after = add_working_days(deadline, 1, closed)
        if after <= invited:  # the invitation itself went out after the deadline
            after = None

    budget = schedule.max_reminders
    if after is not None:
        if budget > 0:
            budget -= 1
        else:
            after = None
    before = before[max(0, len(before) - budget) :]  # keep the last ones before the deadline

    escalation: dt.date | None = None
    if schedule.escalation_working_days > 0:
        # from the deadline, or from a later invitation: a leader always gets that many working days
        base = after if after is not None else max(deadline, invited)
        escalation = add_working_days(base, schedule.escalation_working_days, closed)

    deadline_over = at_local_hour(deadline + ONE_DAY, 0, campaign.timezone)
    for n, day in enumerate(before, start=1):
        steps.append(Step("reminder-before", n, day, at(day), f"reminder-before:{n}", deadline_over))
    if after is not None:
        until = at(escalation) if escalation is not None else None
        steps.append(Step("reminder-after", 1, after, at(after), "reminder-after", until))
    if escalation is not None:
        steps.append(Step("escalation", 1, escalation, at(escalation), "escalation"))
    return tuple(steps)


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware, got the naive {now!r}")
    return now


def _current(now: dt.datetime, steps: Sequence[Step], unit: UnitState) -> Step | None:
    """The one step that may go to ``unit`` at ``now``, ignoring its standing (valid, failing,
    away), but with the escalation's own rule: only after a reminder and time to react."""
    _aware(now)
    ordered = sorted(steps, key=lambda s: s.at)
    invitation = next((s for s in ordered if s.kind == "invitation"), None)
    if invitation is not None and invitation.key not in unit.sent:
        return invitation if invitation.at <= now else None
    reached = [i for i, s in enumerate(ordered) if s is not invitation and s.at <= now]
    if not reached:
        return None
    latest = ordered[reached[-1]]
    if any(s.key in unit.sent for s in ordered[reached[-1] :]):
        return None  # it went already, or a later step did (the plan changed, or --as-of went back)
    if unit.invited_at is not None and latest.at <= unit.invited_at:
        return None  # superseded by a late invitation
    if unit.covered_until is not None and latest.at <= unit.covered_until and latest.kind != "escalation":
        return None  # a correction went after its time: the leader was just told what to fix
    if latest.kind == "escalation" and not unit.failing:
        return _before_escalating(now, latest, ordered[: reached[-1]], unit)
    if latest.expires is not None and now >= latest.expires:
        return None
    return latest


def _before_escalating(
    now: dt.datetime, escalation: Step, earlier: Sequence[Step], unit: UnitState
) -> Step | None:
    """The escalation's time has come. It goes only once the leader has had a reminder and the
    working days to react to it (``UnitState.escalation_from``). A leader who never had one (the
    service was down on the reminder days, or they were away) gets the last reminder first."""
    if unit.escalation_from is not None:
        return escalation if now >= unit.escalation_from else None
    reminders = [s for s in earlier if s.kind.startswith("reminder")]
    after = [s for s in reminders if s.kind == "reminder-after"]
    last = after[-1] if after else reminders[-1] if reminders else None
    if last is None or last.key in unit.sent:
        return None
    return last


def due(now: dt.datetime, steps: Sequence[Step], unit: UnitState) -> Step | None:
    """The one step to send ``unit`` at ``now``, or None.

    Nothing to an inactive unit or one with a valid form. To a unit whose leader's address fails,
    only the escalation (to the superior leader and the coordinator), on its day. The invitation
    first if it has not gone, however late. Otherwise the latest step whose time has come, if it
    has not gone, nothing later has gone, and it still matters; a reminder not while it is held
    (the leader is away, or got a correction today); the escalation only after a reminder and
    ``escalation_working_days`` to react. Never a key in ``unit.sent``.
    """
    if not unit.active or unit.has_valid:
        return None
    step = _current(now, steps, unit)
    if step is None:
        return None
    if unit.failing and step.kind != "escalation":
        return None
    held = unit.hold_reminders_until
    if step.kind.startswith("reminder") and held is not None and now < held:
        return None
    return step


def skipped(now: dt.datetime, steps: Sequence[Step], unit: UnitState) -> list[Step]:
    """The steps whose time has come that were not sent and never will be (for the log).

    The step that may still go (once an inactive unit is back, or a failing address fixed) is not
    among them, nor the invitation, which always goes. Empty for a unit with a valid submission:
    nothing was missed where nothing was needed.
    """
    if unit.has_valid:
        return []
    current = _current(now, steps, unit)
    return [
        s
        for s in sorted(steps, key=lambda s: s.at)
        if s.at <= _aware(now) and s.key not in unit.sent and s.kind != "invitation" and s != current
    ]


def is_send_time(now: dt.datetime, schedule: Schedule, tz: str) -> bool:
    """True on a working day (local) at or after the send hour: when outreach may go out."""
    today = local_date(_aware(now), tz)
    return is_working_day(today, schedule.closed_days) and now >= at_local_hour(today, schedule.send_hour, tz)


def days_left(now: dt.datetime, campaign: Campaign) -> int:
    """Calendar days from today (in the campaign's zone) to the deadline: 0 on it, negative after."""
    return (campaign.deadline - local_date(_aware(now), campaign.timezone)).days


def digest_day(day: dt.date, weekday: str, closed: Collection[dt.date] = ()) -> dt.date | None:
    """The day the digest goes in ``day``'s ISO week: the configured weekday if it is a working day,
    else the next working day of that week, else the last working day before it in that week
    (a Friday digest in Easter week goes on Wednesday); None if the week has no working day.
    ``closed``: the institution's own closed days (``schedule.closed_days``), as holidays."""
    monday = day - dt.timedelta(days=day.weekday())
    wanted = WEEKDAYS.index(weekday.lower())
    later = [monday + dt.timedelta(days=i) for i in range(wanted, 7)]
    earlier = [monday + dt.timedelta(days=i) for i in range(wanted - 1, -1, -1)]
    return next((d for d in [*later, *earlier] if is_working_day(d, closed)), None)


def first_digest_day(campaign: Campaign, schedule: Schedule) -> dt.date:
    """The day the first weekly digest goes: the first digest day (``digest_day``, holidays moved
    within their week) on or after the day ``schedule.first_digest_after_working_days`` working
    days after the invitations (the opening day, or the next working day if it is not one).

    Opening Monday 23 Nov 2020 with Monday digests and 5 days: Monday 30 Nov; with Friday
    digests: Friday 4 Dec (27 Nov is only four working days after the invitations)."""
    closed = schedule.closed_days
    invited = next_working_day(campaign.opens, closed)
    earliest = add_working_days(invited, schedule.first_digest_after_working_days, closed)
    week = earliest
    while True:
        day = digest_day(week, schedule.digest_weekday, closed)
        if day is not None and day >= earliest:
            return day
        week += dt.timedelta(days=7 - week.weekday())  # the next ISO week's Monday


def is_closed(now: dt.datetime, campaign: Campaign) -> bool:
    """True from the first moment (local midnight) of ``campaign.closes``: nothing is sent then
    but HR's final summary and the answer to a form that still comes in."""
    return local_date(_aware(now), campaign.timezone) >= campaign.closes_on


def final_summary_day(campaign: Campaign, schedule: Schedule) -> dt.date:
    """The day HR's final summary is due: the closing day, or the first working day after it."""
    return next_working_day(campaign.closes_on, schedule.closed_days)


def is_final_summary_time(now: dt.datetime, campaign: Campaign, schedule: Schedule) -> bool:
    """True once the campaign is closed, at a send time (a working day from the send hour) on or
    after ``final_summary_day``; whether it went already is the outbox's to say (one key)."""
    today = local_date(_aware(now), campaign.timezone)
    return today >= final_summary_day(campaign, schedule) and is_send_time(now, schedule, campaign.timezone)


def is_digest_due(
    now: dt.datetime, campaign: Campaign, schedule: Schedule, last_digest_at: dt.datetime | None
) -> bool:
    """True when `run` should send the weekly digests now: the campaign is open, it is this
    week's digest time (``is_digest_time``), and the first digest day has come."""
    if is_closed(now, campaign):
        return False
    return is_digest_time(
        now,
        schedule,
        last_digest_at,
        campaign.timezone,
        not_before=first_digest_day(campaign, schedule),
    )


def is_digest_time(
    now: dt.datetime,
    schedule: Schedule,
    last_digest_at: dt.datetime | None,
    tz: str,
    *,
    not_before: dt.date | None = None,
) -> bool:
    """True when the weekly digest should go: on this ISO week's digest day (``digest_day``) or a
    later working day of the week (catching up after an outage), at or after the digest hour, and
    only if no digest went out yet in this ISO week (weeks in the campaign's zone). No digest in a
    week whose digest day is before ``not_before`` (``is_digest_due`` passes ``first_digest_day``)."""
    today = local_date(_aware(now), tz)
    day = digest_day(today, schedule.digest_weekday, schedule.closed_days)
    if day is None or today < day or not is_working_day(today, schedule.closed_days):
        return False
    if not_before is not None and day < not_before:
        return False  # that week's digest day came too early: the invitations are still unanswered
    if now < at_local_hour(today, schedule.digest_hour, tz):
        return False
    if last_digest_at is None:
        return True
    return local_date(last_digest_at, tz).isocalendar()[:2] != today.isocalendar()[:2]


def simulate(
    campaign: Campaign,
    schedule: Schedule,
    units: Sequence[UnitState],
    start: dt.date,
    end: dt.date,
    *,
    replies: Mapping[str, dt.date] = NO_REPLIES,
) -> list[tuple[dt.date, str, str]]:
    """The day-by-day outreach from ``start`` to ``end`` (inclusive): (day, unit code, step key).

    A clock steps through each day's send hour and ``due()`` is asked once per unit, the sent keys
    growing as it goes; days that are not working days send nothing (``is_send_time``). A unit in
    ``replies`` has a valid form in from the start of that day: nothing goes to it on or after it.
    Nothing goes once the campaign is closed (``is_closed``).
    """
    steps = plan(campaign, schedule)
    state = list(units)
    rows: list[tuple[dt.date, str, str]] = []
    day = start
    while day <= end:
        now = at_local_hour(day, schedule.send_hour, campaign.timezone)
        if is_closed(now, campaign):
            break
        if is_send_time(now, schedule, campaign.timezone):
            for i, unit in enumerate(state):
                replied = replies.get(unit.code)
                if replied is not None and replied <= day and not unit.has_valid:
                    unit = state[i] = replace(unit, stage=Stage.VALID)
                step = due(now, steps, unit)
                if step is None:
                    continue
                rows.append((day, unit.code, step.key))
                invited_at = now if step.kind == "invitation" else unit.invited_at
                reminded = step.kind.startswith("reminder")
                state[i] = replace(
                    unit,
                    sent=unit.sent | {step.key},
                    invited_at=invited_at,
                    escalation_from=escalation_from(now, campaign, schedule)
                    if reminded
                    else unit.escalation_from,
                )
        day += ONE_DAY
    return rows
