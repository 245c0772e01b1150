"""Excel's dates and times: which number formats show one, and serial day numbers as values.

An .xlsx stores a date as a number (days since 1899-12-30, or 1904-01-01 by ``date1904``) whose
cell style's number format says it is a date; nothing else marks it. ``xlsx.cells`` reads the
numbers and the formats, and asks here what each format shows and what the number is. The
results follow openpyxl's (``is_date_format``, ``from_excel``), with the differences noted on
``xlsx.cells``.
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache
from typing import Literal

DateKind = Literal["date", "datetime", "time", "timedelta"]
#: what a date cell holds once converted
DateValue = datetime.date | datetime.time | datetime.timedelta

#: the built-in number formats that show a date or a time (ECMA-376 18.8.30)
BUILTIN_DATE_FORMATS = {
    14: "mm-dd-yy",
    15: "d-mmm-yy",
    16: "d-mmm",
    17: "mmm-yy",
    18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM",
    20: "h:mm",
    21: "h:mm:ss",
    22: "m/d/yy h:mm",
    45: "mm:ss",
    46: "[h]:mm:ss",
    47: "mmss.0",
}
#: what a format shows literally: quoted text, \x, the _x padding and *x fill characters, and
#: bracketed colours or locales ([Red], [$-414]) but not elapsed time ([h], [mm], [ss])
_LITERALS = re.compile(r'"[^"]*"|\\.|_.|\*.|\[(?![hms]+\])[^\]]*\]', re.IGNORECASE)
_ELAPSED = re.compile(r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?|\[ss?\](\.0*)?", re.IGNORECASE)


@lru_cache(maxsize=256)
def format_kind(code: str) -> DateKind | None:
    """Whether a number format shows a date, a date and time, a time of day or elapsed time."""
    first = code.split(";")[0]  # the section for positive numbers decides, as in Excel
    if _ELAPSED.search(first):
        return "timedelta"
    bare = _LITERALS.sub("", first).lower()
    has_time = "h" in bare or "s" in bare
    # m is a month (mmm-yy) unless it stands with h or s (h:mm, mm:ss)
    if "d" in bare or "y" in bare or ("m" in bare and not has_time):
        return "datetime" if has_time else "date"
    return "time" if has_time else None


_EPOCHS = (datetime.datetime(1899, 12, 30), datetime.datetime(1904, 1, 1))


def from_serial(value: int | float, kind: DateKind, *, date1904: bool = False) -> int | float | DateValue:
    """An Excel serial day number as the kind its format shows (as openpyxl's from_excel).

    A value in [0, 1) is a time of day whatever the format; a serial beyond Python's dates
    stays a number.
    """
    try:
        if kind == "timedelta":
            delta = datetime.timedelta(days=value)
            return datetime.timedelta(
                seconds=delta.total_seconds() // 1, microseconds=round(delta.microseconds, -3)
            )
        day, fraction = divmod(value, 1)
        diff = datetime.timedelta(milliseconds=round(fraction * 86_400_000))
        if 0 <= value < 1 and diff.days == 0:
            minutes, seconds = divmod(diff.seconds, 60)
            return datetime.time(minutes // 60, minutes % 60, seconds, diff.microseconds)
        if 0 < value < 60 and not date1904:
            day += 1  # Excel counts a 29 February 1900 that never was; earlier serials shift
        moment = _EPOCHS[date1904] + datetime.timedelta(days=day) + diff
    except (OverflowError, ValueError):
        return value
    return moment.date() if kind == "date" else moment


def iso_value(text: str) -> datetime.date | datetime.time:
    """A ``t="d"`` cell: an ISO 8601 date, time, or date and time."""
    text = text.strip().removesuffix("Z")
    if "T" in text or " " in text:
        return datetime.datetime.fromisoformat(text)
    return datetime.time.fromisoformat(text) if ":" in text else datetime.date.fromisoformat(text)
