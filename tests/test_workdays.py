"""Norwegian working days and DST-correct local send times (service/workdays.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from service.campaign.workdays import (
    add_working_days,
    at_local_hour,
    holidays_in,
    is_working_day,
    local_date,
    next_working_day,
    previous_working_day,
    working_days_between,
)

D = dt.date
UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2020, 12, 23), True),  # Wednesday
        (D(2020, 12, 24), True),  # Christmas Eve: not a public holiday in Norway
        (D(2020, 12, 25), False),  # Christmas Day (Friday)
        (D(2020, 12, 26), False),  # Second Day of Christmas, a Saturday anyway
        (D(2020, 12, 27), False),  # Sunday
        (D(2020, 12, 28), True),  # Monday
        (D(2020, 12, 31), True),  # New Year's Eve: not a public holiday either
        (D(2021, 1, 1), False),  # New Year's Day (Friday)
        (D(2021, 4, 1), False),  # Maundy Thursday
        (D(2021, 4, 2), False),  # Good Friday
        (D(2021, 4, 5), False),  # Easter Monday
        (D(2021, 4, 6), True),
        (D(2021, 5, 13), False),  # Ascension Day (Thursday)
        (D(2021, 5, 14), True),
        (D(2021, 5, 17), False),  # Constitution Day (Monday in 2021)
        (D(2021, 5, 24), False),  # Whit Monday
        (D(2022, 5, 17), False),  # Constitution Day (Tuesday in 2022)
        (D(2021, 3, 6), False),  # an ordinary Saturday
        (D(2021, 3, 8), True),  # an ordinary Monday
    ],
)
def test_is_working_day(day, working):
    """Weekends and Norwegian public holidays are not working days; 24 and 31 December are."""
    assert is_working_day(day) is working


def test_holiday_table_never_lists_every_sunday():
    """The holiday set holds the 12 public holidays of 2021, not all 52 Sundays."""
    table = holidays_in(2021)
    assert len(table) == 12
    assert D(2021, 3, 7) not in table  # an ordinary Sunday
    assert D(2021, 4, 4) in table  # Easter Sunday is a holiday in its own right
    assert D(2021, 5, 17) in table


def test_holidays_are_computed_once_per_year():
    """Asking about many days of one year builds that year's table once."""
    holidays_in.cache_clear()
    for n in range(365):
        is_working_day(D(2023, 1, 1) + dt.timedelta(days=n))
    assert holidays_in.cache_info().misses == 1


def test_a_datetime_is_refused():
    """A datetime (never equal to a date) is refused rather than silently called a working day."""
    with pytest.raises(TypeError):
        is_working_day(dt.datetime(2020, 12, 25, 9))


def test_next_working_day():
    """The next working day is the day itself if it works, else skips weekends and holidays."""
    assert next_working_day(D(2020, 11, 23)) == D(2020, 11, 23)
    assert next_working_day(D(2020, 11, 21)) == D(2020, 11, 23)  # Saturday -> Monday
    assert next_working_day(D(2020, 12, 25)) == D(2020, 12, 28)  # Christmas -> Monday
    assert next_working_day(D(2021, 4, 1)) == D(2021, 4, 6)  # Maundy Thursday -> Tuesday
    assert next_working_day(D(2021, 5, 17)) == D(2021, 5, 18)


def test_previous_working_day():
    """The previous working day is the day itself if it works, else steps back over holidays."""
    assert previous_working_day(D(2020, 12, 14)) == D(2020, 12, 14)
    assert previous_working_day(D(2020, 12, 12)) == D(2020, 12, 11)  # Saturday -> Friday
    assert previous_working_day(D(2021, 4, 5)) == D(2021, 3, 31)  # Easter Monday -> Wednesday
    assert previous_working_day(D(2021, 1, 3)) == D(2020, 12, 31)  # over New Year's Day
    assert previous_working_day(D(2021, 5, 17)) == D(2021, 5, 14)


def test_add_working_days():
    """Adding working days skips the weekend, Christmas and New Year's Day; 0 is the day itself."""
    assert add_working_days(D(2020, 12, 17), 3) == D(2020, 12, 22)  # Fri, Mon, Tue
    assert add_working_days(D(2020, 12, 24), 5) == D(2021, 1, 4)  # 28, 29, 30, 31 Dec, 4 Jan
    assert add_working_days(D(2020, 12, 24), 1) == D(2020, 12, 28)
    assert add_working_days(D(2020, 12, 31), 1) == D(2021, 1, 4)
    assert add_working_days(D(2020, 12, 12), 1) == D(2020, 12, 14)  # from a Saturday
    assert add_working_days(D(2020, 12, 12), 0) == D(2020, 12, 12)
    assert add_working_days(D(2021, 4, 6), -1) == D(2021, 3, 31)  # back over Easter


def test_working_days_between():
    """Counts working days after a, up to and including b; negative backwards; 0 on the same day."""
    assert working_days_between(D(2020, 12, 17), D(2020, 12, 22)) == 3
    assert working_days_between(D(2020, 12, 23), D(2021, 1, 4)) == 6  # 24, 28, 29, 30, 31, 4
    assert working_days_between(D(2021, 3, 31), D(2021, 4, 6)) == 1
    assert working_days_between(D(2021, 4, 6), D(2021, 3, 31)) == -1
    assert working_days_between(D(2020, 12, 25), D(2020, 12, 27)) == 0
    assert working_days_between(D(2020, 12, 16), D(2020, 12, 16)) == 0


def test_working_days_between_inverts_add_working_days():
    """For every start day over half a year and n up to 10, counting back the days added gives n."""
    for offset in range(0, 190):
        a = D(2020, 12, 1) + dt.timedelta(days=offset)
        for n in range(0, 11):
            assert working_days_between(a, add_working_days(a, n)) == n


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (D(2021, 3, 27), utc(2021, 3, 27, 8)),  # Saturday before: winter time, UTC+1
        (D(2021, 3, 28), utc(2021, 3, 28, 7)),  # the change day: 09:00 is already summer time
        (D(2021, 3, 29), utc(2021, 3, 29, 7)),
        (D(2021, 10, 30), utc(2021, 10, 30, 7)),  # still summer time, UTC+2
        (D(2021, 10, 31), utc(2021, 10, 31, 8)),  # the change day: 09:00 is winter time again
        (D(2020, 12, 16), utc(2020, 12, 16, 8)),
    ],
)
def test_nine_in_oslo_in_utc_follows_daylight_saving(day, expected):
    """09:00 in Oslo is 08:00 UTC in winter and 07:00 UTC in summer, on the change days too."""
    got = at_local_hour(day, 9, "Europe/Oslo")
    assert got == expected
    assert got.tzinfo is UTC
    assert got.astimezone(ZoneInfo("Europe/Oslo")).hour == 9


def test_hours_skipped_or_repeated_by_daylight_saving_have_one_instant():
    """02:00 on the spring change day (skipped) is 03:00 summer time; on the autumn one, the first 02:00."""
    assert at_local_hour(D(2021, 3, 28), 2, "Europe/Oslo") == utc(2021, 3, 28, 1)
    assert at_local_hour(D(2021, 10, 31), 2, "Europe/Oslo") == utc(2021, 10, 31, 0)
    assert at_local_hour(D(2021, 3, 28), 0, ZoneInfo("Europe/Oslo")) == utc(2021, 3, 27, 23)


def test_at_local_hour_refuses_a_bad_hour():
    """An hour outside 0–23 is an error, not a rollover into the next day."""
    with pytest.raises(ValueError):
        at_local_hour(D(2020, 12, 16), 24, "Europe/Oslo")


def test_local_date():
    """The local day is the Oslo calendar day: 23:30 UTC on 16 December is already the 17th."""
    assert local_date(utc(2020, 12, 16, 23, 30), "Europe/Oslo") == D(2020, 12, 17)
    assert local_date(utc(2020, 12, 16, 22, 59), "Europe/Oslo") == D(2020, 12, 16)
    with pytest.raises(ValueError):
        local_date(dt.datetime(2020, 12, 16, 12), "Europe/Oslo")


# -- the institution's own closed days (schedule.closed_days) --------------------------------------

ROMJUL = frozenset({D(2020, 12, 24), D(2020, 12, 28), D(2020, 12, 29), D(2020, 12, 30), D(2020, 12, 31)})


def test_closed_days_are_not_working_days():
    """Christmas Eve works by law, but not where the institution has closed it; neighbours still work."""
    assert is_working_day(D(2020, 12, 24))
    assert not is_working_day(D(2020, 12, 24), ROMJUL)
    assert not is_working_day(D(2020, 12, 30), tuple(ROMJUL))  # any collection of dates will do
    assert is_working_day(D(2020, 12, 23), ROMJUL)
    assert is_working_day(D(2021, 1, 4), ROMJUL)


def test_closed_days_are_skipped_like_holidays():
    """Romjul closed: the working day after 23 Dec is 4 Jan, and back again; one working day between."""
    assert next_working_day(D(2020, 12, 24), ROMJUL) == D(2021, 1, 4)
    assert previous_working_day(D(2020, 12, 31), ROMJUL) == D(2020, 12, 23)
    assert add_working_days(D(2020, 12, 23), 1, ROMJUL) == D(2021, 1, 4)
    assert add_working_days(D(2021, 1, 4), -1, ROMJUL) == D(2020, 12, 23)
    assert add_working_days(D(2020, 12, 17), 5, ROMJUL) == D(2021, 1, 4)  # 18, 21, 22, 23 Dec, 4 Jan
    assert working_days_between(D(2020, 12, 23), D(2021, 1, 4), ROMJUL) == 1
    assert working_days_between(D(2021, 1, 4), D(2020, 12, 23), ROMJUL) == -1


def test_working_days_between_inverts_add_working_days_with_closed_days():
    """Counting back the days added gives n across romjul too."""
    for offset in range(0, 45):
        a = D(2020, 12, 1) + dt.timedelta(days=offset)
        for n in range(0, 8):
            assert working_days_between(a, add_working_days(a, n, ROMJUL), ROMJUL) == n


def test_a_closed_day_on_a_weekend_or_holiday_changes_nothing():
    """Listing a Saturday, a Sunday, Christmas Day or New Year's Day as closed moves no answer."""
    harmless = {D(2020, 12, 25), D(2020, 12, 26), D(2020, 12, 27), D(2021, 1, 1), D(2021, 1, 2)}
    for offset in range(0, 30):
        d = D(2020, 12, 15) + dt.timedelta(days=offset)
        assert is_working_day(d, harmless) is is_working_day(d)
        assert next_working_day(d, harmless) == next_working_day(d)
        assert previous_working_day(d, harmless) == previous_working_day(d)
        assert add_working_days(d, 3, harmless) == add_working_days(d, 3)
