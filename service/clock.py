"""The only place that reads wall time.

Everything that decides by time takes a ``Clock`` (or a ``datetime``) from its caller, so a campaign
can be replayed at any date with ``--as-of`` and tests can fast-forward without sleeping.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

from service.errors import SkjemapostError

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FixedClock:
    """A clock that stands still until told to move; for ``--as-of`` and tests."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta

    def set(self, at: dt.datetime) -> None:
        self._at = at.astimezone(UTC)


class AsOfError(SkjemapostError, ValueError):
    """An ``--as-of`` value that is neither a date nor a date and time."""


def parse_as_of(text: str, tz: str) -> dt.datetime:
    """Parse ``--as-of``: ``YYYY-MM-DD`` (midnight, local), ``YYYY-MM-DDTHH:MM`` (local) or ISO 8601
    with an offset. Naive values are read in the campaign's time zone ``tz``; the result is UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise AsOfError(
            f"--as-of {text!r} is not a date or time; use YYYY-MM-DD, YYYY-MM-DDTHH:MM "
            "or an ISO 8601 time with offset (2020-12-16T09:00+01:00)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(UTC)


def local(at: dt.datetime, tz: str) -> dt.datetime:
    """``at`` seen on a wall clock in ``tz``."""
    return at.astimezone(ZoneInfo(tz))
