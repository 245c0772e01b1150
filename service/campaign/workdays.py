"""Norwegian working days, and the instant a local hour falls on: the calendar the campaign stands on.

A working day is Monday to Friday and not a Norwegian public holiday as listed by the maintained
``holidays`` package (New Year's Day, Maundy Thursday, Good Friday, Easter Monday, 1 May, 17 May,
Ascension Day, Whit Monday, 25 and 26 December). Christmas Eve and New Year's Eve are *not* public
holidays in Norway, so they are working days here unless the institution lists them among its own
closed days (``schedule.closed_days``, e.g. romjul): every function here takes that set as
``closed``, empty by default, and treats its days like public holidays.

Pure: no clock, no I/O. Days are plain ``date``s in the campaign's zone; instants are aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from functools import cache
from zoneinfo import ZoneInfo

import holidays

ONE_DAY = dt.timedelta(days=1)
UTC = dt.UTC
NONE_CLOSED: frozenset[dt.date] = frozenset()


@cache
def holidays_in(year: int) -> frozenset[dt.date]:
    """Norway's public holidays in ``year``, whatever weekday they fall on (never "every Sunday")."""
    # Norway calls every Sunday a helligdag, and older releases of `holidays` listed them all unless
    # told not to (include_sundays defaulted to True). Say it explicitly so this set means the same
    # in every version; weekends are excluded on their own in is_working_day anyway.
    table = holidays.country_holidays("NO", years=year, include_sundays=False)
    return frozenset(table.keys())


def _date(d: dt.date) -> dt.date:
    # A datetime is a date, but never equal to one: `datetime(2020, 12, 25) in {date(2020, 12, 25)}`
    # is False, so a datetime passed by mistake would silently count Christmas as a working day.
    if isinstance(d, dt.datetime):
        raise TypeError(f"expected a date, got the datetime {d!r}; take .date() in the campaign's zone")
    return d


def is_working_day(d: dt.date, closed: Collection[dt.date] = NONE_CLOSED) -> bool:
    """True on Monday–Friday unless it is a Norwegian public holiday or one of the ``closed`` days."""
    d = _date(d)
    return d.weekday() < 5 and d not in holidays_in(d.year) and d not in closed


def next_working_day(d: dt.date, closed: Collection[dt.date] = NONE_CLOSED) -> dt.date:
    """``d`` itself if it is a working day, else the first working day after it."""
    d = _date(d)
    while not is_working_day(d, closed):
        d += ONE_DAY
    return d


def previous_working_day(d: dt.date, closed: Collection[dt.date] = NONE_CLOSED) -> dt.date:
    """``d`` itself if it is a working day, else the last working day before it."""
    d = _date(d)
    while not is_working_day(d, closed):
        d -= ONE_DAY
    return d


def add_working_days(d: dt.date, n: int, closed: Collection[dt.date] = NONE_CLOSED) -> dt.date:
    """The ``n``-th working day after ``d`` (before it when ``n`` < 0); ``d`` itself when ``n`` == 0.

    ``d`` need not be a working day: 1 working day after Saturday is Monday (if Monday works).
    """
    d = _date(d)
    step = ONE_DAY if n >= 0 else -ONE_DAY
    left = abs(n)
    while left:
        d += step
        if is_working_day(d, closed):
            left -= 1
    return d


def working_days_between(a: dt.date, b: dt.date, closed: Collection[dt.date] = NONE_CLOSED) -> int:
    """How many working days lie after ``a`` up to and including ``b``; negative when ``b`` < ``a``.

    The inverse of ``add_working_days`` for a working day ``b``:
    ``add_working_days(a, working_days_between(a, b)) == b``.
    """
    a, b = _date(a), _date(b)
    if b < a:
        return -working_days_between(b, a, closed)
    count, d = 0, a
    while d < b:
        d += ONE_DAY
        count += is_working_day(d, closed)
    return count


def _zone(tz: str | dt.tzinfo) -> dt.tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def at_local_hour(day: dt.date, hour: int, tz: str | dt.tzinfo) -> dt.datetime:
    """The instant (aware, UTC) when a wall clock in ``tz`` shows ``hour``:00 on ``day``.

    09:00 in Europe/Oslo is 08:00 UTC in winter and 07:00 UTC in summer, the change days included.
    """
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0–23, got {hour}")
    # zoneinfo gives every wall time exactly one instant (PEP 495, fold=0): an hour skipped in
    # spring (02:00 on 2021-03-28 in Oslo) is read with the offset before the change, so it lands
    # at 03:00 summer time; an hour that occurs twice in autumn is its first occurrence.
    local = dt.datetime.combine(_date(day), dt.time(hour), tzinfo=_zone(tz))
    return local.astimezone(UTC)


def local_date(at: dt.datetime, tz: str | dt.tzinfo) -> dt.date:
    """The calendar day a wall clock in ``tz`` shows at the aware instant ``at``."""
    if at.tzinfo is None:
        raise ValueError(f"expected an aware datetime, got the naive {at!r}")
    return at.astimezone(_zone(tz)).date()


def first_send_time(
    day: dt.date, send_hour: int, tz: str | dt.tzinfo, closed: Collection[dt.date] = NONE_CLOSED
) -> dt.datetime:
    """The send hour of ``day``, or of the next working day when ``day`` is not one: when mail
    held for someone away until ``day`` may go."""
    return at_local_hour(next_working_day(day, closed), send_hour, tz)
