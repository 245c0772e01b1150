"""Where a unit stands (campaign/state.py) and what the rules then send it (campaign/plan.due).

Pure: a UnitRecord of literal facts in, a UnitState out; no store, no clock. Each test names a
transition, or one that must not happen.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from service.campaign.plan import due, plan
from service.campaign.state import Stage, UnitState, state_of
from service.config.settings import Campaign, Schedule
from service.store.reports import AwayFact, FailureFact, MailFact, UnitRecord, VersionFact

OSLO = ZoneInfo("Europe/Oslo")
LEADER = "kari.nordmann@example.edu"


def oslo(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=OSLO).astimezone(dt.UTC)


CAMPAIGN = Campaign(
    id="aml-2020",
    title="Oppsummering og evaluering 2020",
    form=Path("forms/oppsummering-og-evaluering.toml"),
    roster=Path("config/roster.example.csv"),
    opens=dt.date(2020, 11, 23),
    deadline=dt.date(2020, 12, 16),
    timezone="Europe/Oslo",
    default_language="nb",
    institution_domains=("example.edu",),
)
SCHEDULE = Schedule(
    reminder_days_before=(14, 7, 2),
    reminder_after_deadline=True,
    escalation_working_days=3,
    max_reminders=4,
    send_hour=9,
    poll_minutes=5,
    digest_weekday="monday",
    digest_hour=8,
    compile_hour=2,
    closed_days=(),
)
STEPS = plan(CAMPAIGN, SCHEDULE)
STEP = {s.key: s for s in STEPS}


def mail(kind: str, key: str, at: dt.datetime, status: str = "sent", to: str = LEADER) -> MailFact:
    return MailFact(kind, key, status, at, to)


INVITED = mail("leader-invitation", "invitation", oslo(2020, 11, 23))


def version(n: int, at: dt.datetime, *, valid: bool, problems: int = 0, current: bool = False) -> VersionFact:
    wrong = tuple({"cell": f"Skjema!C{10 + i}", "message": f"problem {i}"} for i in range(problems))
    return VersionFact(n, at, valid, wrong, (), f"skjema-v{n}.xlsx", 100 + n)


def record(
    *mails: MailFact,
    versions: tuple[VersionFact, ...] = (),
    current: VersionFact | None = None,
    failure: FailureFact | None = None,
    away: AwayFact | None = None,
    active: bool = True,
    email: str = LEADER,
) -> UnitRecord:
    return UnitRecord(
        code="HF-IMU",
        faculty="HF",
        leader_email=email,
        active=active,
        mails=mails,
        versions=len(versions),
        first_received_at=versions[0].received_at if versions else None,
        newest=versions[-1] if versions else None,
        current=current,
        failure=failure,
        away=away,
        last_inbound_at=versions[-1].received_at if versions else None,
        needs_review=0,
    )


def state(rec: UnitRecord, now: dt.datetime) -> UnitState:
    return state_of(rec, CAMPAIGN, SCHEDULE, now)


# -- the stages --------------------------------------------------------------------------------


def test_nothing_sent_is_not_invited_then_invited():
    assert state(record(), oslo(2020, 11, 20)).stage is Stage.NOT_INVITED
    s = state(record(INVITED), oslo(2020, 11, 24))
    assert s.stage is Stage.INVITED
    assert s.invited_at == s.invitation_sent_at == oslo(2020, 11, 23)
    assert s.sent == {"invitation"}


def test_a_form_with_mistakes_is_received_not_missing():
    """The form came on 11 Dec with 3 problems: the unit needs correction, and says when it came."""
    v1 = version(1, oslo(2020, 12, 11, 14), valid=False, problems=3)
    s = state(record(INVITED, versions=(v1,)), oslo(2020, 12, 14))
    assert s.stage is Stage.NEEDS_CORRECTION
    assert s.received_on == oslo(2020, 12, 11, 14)
    assert [p.cell for p in s.problems] == ["Skjema!C10", "Skjema!C11", "Skjema!C12"]
    assert not s.has_valid and s.needs_correction
    assert s.newest_file_name == "skjema-v1.xlsx" and s.newest_inbound_id == 101


def test_the_outstanding_problems_are_the_newest_versions():
    """A second, better but still wrong version replaces the first one's problems."""
    v1 = version(1, oslo(2020, 12, 11), valid=False, problems=3)
    v2 = version(2, oslo(2020, 12, 12), valid=False, problems=1)
    s = state(record(INVITED, versions=(v1, v2)), oslo(2020, 12, 14))
    assert len(s.problems) == 1 and s.received_on == oslo(2020, 12, 11) and s.versions == 2


def test_invalid_then_fixed_is_valid_and_a_later_invalid_version_does_not_undo_it():
    v1 = version(1, oslo(2020, 12, 11), valid=False, problems=2)
    v2 = version(2, oslo(2020, 12, 14), valid=True)
    fixed = state(record(INVITED, versions=(v1, v2), current=v2), oslo(2020, 12, 15))
    assert fixed.stage is Stage.VALID and fixed.problems == () and fixed.valid_at == oslo(2020, 12, 14)
    v3 = version(3, oslo(2020, 12, 15), valid=False, problems=4)
    later = state(record(INVITED, versions=(v1, v2, v3), current=v2), oslo(2020, 12, 16))
    assert later.stage is Stage.VALID and later.problems == ()


def test_a_bounced_address_fails_and_a_roster_fix_clears_it():
    """The invitation bounced: the address fails. The roster then gives a new address: the
    failure does not apply to it, and the bounced invitation no longer counts as sent."""
    bounced = mail("leader-invitation", "invitation", oslo(2020, 11, 23), status="bounced")
    failure = FailureFact(LEADER, "550 5.1.1 User unknown", oslo(2020, 11, 23, 9, 2))
    failing = state(record(bounced, failure=failure), oslo(2020, 11, 24))
    assert failing.stage is Stage.ADDRESS_FAILING and failing.failing
    assert failing.sent == {"invitation"}  # nothing more to that address
    fixed = state(record(bounced, email="kari.n@example.edu"), oslo(2020, 12, 1))
    assert fixed.stage is Stage.NOT_INVITED and not fixed.failing
    assert fixed.sent == frozenset()  # so the invitation goes again, to the new address
    assert due(oslo(2020, 12, 1), STEPS, fixed) == STEP["invitation"]


def test_a_step_sent_again_counts_as_its_step():
    bounced = mail("leader-invitation", "invitation", oslo(2020, 11, 23), status="bounced")
    again = mail("leader-invitation", "invitation@2", oslo(2020, 12, 1), to="kari.n@example.edu")
    s = state(record(bounced, again, email="kari.n@example.edu"), oslo(2020, 12, 2))
    assert s.stage is Stage.INVITED and s.sent == {"invitation"}
    assert s.invited_at == oslo(2020, 12, 1)


def test_away_until_the_return_date_then_back():
    away = AwayFact(LEADER, oslo(2020, 12, 2, 9, 1), dt.date(2020, 12, 10))
    gone = state(record(INVITED, away=away), oslo(2020, 12, 3))
    assert gone.stage is Stage.AWAY and gone.back_on == dt.date(2020, 12, 10)
    assert gone.hold_reminders_until == oslo(2020, 12, 10)
    back = state(record(INVITED, away=away), oslo(2020, 12, 10, 8))
    assert back.stage is Stage.INVITED and back.back_on is None


def test_an_auto_reply_without_a_date_does_not_make_anyone_away():
    away = AwayFact(LEADER, oslo(2020, 12, 2), None)
    assert state(record(INVITED, away=away), oslo(2020, 12, 3)).stage is Stage.INVITED


def test_inactive_wins_over_everything():
    v1 = version(1, oslo(2020, 12, 11), valid=False, problems=1)
    assert state(record(INVITED, versions=(v1,), active=False), oslo(2020, 12, 14)).stage is Stage.INACTIVE


def test_a_valid_unit_is_valid_even_if_its_address_later_fails():
    v1 = version(1, oslo(2020, 12, 1), valid=True)
    failure = FailureFact(LEADER, "552 mailbox full", oslo(2020, 12, 2))
    s = state(record(INVITED, versions=(v1,), current=v1, failure=failure), oslo(2020, 12, 3))
    assert s.stage is Stage.VALID


# -- what the rules send each stage ----------------------------------------------------------


def test_a_correction_covers_the_reminder_of_its_day_the_next_step_comes_at_its_own_time():
    """HF-IMU got a correction on Mon 14 Dec at 09:00: the 14 Dec reminder does not go that day,
    nor the next (the correction told the leader what to fix); the after-deadline reminder goes
    on the 17th."""
    v1 = version(1, oslo(2020, 12, 14, 8, 55), valid=False, problems=3)
    correction = mail("leader-correction", "inbound7:HF-IMU:correction", oslo(2020, 12, 14, 9))
    rec = record(
        INVITED,
        mail("leader-reminder-before", "reminder-before:1", oslo(2020, 12, 2)),
        mail("leader-reminder-before", "reminder-before:2", oslo(2020, 12, 9)),
        correction,
        versions=(v1,),
    )
    same_day = state(rec, oslo(2020, 12, 14, 9, 5))
    assert same_day.hold_reminders_until == oslo(2020, 12, 15, 0)
    assert due(oslo(2020, 12, 14, 9, 5), STEPS, same_day) is None
    next_day = state(rec, oslo(2020, 12, 15, 9))
    assert due(oslo(2020, 12, 15, 9), STEPS, next_day) is None
    assert next_day.corrections == (oslo(2020, 12, 14, 9),)
    after = state(rec, oslo(2020, 12, 17, 9))
    assert due(oslo(2020, 12, 17, 9), STEPS, after) == STEP["reminder-after"]


def test_a_correction_before_a_reminder_day_does_not_cover_it():
    v1 = version(1, oslo(2020, 12, 3, 8), valid=False, problems=1)
    rec = record(
        INVITED,
        mail("leader-reminder-before", "reminder-before:1", oslo(2020, 12, 2)),
        mail("leader-correction", "inbound2:HF-IMU:correction", oslo(2020, 12, 3, 9)),
        versions=(v1,),
    )
    assert due(oslo(2020, 12, 9), STEPS, state(rec, oslo(2020, 12, 9))) == STEP["reminder-before:2"]


def test_no_reminder_goes_into_an_absence_the_next_one_comes_after_it():
    away = AwayFact(LEADER, oslo(2020, 12, 2, 9, 1), dt.date(2020, 12, 11))
    rec = record(INVITED, mail("leader-reminder-before", "reminder-before:1", oslo(2020, 12, 2)), away=away)
    assert due(oslo(2020, 12, 9), STEPS, state(rec, oslo(2020, 12, 9))) is None
    assert due(oslo(2020, 12, 10, 15), STEPS, state(rec, oslo(2020, 12, 10, 15))) is None
    assert due(oslo(2020, 12, 11), STEPS, state(rec, oslo(2020, 12, 11))) == STEP["reminder-before:2"]


def test_no_escalation_before_a_reminder_the_reminder_goes_first():
    """The service was down from the invitation to the escalation day: the leader gets the
    after-deadline reminder first, and the escalation 3 working days after it."""
    rec = record(INVITED)
    assert due(oslo(2020, 12, 22), STEPS, state(rec, oslo(2020, 12, 22))) == STEP["reminder-after"]
    reminded = record(INVITED, mail("leader-reminder-after", "reminder-after", oslo(2020, 12, 22)))
    s = state(reminded, oslo(2020, 12, 23))
    assert s.escalation_from == oslo(2020, 12, 28)  # Tue 22 + 3 working days (Christmas: 25th off)
    assert due(oslo(2020, 12, 23), STEPS, s) is None
    assert due(oslo(2020, 12, 28), STEPS, state(reminded, oslo(2020, 12, 28))) == STEP["escalation"]


def test_the_escalation_goes_on_its_day_after_a_reminder_in_time():
    rec = record(INVITED, mail("leader-reminder-after", "reminder-after", oslo(2020, 12, 17)))
    assert due(oslo(2020, 12, 22), STEPS, state(rec, oslo(2020, 12, 22))) == STEP["escalation"]


def test_a_receipt_is_not_a_reminder():
    """Mails that are not reminders do not open the way to an escalation."""
    v1 = version(1, oslo(2020, 12, 1), valid=False, problems=1)
    rec = record(
        INVITED, mail("leader-correction", "inbound3:HF-IMU:correction", oslo(2020, 12, 1)), versions=(v1,)
    )
    s = state(rec, oslo(2020, 12, 22))
    assert s.reminders == () and s.escalation_from is None
    assert due(oslo(2020, 12, 22), STEPS, s) == STEP["reminder-after"]


def test_nothing_but_the_escalation_to_a_failing_address():
    failure = FailureFact(LEADER, "550 5.1.1 User unknown", oslo(2020, 11, 23, 9, 2))
    rec = record(
        mail("leader-invitation", "invitation", oslo(2020, 11, 23), status="bounced"), failure=failure
    )
    for step in STEPS[:-1]:
        assert due(step.at, STEPS, state(rec, step.at)) is None
    assert due(STEP["escalation"].at, STEPS, state(rec, STEP["escalation"].at)) == STEP["escalation"]


def test_nothing_to_a_valid_unit():
    v1 = version(1, oslo(2020, 12, 1), valid=True)
    rec = record(INVITED, versions=(v1,), current=v1)
    for step in STEPS:
        assert due(step.at, STEPS, state(rec, step.at)) is None


def test_an_invitation_refused_when_sent_goes_again_once_the_roster_fixes_the_address():
    """The relay refused the address at once (550 5.1.1): no bounce comes, the row failed and the
    address fails. With the address corrected, the invitation goes again."""
    refused = mail("leader-invitation", "invitation", oslo(2020, 11, 23), status="failed")
    failure = FailureFact(LEADER, "550 5.1.1 <x>: Recipient address rejected", oslo(2020, 11, 23))
    failing = state(record(refused, failure=failure), oslo(2020, 11, 24))
    assert failing.stage is Stage.ADDRESS_FAILING and failing.sent == {"invitation"}
    fixed = state(record(refused, email="kari.n@example.edu"), oslo(2020, 11, 25))
    assert due(oslo(2020, 11, 25), STEPS, fixed) == STEP["invitation"]
    assert [o.bounced for o in fixed.outreach] == [True]
