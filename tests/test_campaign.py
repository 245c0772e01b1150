"""The campaign rules: the timeline (plan), who is due what at T (due, skipped), digests, simulate."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace as dataclass_replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from service.campaign.plan import (
    Step,
    days_left,
    digest_day,
    due,
    is_digest_time,
    is_send_time,
    plan,
    simulate,
    skipped,
)
from service.campaign.state import Stage, UnitState
from service.config.settings import Campaign, Schedule
from service.store.reports import FailureFact

D = dt.date
OSLO = ZoneInfo("Europe/Oslo")
UTC = dt.UTC


OPENS_2020, DEADLINE_2020 = D(2020, 11, 23), D(2020, 12, 16)


def campaign(opens: dt.date = OPENS_2020, deadline: dt.date = DEADLINE_2020) -> Campaign:
    return Campaign(
        id="aml-2020",
        title="Oppsummering og evaluering",
        form=Path("form.toml"),
        roster=Path("roster.csv"),
        opens=opens,
        deadline=deadline,
        timezone="Europe/Oslo",
        default_language="nb",
        institution_domains=("ntnu.no",),
    )


def schedule(
    days: tuple[int, ...] = (14, 7, 2),
    after: bool = True,
    escalation: int = 3,
    max_reminders: int = 5,
    digest_weekday: str = "monday",
) -> Schedule:
    return Schedule(
        reminder_days_before=days,
        reminder_after_deadline=after,
        escalation_working_days=escalation,
        max_reminders=max_reminders,
        send_hour=9,
        digest_weekday=digest_weekday,
        digest_hour=8,
        poll_minutes=5,
    )


def oslo(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> dt.datetime:
    """An instant given as Oslo wall time, in UTC."""
    return dt.datetime(y, m, d, h, mi, tzinfo=OSLO).astimezone(UTC)


def days(steps: tuple[Step, ...]) -> list[tuple[str, dt.date]]:
    return [(s.key, s.day) for s in steps]


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NOT_GIVEN = object()


def unit(
    *sent: str,
    active: bool = True,
    has_valid: bool = False,
    failing: bool = False,
    invited_at: dt.datetime | None = None,
    code: str = "IE-IDI",
    escalation_from: object = NOT_GIVEN,
    hold_reminders_until: dt.datetime | None = None,
) -> UnitState:
    """A unit as the rules see it. Unless told, a unit that has had a reminder may be escalated
    at the escalation's own time (the working days to react are tested on their own)."""
    keys = frozenset(sent)
    if escalation_from is NOT_GIVEN:
        escalation_from = EPOCH if any(k.startswith("reminder") for k in keys) else None
    assert escalation_from is None or isinstance(escalation_from, dt.datetime)
    return UnitState(
        code=code,
        active=active,
        stage=Stage.VALID if has_valid else Stage.INVITED,
        sent=keys,
        invited_at=invited_at,
        failure=FailureFact("leader@example.edu", "550 5.1.1 User unknown", EPOCH) if failing else None,
        escalation_from=escalation_from,
        hold_reminders_until=hold_reminders_until,
    )


ROUND_2020 = plan(campaign(), schedule())
STEP = {s.key: s for s in ROUND_2020}
BEFORE = ("reminder-before:1", "reminder-before:2", "reminder-before:3")


# -- plan ------------------------------------------------------------------------------------------


def test_the_2020_round():
    """2020: invitation Mon 23 Nov, reminders 2, 9, 14 Dec, after-deadline 17 Dec, escalation 22 Dec."""

    def at8utc(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(8), tzinfo=UTC)  # 09:00 CET

    assert [(s.kind, s.number, s.key, s.day, s.at) for s in ROUND_2020] == [
        ("invitation", 1, "invitation", D(2020, 11, 23), at8utc(D(2020, 11, 23))),
        ("reminder-before", 1, "reminder-before:1", D(2020, 12, 2), at8utc(D(2020, 12, 2))),
        ("reminder-before", 2, "reminder-before:2", D(2020, 12, 9), at8utc(D(2020, 12, 9))),
        ("reminder-before", 3, "reminder-before:3", D(2020, 12, 14), at8utc(D(2020, 12, 14))),
        ("reminder-after", 1, "reminder-after", D(2020, 12, 17), at8utc(D(2020, 12, 17))),
        ("escalation", 1, "escalation", D(2020, 12, 22), at8utc(D(2020, 12, 22))),
    ]


def test_the_2020_round_expiries():
    """Reminders before stop mattering at midnight after the deadline; the one after, at escalation."""
    deadline_over = dt.datetime(2020, 12, 16, 23, tzinfo=UTC)  # 00:00 on 17 Dec in Oslo
    assert [STEP[k].expires for k in BEFORE] == [deadline_over] * 3
    assert STEP["reminder-after"].expires == STEP["escalation"].at
    assert STEP["invitation"].expires is None
    assert STEP["escalation"].expires is None


def test_a_reminder_on_a_saturday_moves_to_friday():
    """4 days before Wed 16 Dec is Saturday 12 Dec: the reminder goes on Friday 11 Dec."""
    steps = plan(campaign(), schedule(days=(14, 4, 2)))
    assert days(steps)[1:4] == [
        ("reminder-before:1", D(2020, 12, 2)),
        ("reminder-before:2", D(2020, 12, 11)),
        ("reminder-before:3", D(2020, 12, 14)),
    ]


def test_an_opening_day_on_a_weekend_or_holiday_moves_the_invitation_forward():
    """Opening on Saturday 21 Nov invites on Monday 23 Nov; opening on 17 May 2021 invites on 18 May."""
    assert plan(campaign(opens=D(2020, 11, 21)), schedule())[0].day == D(2020, 11, 23)
    assert plan(campaign(D(2021, 5, 17), D(2021, 6, 15)), schedule())[0].day == D(2021, 5, 18)


def test_a_reminder_on_or_before_the_invitation_day_is_dropped():
    """Opening Wed 2 Dec: the 14-day reminder (2 Dec) is dropped, the others renumbered 1 and 2."""
    steps = plan(campaign(opens=D(2020, 12, 2)), schedule())
    assert days(steps)[:3] == [
        ("invitation", D(2020, 12, 2)),
        ("reminder-before:1", D(2020, 12, 9)),
        ("reminder-before:2", D(2020, 12, 14)),
    ]


def test_christmas_and_new_year_are_skipped():
    """Deadline Thu 24 Dec 2020: after-deadline reminder Mon 28 Dec, escalation (5) Tue 5 Jan."""
    steps = plan(campaign(deadline=D(2020, 12, 24)), schedule(escalation=5))
    assert days(steps)[-2:] == [("reminder-after", D(2020, 12, 28)), ("escalation", D(2021, 1, 5))]


def test_christmas_eve_is_a_working_day_by_law():
    """Deadline Wed 23 Dec: the after-deadline reminder goes on the 24th, escalation (5) on 4 Jan."""
    steps = plan(campaign(deadline=D(2020, 12, 23)), schedule(escalation=5))
    assert days(steps)[-2:] == [("reminder-after", D(2020, 12, 24)), ("escalation", D(2021, 1, 4))]


def test_easter_2021_deadline_on_maundy_thursday():
    """Deadline 1 Apr 2021: reminders 18, 25, 30 Mar; after Easter on Tue 6 Apr; escalation Fri 9 Apr."""
    steps = plan(campaign(D(2021, 3, 8), D(2021, 4, 1)), schedule())
    assert days(steps) == [
        ("invitation", D(2021, 3, 8)),
        ("reminder-before:1", D(2021, 3, 18)),
        ("reminder-before:2", D(2021, 3, 25)),
        ("reminder-before:3", D(2021, 3, 30)),
        ("reminder-after", D(2021, 4, 6)),
        ("escalation", D(2021, 4, 9)),
    ]


def test_reminders_moved_back_over_easter_collapse_into_one():
    """Deadline Tue 6 Apr 2021: 4 days before (Good Friday) and 1 before (Easter Monday) both land on
    Wed 31 Mar, which makes one reminder."""
    steps = plan(campaign(D(2021, 3, 8), D(2021, 4, 6)), schedule(days=(4, 1)))
    assert days(steps) == [
        ("invitation", D(2021, 3, 8)),
        ("reminder-before:1", D(2021, 3, 31)),
        ("reminder-after", D(2021, 4, 7)),
        ("escalation", D(2021, 4, 12)),
    ]


def test_ascension_day_and_17_may():
    """Deadline Tue 18 May 2021: 5 days before (Ascension Day) goes 12 May, 1 before (17 May) 14 May."""
    steps = plan(campaign(D(2021, 5, 3), D(2021, 5, 18)), schedule(days=(5, 1)))
    assert days(steps) == [
        ("invitation", D(2021, 5, 3)),
        ("reminder-before:1", D(2021, 5, 12)),
        ("reminder-before:2", D(2021, 5, 14)),
        ("reminder-after", D(2021, 5, 19)),
        ("escalation", D(2021, 5, 25)),
    ]  # 20, 21, (24 Whit Monday), 25


def test_send_hour_in_utc_follows_daylight_saving():
    """A campaign across 28 Mar 2021 sends at 08:00 UTC before the change and 07:00 UTC after it."""
    steps = plan(campaign(D(2021, 3, 15), D(2021, 4, 1)), schedule())
    assert [(s.day, s.at.hour) for s in steps] == [
        (D(2021, 3, 15), 8),
        (D(2021, 3, 18), 8),
        (D(2021, 3, 25), 8),
        (D(2021, 3, 30), 7),
        (D(2021, 4, 6), 7),
        (D(2021, 4, 9), 7),
    ]
    autumn = plan(campaign(D(2021, 10, 18), D(2021, 11, 3)), schedule(days=(5,)))
    assert [(s.day, s.at.hour) for s in autumn] == [
        (D(2021, 10, 18), 7),
        (D(2021, 10, 29), 7),
        (D(2021, 11, 4), 8),
        (D(2021, 11, 9), 8),
    ]
    assert all(s.at.astimezone(OSLO).hour == 9 for s in (*steps, *autumn))


def test_max_reminders_keeps_the_after_deadline_reminder_and_the_last_ones_before():
    """With max_reminders 2 the after-deadline reminder and the last reminder before (14 Dec) remain."""
    steps = plan(campaign(), schedule(max_reminders=2))
    assert days(steps) == [
        ("invitation", D(2020, 11, 23)),
        ("reminder-before:1", D(2020, 12, 14)),
        ("reminder-after", D(2020, 12, 17)),
        ("escalation", D(2020, 12, 22)),
    ]


def test_max_reminders_zero_sends_no_reminder_and_escalates_from_the_deadline():
    """With max_reminders 0 only the invitation and the escalation (3 working days after 16 Dec) remain."""
    steps = plan(campaign(), schedule(max_reminders=0))
    assert days(steps) == [("invitation", D(2020, 11, 23)), ("escalation", D(2020, 12, 21))]


def test_without_after_deadline_reminder_escalation_counts_from_the_deadline():
    """No after-deadline reminder: escalation 3 working days after Wed 16 Dec is Mon 21 Dec."""
    steps = plan(campaign(), schedule(after=False))
    assert days(steps)[-2:] == [("reminder-before:3", D(2020, 12, 14)), ("escalation", D(2020, 12, 21))]
    assert plan(campaign(), schedule(after=False, max_reminders=1))[1].day == D(2020, 12, 14)


def test_escalation_zero_means_never():
    """escalation_working_days 0: no escalation, and the after-deadline reminder never expires."""
    steps = plan(campaign(), schedule(escalation=0))
    assert [s.kind for s in steps][-1] == "reminder-after"
    assert steps[-1].expires is None


def test_an_invitation_after_the_deadline_has_no_after_deadline_reminder_on_its_day():
    """Opening on deadline Sat 19 Dec: invitation Mon 21 Dec, no reminder that day, escalation 3 later."""
    steps = plan(campaign(D(2020, 12, 19), D(2020, 12, 19)), schedule())
    assert days(steps) == [("invitation", D(2020, 12, 21)), ("escalation", D(2020, 12, 24))]


# -- due and skipped ------------------------------------------------------------------------------


def test_nothing_before_the_campaign_opens_then_the_invitation():
    """A minute before 09:00 on the opening day nothing is due; at 09:00 the invitation is."""
    assert due(oslo(2020, 11, 23, 8, 59), ROUND_2020, unit()) is None
    assert due(oslo(2020, 11, 23), ROUND_2020, unit()) == STEP["invitation"]


def test_polled_every_hour_each_step_goes_once_at_its_time():
    """Polling hourly through the round, each step goes exactly once, at its own send time."""
    state, sent_at = unit(), {}
    now = oslo(2020, 11, 20, 0)
    while now < oslo(2021, 1, 15, 0):
        step = due(now, ROUND_2020, state)
        if step is not None:
            assert step.key not in sent_at
            sent_at[step.key] = now
            state = unit(*state.sent, step.key, invited_at=state.invited_at or now)
        now += dt.timedelta(hours=1)
    assert sent_at == {s.key: s.at for s in ROUND_2020}


def test_never_the_same_step_twice():
    """Once a step's key is in the outbox, due no longer returns it, at any later instant."""
    assert due(oslo(2020, 12, 9, 9, 5), ROUND_2020, unit("invitation", *BEFORE[:2])) is None
    assert due(oslo(2020, 11, 30), ROUND_2020, unit("invitation")) is None


def test_a_three_day_outage_yields_the_single_latest_step():
    """Down from Mon 14 Dec 07:00 to Thu 17 Dec 10:00: only the after-deadline reminder goes;
    the 14 Dec reminder is skipped."""
    state = unit("invitation", *BEFORE[:2])
    now = oslo(2020, 12, 17, 10)
    assert due(now, ROUND_2020, state) == STEP["reminder-after"]
    assert skipped(now, ROUND_2020, state) == [STEP["reminder-before:3"]]
    after = unit(*state.sent, "reminder-after")
    assert due(now, ROUND_2020, after) is None
    assert due(oslo(2020, 12, 21, 12), ROUND_2020, after) is None
    assert due(oslo(2020, 12, 22), ROUND_2020, after) == STEP["escalation"]


def test_a_week_long_outage_before_the_deadline_sends_only_the_last_reminder():
    """Down 8–15 Dec: on 15 Dec only reminder-before:3 goes, reminder-before:2 is skipped."""
    state = unit("invitation", "reminder-before:1")
    assert due(oslo(2020, 12, 15, 10), ROUND_2020, state) == STEP["reminder-before:3"]
    assert skipped(oslo(2020, 12, 15, 10), ROUND_2020, state) == [STEP["reminder-before:2"]]


def test_a_reminder_before_still_matters_on_the_deadline_day_but_not_after():
    """A missed 14 Dec reminder goes at 22:00 on the 16th, but not at 00:30 on the 17th."""
    state = unit("invitation", *BEFORE[:2])
    assert due(oslo(2020, 12, 16, 22), ROUND_2020, state) == STEP["reminder-before:3"]
    assert due(oslo(2020, 12, 17, 0, 30), ROUND_2020, state) is None
    assert skipped(oslo(2020, 12, 17, 0, 30), ROUND_2020, state) == [STEP["reminder-before:3"]]
    assert due(oslo(2020, 12, 17, 9), ROUND_2020, state) == STEP["reminder-after"]


def test_the_after_deadline_reminder_no_longer_matters_once_escalation_time_has_come():
    """Down 17–22 Dec: on 22 Dec the escalation goes, and the after-deadline reminder is skipped."""
    state = unit("invitation", *BEFORE)
    assert due(oslo(2020, 12, 22, 11), ROUND_2020, state) == STEP["escalation"]
    assert skipped(oslo(2020, 12, 22, 11), ROUND_2020, state) == [STEP["reminder-after"]]


def test_nothing_earlier_once_a_later_step_has_gone():
    """If the outbox already has a later step (plan changed, clock set back), nothing earlier goes."""
    assert due(oslo(2020, 12, 15), ROUND_2020, unit("invitation", "reminder-after")) is None
    state = unit("invitation", "reminder-before:3")
    assert due(oslo(2020, 12, 14, 12), ROUND_2020, state) is None
    assert skipped(oslo(2020, 12, 14, 12), ROUND_2020, state) == [STEP[k] for k in BEFORE[:2]]


def test_no_step_after_a_valid_submission():
    """A unit with a valid submission gets nothing at any step's time, and nothing counts as skipped."""
    for state in (unit(has_valid=True), unit("invitation", has_valid=True)):
        for step in ROUND_2020:
            assert due(step.at, ROUND_2020, state) is None
        assert skipped(oslo(2021, 1, 10), ROUND_2020, state) == []


def test_nothing_to_a_failing_address_until_it_is_fixed():
    """A failing address gets nothing, not even the invitation; fixed, it gets the latest step only."""
    assert due(oslo(2020, 11, 23), ROUND_2020, unit(failing=True)) is None
    state = unit("invitation", failing=True)
    assert due(oslo(2020, 12, 10), ROUND_2020, state) is None
    assert skipped(oslo(2020, 12, 10), ROUND_2020, state) == [STEP["reminder-before:1"]]
    fixed = unit("invitation")
    assert due(oslo(2020, 12, 10), ROUND_2020, fixed) == STEP["reminder-before:2"]


def test_a_failing_address_is_still_escalated_on_its_day():
    """The leader's address bounced, so no reminder reached them: the escalation still goes to the
    superior leader and the coordinator on its own day, without waiting for a reminder."""
    state = unit("invitation", failing=True)
    assert due(oslo(2020, 12, 21, 12), ROUND_2020, state) is None
    assert due(oslo(2020, 12, 22), ROUND_2020, state) == STEP["escalation"]
    assert due(oslo(2020, 12, 22), ROUND_2020, unit("invitation", "escalation", failing=True)) is None


def test_an_inactive_unit_gets_nothing_and_on_reactivation_only_the_latest_step():
    """A unit removed from the roster gets nothing; back on 10 Dec it gets reminder-before:2 only."""
    for step in ROUND_2020:
        assert due(step.at, ROUND_2020, unit(active=False)) is None
        assert due(step.at, ROUND_2020, unit("invitation", active=False)) is None
    back = unit("invitation", "reminder-before:1")
    assert due(oslo(2020, 12, 10, 13), ROUND_2020, back) == STEP["reminder-before:2"]
    assert due(oslo(2020, 12, 10, 13), ROUND_2020, unit(*back.sent, "reminder-before:2")) is None


def test_a_late_invitation_goes_first_and_supersedes_the_steps_before_it():
    """A unit added on 10 Dec gets the invitation; no reminder follows until 14 Dec at 09:00."""
    added = oslo(2020, 12, 10, 12)
    assert due(added, ROUND_2020, unit()) == STEP["invitation"]
    invited = unit("invitation", invited_at=added)
    assert due(added + dt.timedelta(minutes=5), ROUND_2020, invited) is None
    assert due(oslo(2020, 12, 14, 8, 59), ROUND_2020, invited) is None
    assert due(oslo(2020, 12, 14), ROUND_2020, invited) == STEP["reminder-before:3"]
    assert skipped(added, ROUND_2020, invited) == [STEP["reminder-before:1"], STEP["reminder-before:2"]]


def test_without_invited_at_the_invitation_is_assumed_on_time():
    """Not knowing when the invitation went, the latest step whose time has come is due."""
    assert due(oslo(2020, 12, 10, 12), ROUND_2020, unit("invitation")) == STEP["reminder-before:2"]


def test_an_invitation_after_everything_is_the_last_mail():
    """A unit added on 4 Jan 2021 gets the invitation and then nothing: every step is superseded."""
    added = oslo(2021, 1, 4, 10)
    assert due(added, ROUND_2020, unit()) == STEP["invitation"]
    assert skipped(added, ROUND_2020, unit()) == list(ROUND_2020[1:])
    assert due(oslo(2021, 2, 1), ROUND_2020, unit("invitation", invited_at=added)) is None


@pytest.mark.parametrize(
    "sent",
    [
        (),
        ("invitation",),
        ("invitation", "reminder-before:1"),
        ("invitation", "reminder-before:3"),
        ("invitation", *BEFORE),
    ],
)
def test_every_step_whose_time_has_come_is_sent_due_or_skipped(sent):
    """At every hour, each reached step is exactly one of: already sent, due now, or skipped."""
    state = unit(*sent)
    now = oslo(2020, 11, 23, 0)
    while now < oslo(2020, 12, 31):
        now_due, now_skipped = due(now, ROUND_2020, state), skipped(now, ROUND_2020, state)
        for step in ROUND_2020:
            if step.at <= now and step.key not in state.sent:
                assert (step == now_due) + (step in now_skipped) == 1, (now, step.key)
        now += dt.timedelta(hours=1)


def test_a_naive_now_is_refused():
    """A naive datetime is an error: the rules never guess a time zone."""
    with pytest.raises(ValueError):
        due(dt.datetime(2020, 12, 1, 9), ROUND_2020, unit())


# -- time helpers ----------------------------------------------------------------------------------


def test_days_left():
    """Days left count Oslo calendar days: 23 on opening, 0 on the deadline (even 00:30), -1 after."""
    assert days_left(oslo(2020, 11, 23), campaign()) == 23
    assert days_left(oslo(2020, 12, 16, 0, 30), campaign()) == 0
    assert days_left(oslo(2020, 12, 16, 23, 59), campaign()) == 0
    assert days_left(oslo(2020, 12, 17, 0, 0), campaign()) == -1


def test_is_send_time():
    """Outreach may go on working days from the send hour: not before 09:00, not at weekends or Christmas."""
    assert is_send_time(oslo(2020, 12, 14), schedule(), "Europe/Oslo")
    assert is_send_time(oslo(2020, 12, 14, 23, 59), schedule(), "Europe/Oslo")
    assert not is_send_time(oslo(2020, 12, 14, 8, 59), schedule(), "Europe/Oslo")
    assert not is_send_time(oslo(2020, 12, 12, 12), schedule(), "Europe/Oslo")
    assert not is_send_time(oslo(2020, 12, 25, 12), schedule(), "Europe/Oslo")


def test_digest_day_moves_off_holidays_within_the_week():
    """A Monday digest in Easter week goes Tuesday, a Friday one Wednesday; a Saturday one goes Friday."""
    assert digest_day(D(2020, 12, 2), "monday") == D(2020, 11, 30)
    assert digest_day(D(2021, 4, 8), "monday") == D(2021, 4, 6)
    assert digest_day(D(2021, 5, 27), "monday") == D(2021, 5, 25)  # Whit Monday
    assert digest_day(D(2021, 3, 29), "friday") == D(2021, 3, 31)  # Good Friday, Maundy Thursday
    assert digest_day(D(2020, 12, 2), "Saturday") == D(2020, 12, 4)


def test_digest_on_monday_at_eight_once_a_week():
    """The Monday digest is due from 08:00, then not again until next Monday."""
    s = schedule()
    assert not is_digest_time(oslo(2020, 11, 30, 7, 59), s, None, "Europe/Oslo")
    assert is_digest_time(oslo(2020, 11, 30, 8), s, None, "Europe/Oslo")
    sent = oslo(2020, 11, 30, 8)
    assert not is_digest_time(oslo(2020, 11, 30, 9), s, sent, "Europe/Oslo")
    assert not is_digest_time(oslo(2020, 12, 4, 12), s, sent, "Europe/Oslo")
    assert is_digest_time(oslo(2020, 12, 7, 8), s, sent, "Europe/Oslo")


def test_no_digest_in_a_week_whose_digest_day_is_before_not_before():
    """`not_before` (``first_digest_day``, tests/test_closing.py) holds back a whole week: with it
    on Fri 4 Dec, neither Monday 30 Nov nor a catch-up on Tuesday 1 Dec; Monday 7 Dec's goes.
    With Friday digests the Friday itself, 4 Dec, is the first."""
    s = schedule()
    first = D(2020, 12, 4)
    assert not is_digest_time(oslo(2020, 11, 30, 9), s, None, "Europe/Oslo", not_before=first)
    assert not is_digest_time(oslo(2020, 12, 1, 9), s, None, "Europe/Oslo", not_before=first)
    assert is_digest_time(oslo(2020, 12, 7, 8), s, None, "Europe/Oslo", not_before=first)
    friday = dataclass_replace(s, digest_weekday="friday")
    assert not is_digest_time(oslo(2020, 11, 27, 8), friday, None, "Europe/Oslo", not_before=first)
    assert is_digest_time(oslo(2020, 12, 4, 8), friday, None, "Europe/Oslo", not_before=first)


def test_a_missed_digest_goes_on_the_next_working_day_of_the_week():
    """Down on Monday 7 Dec: the digest goes Tuesday from 08:00, but not on Saturday."""
    s, last = schedule(), oslo(2020, 11, 30, 8)
    assert not is_digest_time(oslo(2020, 12, 8, 7), s, last, "Europe/Oslo")
    assert is_digest_time(oslo(2020, 12, 8, 8), s, last, "Europe/Oslo")
    assert not is_digest_time(oslo(2020, 12, 12, 12), s, last, "Europe/Oslo")


def test_digest_on_easter_monday_goes_on_tuesday():
    """Easter Monday 2021 is a holiday: no digest that day, the week's digest on Tuesday 6 Apr."""
    s, last = schedule(), oslo(2021, 3, 29, 8)
    assert not is_digest_time(oslo(2021, 4, 5, 9), s, last, "Europe/Oslo")
    assert is_digest_time(oslo(2021, 4, 6, 8), s, last, "Europe/Oslo")


def test_digest_weeks_are_counted_in_the_campaigns_zone():
    """A digest at 00:30 Monday Oslo time (still Sunday in UTC) counts for that Monday's week."""
    last = oslo(2020, 12, 7, 0, 30)
    assert last.date() == D(2020, 12, 6)
    assert not is_digest_time(oslo(2020, 12, 7, 9), schedule(), last, "Europe/Oslo")


# -- simulate --------------------------------------------------------------------------------------


def test_simulate_the_2020_round_with_replies():
    """Day by day, each unit gets each step once until its reply; inactive, failing, done units get none."""
    units = [
        unit(code="A"),
        unit(code="B"),
        unit(code="C"),
        unit(code="D", active=False),
        unit(code="E", failing=True),
        unit(code="F", has_valid=True),
        unit("invitation", code="G"),
    ]
    replies = {"B": D(2020, 12, 3), "C": D(2020, 12, 17), "F": D(2020, 12, 1)}
    rows = simulate(campaign(), schedule(), units, D(2020, 11, 20), D(2020, 12, 31), replies=replies)
    assert rows == [
        (D(2020, 11, 23), "A", "invitation"),
        (D(2020, 11, 23), "B", "invitation"),
        (D(2020, 11, 23), "C", "invitation"),
        (D(2020, 12, 2), "A", "reminder-before:1"),
        (D(2020, 12, 2), "B", "reminder-before:1"),
        (D(2020, 12, 2), "C", "reminder-before:1"),
        (D(2020, 12, 2), "G", "reminder-before:1"),
        (D(2020, 12, 9), "A", "reminder-before:2"),
        (D(2020, 12, 9), "C", "reminder-before:2"),
        (D(2020, 12, 9), "G", "reminder-before:2"),
        (D(2020, 12, 14), "A", "reminder-before:3"),
        (D(2020, 12, 14), "C", "reminder-before:3"),
        (D(2020, 12, 14), "G", "reminder-before:3"),
        (D(2020, 12, 17), "A", "reminder-after"),
        (D(2020, 12, 17), "G", "reminder-after"),
        (D(2020, 12, 22), "A", "escalation"),
        (D(2020, 12, 22), "G", "escalation"),
    ]


def test_simulate_a_reply_on_a_reminder_day_stops_that_days_reminder():
    """A reply dated 9 Dec means the form was in that morning: no reminder on the 9th or later."""
    rows = simulate(
        campaign(),
        schedule(),
        [unit(code="A")],
        D(2020, 11, 23),
        D(2020, 12, 31),
        replies={"A": D(2020, 12, 9)},
    )
    assert rows == [(D(2020, 11, 23), "A", "invitation"), (D(2020, 12, 2), "A", "reminder-before:1")]


def test_simulate_starting_late_invites_then_follows_the_timeline():
    """Started Thu 10 Dec: invitation that day, then 14, 17 and 22 Dec; no catch-up reminder on the 11th."""
    rows = simulate(campaign(), schedule(), [unit(code="H")], D(2020, 12, 10), D(2021, 1, 10))
    assert rows == [
        (D(2020, 12, 10), "H", "invitation"),
        (D(2020, 12, 14), "H", "reminder-before:3"),
        (D(2020, 12, 17), "H", "reminder-after"),
        (D(2020, 12, 22), "H", "escalation"),
    ]


def test_simulate_sends_nothing_on_a_weekend():
    """A late start on Saturday 12 Dec waits for Monday 14 Dec for the invitation."""
    rows = simulate(campaign(), schedule(), [unit(code="H")], D(2020, 12, 12), D(2020, 12, 14))
    assert rows == [(D(2020, 12, 14), "H", "invitation")]


# -- closed days (schedule.closed_days) ------------------------------------------------------------

ROMJUL = (D(2020, 12, 24), D(2020, 12, 28), D(2020, 12, 29), D(2020, 12, 30), D(2020, 12, 31))


def closed(*days: dt.date, base: Schedule | None = None) -> Schedule:
    """The test schedule with the institution closed on ``days``."""
    return dataclass_replace(base or schedule(), closed_days=days)


def test_a_reminder_on_a_closed_day_moves_to_the_previous_working_day():
    """Closed Mon 14 Dec: the 2-day reminder goes on Fri 11 Dec; the other steps stay."""
    assert days(plan(campaign(), closed(D(2020, 12, 14)))) == [
        ("invitation", D(2020, 11, 23)),
        ("reminder-before:1", D(2020, 12, 2)),
        ("reminder-before:2", D(2020, 12, 9)),
        ("reminder-before:3", D(2020, 12, 11)),
        ("reminder-after", D(2020, 12, 17)),
        ("escalation", D(2020, 12, 22)),
    ]


def test_a_reminder_moved_back_over_a_closed_day_merges_with_the_one_there():
    """Offsets 7 and 6 (9 and 10 Dec); with 10 Dec closed both land on 9 Dec: one reminder."""
    s = schedule(days=(14, 7, 6))
    assert [d for k, d in days(plan(campaign(), s)) if k.startswith("reminder-before")] == [
        D(2020, 12, 2),
        D(2020, 12, 9),
        D(2020, 12, 10),
    ]
    moved = plan(campaign(), closed(D(2020, 12, 10), base=s))
    assert [(k, d) for k, d in days(moved) if k.startswith("reminder-before")] == [
        ("reminder-before:1", D(2020, 12, 2)),
        ("reminder-before:2", D(2020, 12, 9)),
    ]


def test_the_after_deadline_reminder_and_the_escalation_skip_closed_days():
    """Closed 17 and 21 Dec and Christmas Eve: after-deadline on Fri 18, escalation 22, 23, 28 → 28 Dec."""
    steps = {s.key: s for s in plan(campaign(), closed(D(2020, 12, 17), D(2020, 12, 21), D(2020, 12, 24)))}
    assert steps["reminder-after"].day == D(2020, 12, 18)
    assert steps["escalation"].day == D(2020, 12, 28)
    assert steps["reminder-after"].expires == steps["escalation"].at


def test_romjul_closed_pushes_the_escalation_into_january():
    """Deadline Tue 22 Dec: escalation 3 working days after 23 Dec is 29 Dec, or 6 Jan with romjul closed."""
    c = campaign(deadline=D(2020, 12, 22))
    assert {k: d for k, d in days(plan(c, schedule()))}["escalation"] == D(2020, 12, 29)
    assert days(plan(c, closed(*ROMJUL)))[-2:] == [
        ("reminder-after", D(2020, 12, 23)),
        ("escalation", D(2021, 1, 6)),
    ]


def test_an_opening_day_that_is_closed_moves_the_invitation_forward():
    """Opening on a closed Monday: the invitation goes on Tuesday."""
    assert plan(campaign(), closed(D(2020, 11, 23)))[0].day == D(2020, 11, 24)


def test_a_closed_day_on_a_weekend_or_holiday_changes_nothing():
    """Weekend days and Christmas Day listed as closed leave the 2020 round as it was."""
    harmless = closed(
        D(2020, 12, 5),
        D(2020, 12, 12),
        D(2020, 12, 13),
        D(2020, 12, 19),
        D(2020, 12, 20),
        D(2020, 12, 25),
        D(2020, 12, 26),
    )
    assert plan(campaign(), harmless) == ROUND_2020
    assert digest_day(D(2020, 12, 23), "monday", harmless.closed_days) == D(2020, 12, 21)


def test_no_send_time_on_a_closed_day():
    """Christmas Eve is a send day by law, not where the institution is closed."""
    assert is_send_time(oslo(2020, 12, 24, 10), schedule(), "Europe/Oslo")
    assert not is_send_time(oslo(2020, 12, 24, 10), closed(*ROMJUL), "Europe/Oslo")
    assert is_send_time(oslo(2021, 1, 4, 10), closed(*ROMJUL), "Europe/Oslo")


def test_the_digest_on_a_closed_monday_goes_on_the_next_working_day():
    """Closed Mon 30 Nov: the week's digest goes on Tue 1 Dec at the digest hour, once."""
    s, last = closed(D(2020, 11, 30)), oslo(2020, 11, 23, 8)
    assert digest_day(D(2020, 12, 2), "monday", s.closed_days) == D(2020, 12, 1)
    assert not is_digest_time(oslo(2020, 11, 30, 9), s, last, "Europe/Oslo")
    assert not is_digest_time(oslo(2020, 12, 1, 7), s, last, "Europe/Oslo")
    assert is_digest_time(oslo(2020, 12, 1, 8), s, last, "Europe/Oslo")
    assert not is_digest_time(oslo(2020, 12, 2, 8), s, oslo(2020, 12, 1, 8), "Europe/Oslo")


def test_a_week_closed_from_monday_to_thursday_has_its_digest_on_friday():
    """Romjul 2020 closed (Mon 28 – Thu 31 Dec), New Year's Day a holiday: that week has no digest day;
    with only 28–30 Dec closed it is Thursday 31 Dec."""
    assert digest_day(D(2020, 12, 29), "monday", ROMJUL) is None
    assert digest_day(D(2020, 12, 29), "monday", ROMJUL[:-1]) == D(2020, 12, 31)


def test_simulate_shows_the_closed_days():
    """Deadline Tue 22 Dec with romjul closed: nothing goes 24–31 Dec; the escalation on 6 Jan; a unit
    first seen on Christmas Eve is invited on 4 Jan."""
    c = campaign(deadline=D(2020, 12, 22))
    rows = simulate(c, closed(*ROMJUL), [unit(code="A")], D(2020, 11, 20), D(2021, 1, 10))
    assert rows == [
        (D(2020, 11, 23), "A", "invitation"),
        (D(2020, 12, 8), "A", "reminder-before:1"),
        (D(2020, 12, 15), "A", "reminder-before:2"),
        (D(2020, 12, 18), "A", "reminder-before:3"),
        (D(2020, 12, 23), "A", "reminder-after"),
        (D(2021, 1, 6), "A", "escalation"),
    ]
    late = simulate(c, closed(*ROMJUL), [unit(code="L")], D(2020, 12, 24), D(2021, 1, 10))
    assert late[0] == (D(2021, 1, 4), "L", "invitation")
