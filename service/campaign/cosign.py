"""The co-signature: where a unit's confirmation by its verneombud stands, and its rules.

The form is filled in by the leader *i samråd med verneombud* (the letter); with ``[cosign]``
mode "ask" or "required" the verneombud is asked by email to confirm each valid version. This
module turns a unit's facts (``store.cosign.CosignRecord``) into one ``CoSign`` stage and says
when the one reminder is due and whether a unit counts as done. Pure: the time, the campaign, the
schedule and the settings are passed in; nothing here reads the store or sends anything.

The stages (a unit with the co-signature off has none: ``cosign_state`` returns None):

- not-asked: nothing asked yet: no valid form, or its request has not been recorded yet.
- no-address: not asked, with a reason: the roster has no verneombud address ("no-address"), or
  their address fails ("address-failing", also when the request itself bounced).
- pending: asked (``version``, ``asked_at``), no answer yet.
- confirmed / disputed: the newest answer to the newest request (their ``words``; who and when).

The newest request counts: a newer valid version that changes the answers is asked about again
(pending again); one that does not is not, and the earlier reading stands for it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from service.campaign.workdays import (
    add_working_days,
    at_local_hour,
    first_send_time,
    local_date,
)
from service.config.settings import Campaign, Cosign, CosignMode, Schedule
from service.store.cosign import CosignRecord


class CoSign(StrEnum):
    NOT_ASKED = "not-asked"
    NO_ADDRESS = "no-address"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"


class NotAsked(StrEnum):
    """Why a unit's verneombud has not been asked (``CoSignState.reason``)."""

    NO_VALID_FORM = "no-valid-form"  # nothing to confirm yet
    NOT_YET = "not-yet"  # a valid form is in; its request is still to go
    NO_ADDRESS = "no-address"  # the roster has no verneombud address
    ADDRESS_FAILING = "address-failing"  # their address bounces


@dataclass(frozen=True, kw_only=True)
class CoSignState:
    """Where one unit's co-signature stands, and what its rules need. Build it with
    ``cosign_state``."""

    stage: CoSign
    reason: NotAsked | None = None  # for not-asked and no-address
    version: int | None = None  # the version the newest request is about
    asked_at: dt.datetime | None = None
    asked_to: str = ""
    request_id: int | None = None
    reminded_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    words: str = ""  # their own words, verbatim
    answered_by: str = ""  # who answered (an address; it may not be the roster's verneombud)
    back_on: dt.date | None = None  # the verneombud is away until this day (while it is ahead)
    # the one reminder may go from this instant (None: none is due, or ever will be)
    remind_from: dt.datetime | None = None

    @property
    def asked(self) -> bool:
        return self.version is not None

    @property
    def answered(self) -> bool:
        return self.stage in (CoSign.CONFIRMED, CoSign.DISPUTED)


def cosign_state(
    record: CosignRecord,
    *,
    valid_version: int | None,
    settings: Cosign,
    campaign: Campaign,
    schedule: Schedule,
    now: dt.datetime,
) -> CoSignState | None:
    """The co-signature of the unit ``record`` describes, at ``now``; ``valid_version``: the
    unit's current valid version (None: no valid form). None when the co-signature is off."""
    if settings.mode == "off":
        return None
    back_on = _back_on(record, campaign, now)
    request = record.request
    failing = record.failure is not None
    if request is None:
        reason = (
            NotAsked.NO_ADDRESS
            if not record.verneombud_email
            else NotAsked.ADDRESS_FAILING
            if failing
            else NotAsked.NO_VALID_FORM
            if valid_version is None
            else NotAsked.NOT_YET
        )
        stage = (
            CoSign.NOT_ASKED if reason in (NotAsked.NO_VALID_FORM, NotAsked.NOT_YET) else CoSign.NO_ADDRESS
        )
        return CoSignState(stage=stage, reason=reason, back_on=back_on)
    answered = {"confirmed": CoSign.CONFIRMED, "disputed": CoSign.DISPUTED}.get(request.reading or "")
    stage = answered or (CoSign.NO_ADDRESS if failing else CoSign.PENDING)
    state = CoSignState(
        stage=stage,
        reason=NotAsked.ADDRESS_FAILING if stage is CoSign.NO_ADDRESS else None,
        version=request.version,
        asked_at=request.asked_at,
        asked_to=request.asked_to,
        request_id=request.id,
        reminded_at=request.reminded_at,
        answered_at=request.answered_at,
        words=request.words or "",
        answered_by=request.answered_by or "",
        back_on=back_on,
    )
    if stage is not CoSign.PENDING or request.reminded_at is not None:
        return state
    remind_from = reminder_time(request.asked_at, settings, campaign, schedule)
    if back_on is not None:
        remind_from = max(
            remind_from, first_send_time(back_on, schedule.send_hour, campaign.timezone, schedule.closed_days)
        )  # not while away
    if remind_from >= closing_time(campaign) or now >= closing_time(campaign):
        return state  # none after the campaign closes (``plan.is_closed``)
    return dataclasses.replace(state, remind_from=remind_from)


def reminder_time(
    asked_at: dt.datetime, settings: Cosign, campaign: Campaign, schedule: Schedule
) -> dt.datetime:
    """The send hour ``reminder_working_days`` working days after the request went."""
    day = add_working_days(
        local_date(asked_at, campaign.timezone), settings.reminder_working_days, schedule.closed_days
    )
    return at_local_hour(day, schedule.send_hour, campaign.timezone)


def reminder_due(state: CoSignState | None, now: dt.datetime) -> bool:
    """The one reminder to the verneombud is due now."""
    return state is not None and state.remind_from is not None and now >= state.remind_from


def counts_as_done(has_valid: bool, state: CoSignState | None, mode: CosignMode) -> bool:
    """Whether a unit has done its part: a valid form, and with mode "required" its verneombud's
    confirmation too (a unit whose verneombud has no address, or disputes, is not done)."""
    if not has_valid:
        return False
    return mode != "required" or (state is not None and state.stage is CoSign.CONFIRMED)


def closing_time(campaign: Campaign) -> dt.datetime:
    """The first instant of ``campaign.closes`` (local midnight): nothing is chased from then."""
    return at_local_hour(campaign.closes_on, 0, campaign.timezone)


def _back_on(record: CosignRecord, campaign: Campaign, now: dt.datetime) -> dt.date | None:
    """The verneombud's first day back, from their newest out-of-office reply, while it is ahead."""
    back = record.away.returns_on if record.away is not None else None
    return back if back is not None and back > local_date(now, campaign.timezone) else None
