"""Where a unit stands: one typed state, built from the store's facts, read by every surface.

The reminders and escalations (``plan.due``), the mails (``letters``), the digests, the master
workbook, the web page and `skjemapost status` all read a ``UnitState``; none of them looks at
the store's rows to decide for itself whether a unit "has sent the form". ``state_of`` builds it
from a ``UnitRecord`` (one query for every unit) and is the only place that turns facts into a
standing. Pure: the time, the campaign and the schedule are passed in.

The stages, in the order they win (a unit is in exactly one):

- inactive: the roster no longer has it; nothing goes to it.
- valid: a valid form is in (``valid``, with its flags); no outreach.
- needs-correction: a form was received (``received_on``) but its newest version has problems
  (``problems``) and no valid one is in. Never told "not received": its reminders say what to fix.
- address-failing: the leader's address bounced (``failure``). Nothing goes to it; the escalation
  still goes to the superior leader and the coordinator on its day.
- away: the leader's out-of-office reply says they are back on ``back_on``; reminders wait.
- invited: the invitation went (or waits in the queue).
- not-invited: nothing has gone yet.

A failing address or an absence is also kept on a unit that needs correction (``failure``,
``back_on``), so its mails can say so; the stage names the one that decides what it gets.

Beside its stage a unit carries its co-signature (``cosign``: where the verneombud's confirmation
of its valid form stands, ``campaign.cosign.CoSignState``; None with ``[cosign] mode = "off"``).
``done`` is whether the unit has done its part: a valid form, and with mode "required" its
verneombud's confirmation too (``cosign.counts_as_done``). The stage is the leader's side alone,
so a valid form is "valid" in every mode and no leader is ever told their form is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.campaign.cosign import CoSignState, cosign_state, counts_as_done
from service.campaign.workdays import (
    add_working_days,
    at_local_hour,
    first_send_time,
    local_date,
)
from service.config.settings import Campaign, Cosign, Schedule
from service.models import MailKind
from service.store.cosign import CosignRecord
from service.store.database import Store
from service.store.reports import FailureFact, MailFact, UnitRecord


class Stage(StrEnum):
    INACTIVE = "inactive"
    VALID = "valid"
    NEEDS_CORRECTION = "needs-correction"
    ADDRESS_FAILING = "address-failing"
    AWAY = "away"
    INVITED = "invited"
    NOT_INVITED = "not-invited"


# the outbox kinds that reach the unit's leader about its form, in the words of a mail list
LEADER_KINDS: dict[str, str] = {
    MailKind.LEADER_INVITATION: "invitation",
    MailKind.LEADER_REMINDER_BEFORE: "reminder",
    MailKind.LEADER_REMINDER_AFTER: "reminder",
    MailKind.LEADER_REMINDER_CORRECTION: "reminder",
    MailKind.LEADER_CORRECTION: "correction",
    MailKind.LEADER_RECEIPT: "receipt",
}


@dataclass(frozen=True)
class Outreach:
    """One mail the leader got (or will get: it may still wait in the queue)."""

    what: str  # invitation, reminder, correction, receipt
    at: dt.datetime
    key: str
    bounced: bool = False


@dataclass(frozen=True)
class Problem:
    """One problem of a form that still needs correction, as the leader was told it."""

    cell: str
    message: str
    label: str = ""

    @classmethod
    def stored(cls, p: Mapping[str, str]) -> Problem:
        """A problem as the store keeps it: {cell, message, label}."""
        return cls(p.get("cell", ""), p.get("message", ""), p.get("label", ""))


@dataclass(frozen=True, kw_only=True)
class UnitState:
    """Where one unit stands, and the facts the rules need. Build it with ``state_of``."""

    code: str
    faculty: str = ""
    leader_email: str = ""
    active: bool = True
    stage: Stage = Stage.NOT_INVITED
    # what went out (outbox keys less "campaign:unit:"; a bounced or refused row's key is left
    # out once the address it went to is no longer the unit's, so it goes again)
    sent: frozenset[str] = frozenset()
    outreach: tuple[Outreach, ...] = ()
    # when the rules count the unit as invited: the invitation's sent time, or its queued time
    # while it waits; steps scheduled up to then are superseded by it. None: assume on time.
    invited_at: dt.datetime | None = None
    invitation_sent_at: dt.datetime | None = None  # when it left (what `status` shows)
    escalated_at: dt.datetime | None = None
    failure: FailureFact | None = None
    back_on: dt.date | None = None  # the leader's first day back, while it is ahead
    # the first form received, and (while no valid form is in) the newest version's problems
    received_on: dt.datetime | None = None
    newest_at: dt.datetime | None = None  # when the newest version came, valid or not
    versions: int = 0
    problems: tuple[Problem, ...] = ()
    # the newest version's file and the reply that brought it (its own copy goes back with a
    # reminder to correct it)
    newest_file_name: str = ""
    newest_inbound_id: int | None = None
    valid_at: dt.datetime | None = None
    flags: tuple[dict[str, str], ...] = ()
    needs_review: int = 0
    last_inbound_at: dt.datetime | None = None
    # for the rules: no reminder before this instant (the leader is away, or got a correction
    # today); the escalation not before this one (None: not yet, the leader has had no reminder)
    hold_reminders_until: dt.datetime | None = None
    escalation_from: dt.datetime | None = None
    # a correction answers for the step whose time had come: steps up to then are covered by it
    covered_until: dt.datetime | None = None
    # the verneombud's confirmation of the valid form (None: the co-signature is off), and
    # whether the unit is done only once they confirmed ([cosign] mode "required")
    cosign: CoSignState | None = None
    cosign_required: bool = False

    @property
    def has_valid(self) -> bool:
        return self.stage is Stage.VALID

    @property
    def done(self) -> bool:
        """The unit has done its part: a valid form, and with ``[cosign] mode = "required"`` its
        verneombud's confirmation (``cosign.counts_as_done``)."""
        return counts_as_done(self.has_valid, self.cosign, "required" if self.cosign_required else "ask")

    @property
    def failing(self) -> bool:
        return self.failure is not None

    @property
    def needs_correction(self) -> bool:
        return self.stage is Stage.NEEDS_CORRECTION

    @property
    def reminders(self) -> tuple[dt.datetime, ...]:
        return tuple(o.at for o in self.outreach if o.what == "reminder")

    @property
    def corrections(self) -> tuple[dt.datetime, ...]:
        return tuple(o.at for o in self.outreach if o.what == "correction")

    @property
    def last_activity(self) -> dt.datetime | None:
        times = [x for x in (self.invitation_sent_at, self.last_inbound_at) if x]
        return max(times) if times else None


def escalation_from(last_reminder: dt.datetime, campaign: Campaign, schedule: Schedule) -> dt.datetime:
    """The leader had a reminder at ``last_reminder``: the escalation may go from the send hour
    ``escalation_working_days`` working days later, so they had that long to react."""
    day = local_date(last_reminder, campaign.timezone)
    later = add_working_days(day, max(schedule.escalation_working_days, 1), schedule.closed_days)
    return at_local_hour(later, schedule.send_hour, campaign.timezone)


def back_at(back_on: dt.date, campaign: Campaign, schedule: Schedule) -> dt.datetime:
    """The first send time once a leader is back on ``back_on``: its send hour, or the next
    working day's."""
    return first_send_time(back_on, schedule.send_hour, campaign.timezone, schedule.closed_days)


def state_of(
    record: UnitRecord,
    campaign: Campaign,
    schedule: Schedule,
    now: dt.datetime,
    *,
    cosign: CoSignState | None = None,
    cosign_required: bool = False,
) -> UnitState:
    """The typed state of the unit ``record`` describes, at ``now``, with its co-signature
    ``cosign`` (``cosign_required``: [cosign] mode "required")."""
    tz = campaign.timezone
    today = local_date(now, tz)
    outreach = tuple(_outreach(m) for m in record.mails if m.kind in LEADER_KINDS)
    invitations = [
        m for m in record.mails if m.kind == MailKind.LEADER_INVITATION and not _stale_bounce(m, record)
    ]
    went = [m.at for m in invitations if m.status in ("sent", "bounced")]
    back_on = record.away.returns_on if record.away and record.away.returns_on else None
    if back_on is not None and back_on <= today:
        back_on = None  # back
    current, newest = record.current, record.newest
    invalid = current is None and newest is not None and not newest.valid

    holds = []
    if back_on is not None:
        holds.append(back_at(back_on, campaign, schedule))
    corrections = [o.at for o in outreach if o.what == "correction"]
    if invalid and corrections:
        # no reminder on a day a correction went out: the leader has just been told what to fix
        last_day = local_date(max(corrections), tz)
        holds.append(at_local_hour(last_day + dt.timedelta(days=1), 0, tz))
    reminders = [o.at for o in outreach if o.what == "reminder" and not o.bounced]

    stage = (
        Stage.INACTIVE
        if not record.active
        else Stage.VALID
        if current is not None
        else Stage.NEEDS_CORRECTION
        if invalid
        else Stage.ADDRESS_FAILING
        if record.failure is not None
        else Stage.AWAY
        if back_on is not None
        else Stage.INVITED
        if invitations
        else Stage.NOT_INVITED
    )
    return UnitState(
        code=record.code,
        faculty=record.faculty,
        leader_email=record.leader_email,
        active=record.active,
        stage=stage,
        sent=frozenset(step_key(m.key) for m in record.mails if not _stale_bounce(m, record)),
        outreach=outreach,
        invited_at=invitations[0].at if invitations else None,
        invitation_sent_at=min(went) if went else None,
        escalated_at=next((m.at for m in record.mails if m.kind == MailKind.ESCALATION), None),
        failure=record.failure,
        back_on=back_on,
        received_on=record.first_received_at,
        newest_at=newest.received_at if newest is not None else None,
        versions=record.versions,
        problems=tuple(Problem.stored(p) for p in newest.problems) if invalid and newest is not None else (),
        newest_file_name=newest.file_name if invalid and newest is not None else "",
        newest_inbound_id=newest.inbound_id if invalid and newest is not None else None,
        valid_at=current.received_at if current is not None else None,
        flags=current.flags if current is not None else (),
        needs_review=record.needs_review,
        last_inbound_at=record.last_inbound_at,
        hold_reminders_until=max(holds) if holds else None,
        escalation_from=escalation_from(max(reminders), campaign, schedule) if reminders else None,
        covered_until=max(corrections) if invalid and corrections else None,
        cosign=cosign,
        cosign_required=cosign_required,
    )


def step_key(key: str) -> str:
    """The step a mail's key is for: "invitation@2" (a step sent again, after a bounce to an
    address the roster has since corrected) is the step "invitation"."""
    return key.partition("@")[0]


def _stale_bounce(mail: MailFact, record: UnitRecord) -> bool:
    """A mail that bounced (or was refused when sent) to an address the unit no longer uses: it
    counts as not sent, so the step goes again, to the address the roster gives now."""
    return mail.status in ("bounced", "failed") and mail.to_address.lower() != record.leader_email.lower()


def _outreach(mail: MailFact) -> Outreach:
    return Outreach(LEADER_KINDS[mail.kind], mail.at, mail.key, bounced=mail.status in ("bounced", "failed"))


def unit_states(
    store: Store,
    campaign: Campaign,
    schedule: Schedule,
    now: dt.datetime,
    *,
    include_inactive: bool = True,
    cosign: Cosign = Cosign(),  # noqa: B008 - frozen: the config's default, "ask"
) -> list[UnitState]:
    """Every unit's state at ``now``, from one read of the store (``unit_records``) and one of
    the co-signatures (``cosign_records``, none with ``cosign.mode`` "off"). Pass the config's
    ``[cosign]`` (``config.cosign``); the default is its default, mode "ask"."""
    records = store.unit_records(campaign.id, include_inactive=include_inactive)
    if cosign.mode == "off":
        return [state_of(r, campaign, schedule, now) for r in records]
    cosigns = store.cosign_records(campaign.id, include_inactive=include_inactive)
    required = cosign.mode == "required"
    return [
        state_of(
            r,
            campaign,
            schedule,
            now,
            cosign=_cosign(
                r, cosigns.get(r.code), settings=cosign, campaign=campaign, schedule=schedule, now=now
            ),
            cosign_required=required,
        )
        for r in records
    ]


def _cosign(
    record: UnitRecord,
    facts: CosignRecord | None,
    *,
    settings: Cosign,
    campaign: Campaign,
    schedule: Schedule,
    now: dt.datetime,
) -> CoSignState | None:
    """A unit's co-signature from its facts; a unit added between the two reads has none yet
    (never asked, with no address known to this read)."""
    facts = facts or CosignRecord(record.code, "", None)
    valid = record.current.version if record.current is not None else None
    return cosign_state(
        facts, valid_version=valid, settings=settings, campaign=campaign, schedule=schedule, now=now
    )
