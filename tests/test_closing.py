"""When the digests begin and when a campaign ends: pure rules with the time passed in, and the config.

Autumn 2020: opens Monday 23 Nov, deadline Wednesday 16 Dec; by default the campaign closes four
weeks after the deadline, Wednesday 13 Jan 2021.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_campaign import campaign, schedule, unit

from service.campaign.plan import (
    final_summary_day,
    first_digest_day,
    is_closed,
    is_digest_due,
    is_final_summary_time,
    simulate,
)
from service.config import settings as config
from service.errors import ConfigError

D = dt.date
OSLO = ZoneInfo("Europe/Oslo")


def oslo(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, mi, tzinfo=OSLO).astimezone(dt.UTC)


# -- the first digest ------------------------------------------------------------------------------


def test_the_first_digest_waits_five_working_days_after_the_invitations():
    """Opening Monday 23 Nov: with Monday digests the first is Monday 30 Nov; with Friday digests
    Friday 4 Dec, since Friday 27 Nov is only four working days after the invitations."""
    assert first_digest_day(campaign(), schedule()) == D(2020, 11, 30)
    assert first_digest_day(campaign(), schedule(digest_weekday="friday")) == D(2020, 12, 4)
    assert first_digest_day(campaign(), schedule(digest_weekday="wednesday")) == D(2020, 12, 2)


def test_the_wait_is_configurable_and_counts_working_days_only():
    """Opening on Wednesday 31 Mar 2021, before Easter: five working days later is Monday 12 Apr
    (1, 2 and 5 April are holidays), the Monday digest's own day. Zero days: the opening week."""
    easter = campaign(D(2021, 3, 31), D(2021, 5, 5))
    assert first_digest_day(easter, schedule()) == D(2021, 4, 12)
    none = replace(schedule(), first_digest_after_working_days=0)
    assert first_digest_day(campaign(), none) == D(2020, 11, 23)
    ten = replace(schedule(), first_digest_after_working_days=10)
    assert first_digest_day(campaign(), ten) == D(2020, 12, 7)


def test_an_opening_on_a_saturday_counts_from_the_invitation_on_monday():
    """Invitations go on the next working day; the five days count from there."""
    assert first_digest_day(campaign(D(2020, 11, 21)), schedule()) == D(2020, 11, 30)


def test_no_digest_before_the_first_digest_day_then_weekly():
    """Nothing on the opening day or in its week; the first on Monday 30 Nov from 08:00; then the
    next week's on 7 Dec, once."""
    c, s = campaign(), schedule()
    assert not is_digest_due(oslo(2020, 11, 23, 9), c, s, None)
    assert not is_digest_due(oslo(2020, 11, 27, 12), c, s, None)
    assert not is_digest_due(oslo(2020, 11, 30, 7, 59), c, s, None)
    assert is_digest_due(oslo(2020, 11, 30, 8), c, s, None)
    sent = oslo(2020, 11, 30, 8)
    assert not is_digest_due(oslo(2020, 12, 1, 8), c, s, sent)
    assert is_digest_due(oslo(2020, 12, 7, 8), c, s, sent)


def test_a_friday_digest_skips_the_opening_week():
    c, s = campaign(), schedule(digest_weekday="friday")
    assert not is_digest_due(oslo(2020, 11, 27, 8), c, s, None)
    assert is_digest_due(oslo(2020, 12, 4, 8), c, s, None)


# -- the campaign ends -----------------------------------------------------------------------------


def test_the_campaign_closes_four_weeks_after_the_deadline_by_default():
    """Closed from local midnight of Wednesday 13 Jan 2021 (the default); open until then."""
    c = campaign()
    assert c.closes_on == D(2021, 1, 13)
    assert not is_closed(oslo(2021, 1, 12, 23, 59), c)
    assert is_closed(oslo(2021, 1, 13, 0, 0), c)
    assert is_closed(oslo(2021, 6, 1), c)
    assert replace(c, closes=D(2020, 12, 23)).closes_on == D(2020, 12, 23)


def test_no_digest_once_the_campaign_is_closed():
    """The weekly digest of Monday 11 Jan goes; Monday 18 Jan's does not (closed on the 13th)."""
    c, s = campaign(), schedule()
    assert is_digest_due(oslo(2021, 1, 11, 8), c, s, oslo(2021, 1, 4, 8))
    assert not is_digest_due(oslo(2021, 1, 18, 8), c, s, oslo(2021, 1, 11, 8))
    assert not is_digest_due(oslo(2021, 1, 18, 8), c, s, None)


def test_the_final_summary_goes_from_the_send_hour_of_the_first_working_day_at_or_after_closing():
    """Closing on Wednesday: that day from 09:00. Closing on Saturday 16 Jan: Monday 18 Jan. A
    runner that was down catches up on a later working day, never at a weekend."""
    c, s = campaign(), schedule()
    assert final_summary_day(c, s) == D(2021, 1, 13)
    assert not is_final_summary_time(oslo(2021, 1, 12, 12), c, s)
    assert not is_final_summary_time(oslo(2021, 1, 13, 8, 59), c, s)
    assert is_final_summary_time(oslo(2021, 1, 13, 9), c, s)
    assert is_final_summary_time(oslo(2021, 1, 15, 14), c, s)
    assert not is_final_summary_time(oslo(2021, 1, 16, 12), c, s)  # Saturday
    saturday = replace(c, closes=D(2021, 1, 16))
    assert final_summary_day(saturday, s) == D(2021, 1, 18)
    assert not is_final_summary_time(oslo(2021, 1, 16, 12), saturday, s)
    assert is_final_summary_time(oslo(2021, 1, 18, 9), saturday, s)


def test_a_closing_on_a_holiday_moves_the_final_summary_to_the_next_working_day():
    """Closing on Easter Monday 2021: the summary on Tuesday 6 April."""
    spring = campaign(D(2021, 3, 1), D(2021, 3, 24))
    assert final_summary_day(replace(spring, closes=D(2021, 4, 5)), schedule()) == D(2021, 4, 6)


def test_nothing_is_simulated_after_the_campaign_closes():
    """With closing the day after the deadline, the after-deadline reminder and the escalation
    never come: the plan ends with the last reminder before the deadline."""
    c = replace(campaign(), closes=D(2020, 12, 17))
    rows = simulate(c, schedule(), [unit("invitation")], D(2020, 11, 23), D(2021, 2, 1))
    assert [key for _, _, key in rows] == ["reminder-before:1", "reminder-before:2", "reminder-before:3"]
    assert max(day for day, _, _ in rows) < D(2020, 12, 17)


# -- the config ------------------------------------------------------------------------------------

MINIMAL = """
[campaign]
id = "aml-2020"
title = "Test"
opens = 2020-11-23
deadline = 2020-12-16
[mail]
from_address = "hms@example.edu"
"""


def load(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "skjemapost.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(path, {})


def test_defaults_close_four_weeks_after_the_deadline_first_digest_after_five_days(tmp_path):
    cfg = load(tmp_path, MINIMAL)
    assert cfg.campaign.closes == D(2021, 1, 13) and cfg.campaign.closes_on == D(2021, 1, 13)
    assert cfg.schedule.first_digest_after_working_days == 5
    assert cfg.observers == ()
    assert cfg.web.public_url == ""


def test_a_closing_on_or_before_the_deadline_is_refused(tmp_path):
    """`check` names campaign.closes: it must come after the deadline."""
    for day in ("2020-12-16", "2020-12-01"):
        text = MINIMAL.replace("deadline = 2020-12-16", f"deadline = 2020-12-16\ncloses = {day}")
        with pytest.raises(ConfigError) as caught:
            load(tmp_path, text)
        assert [p.where for p in caught.value.problems] == ["campaign.closes"]
        assert "after campaign.deadline" in caught.value.problems[0].message
    ok = load(
        tmp_path, MINIMAL.replace("deadline = 2020-12-16", "deadline = 2020-12-16\ncloses = 2021-01-04")
    )
    assert ok.campaign.closes_on == D(2021, 1, 4)


def test_observers_take_name_email_and_language(tmp_path):
    text = (
        MINIMAL
        + '[[observers]]\nname = "Hovedverneombudet"\nemail = "hvo@example.edu"\n'
        + '[[observers]]\nname = "Tekna"\nemail = "tekna@example.org"\nlanguage = "en"\n'
        + '[web]\npublic_url = "https://skjema.example.edu/"\n'
    )
    cfg = load(tmp_path, text)
    assert [(o.name, o.email, o.language) for o in cfg.observers] == [
        ("Hovedverneombudet", "hvo@example.edu", "nb"),
        ("Tekna", "tekna@example.org", "en"),
    ]
    assert cfg.web.public_url == "https://skjema.example.edu/"


def test_bad_observers_and_public_url_are_named_by_key(tmp_path):
    text = (
        MINIMAL
        + '[[observers]]\nname = "HVO"\nemail = "not an address"\nlanguage = "de"\n'
        + '[web]\npublic_url = "skjema.example.edu"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert {p.where for p in caught.value.problems} == {
        "observers[0].email",
        "observers[0].language",
        "web.public_url",
    }
