"""One cell's value as the answer type of a form item, or why it cannot be.

``forms.read`` locates the cells; this converts what it finds, by the item's type: whole numbers
typed with spaces or as "12,0", dates as 16.12.2020, 2020-12-16 or an Excel serial whose date
format was lost, a choice by its label in either language or its value id, and a multichoice
tick as "Ja", "x", "✓"... A value that cannot be converted raises ``BadValue`` with the
``ConversionKind`` the leader's correction message is chosen by.
"""

from __future__ import annotations

import datetime
import re

from service.forms.model import YES_NO, Item, normalise
from service.forms.validate import ConversionKind
from service.xlsx.dates import from_serial

_TICKED = {"ja", "yes", "x", "✓", "✔", "true", "sann", "1"}
_UNTICKED = {"nei", "no", "false", "usann", "0", "-"}
_DATE_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
#: Excel serial day numbers of 1950-01-01 and 2099-12-31: a number there in a date field is a date
#: whose format was lost; anything else is a typo
_SERIALS = (18264, 73050)


class BadValue(Exception):
    """The cell holds something the item's type cannot take; ``kind`` says what was wrong."""

    def __init__(self, kind: ConversionKind) -> None:
        self.kind = kind


def convert(item: Item, raw: object) -> object:
    """One non-empty cell value as the item's type; raises BadValue with the reason."""
    t = item.type
    if t in ("integer", "scale"):
        return _integer(raw, t)
    if t == "date":
        return _date(raw)
    if t in ("choice", "yesno"):
        if isinstance(raw, bool) and t == "yesno":
            return YES_NO[0 if raw else 1].value
        text = shown(raw)
        choice = item.match(text)
        if choice is None:
            raise BadValue("choice")
        return choice.value
    # text, longtext: what was typed, as the leader would read it
    if isinstance(raw, datetime.datetime | datetime.date):
        return raw.strftime("%d.%m.%Y")
    text = shown(raw).replace("\r\n", "\n").strip()
    return text if t == "longtext" else " ".join(text.split("\n"))


def _integer(raw: object, kind: ConversionKind) -> int:
    if isinstance(raw, bool | datetime.date | datetime.time):
        raise BadValue(kind)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise BadValue(kind)
    text = re.sub(r"[\s\u00a0\u202f]", "", str(raw))  # "1 200" with (narrow) no-break spaces
    m = re.fullmatch(r"([+-]?\d{1,9})(?:[.,]0+)?", text)
    if m is None:
        raise BadValue(kind)
    return int(m[1])


def _date(raw: object) -> datetime.date:
    if isinstance(raw, datetime.datetime):
        return raw.date()
    if isinstance(raw, datetime.date):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if _SERIALS[0] <= raw <= _SERIALS[1]:
            value = from_serial(raw, "date")
            if isinstance(value, datetime.date):
                return value
        raise BadValue("date")
    text = str(raw).strip()
    m = _DATE_DMY.fullmatch(text)
    ymd = (int(m[3]), int(m[2]), int(m[1])) if m else None
    m = _DATE_ISO.fullmatch(text)
    ymd = (int(m[1]), int(m[2]), int(m[3])) if m else ymd
    try:
        if ymd is not None:
            return datetime.date(*ymd)
    except ValueError:
        pass
    raise BadValue("date")


def tick(raw: object) -> bool:
    """Whether a multichoice option's cell says ticked; raises BadValue("tick") if neither."""
    if isinstance(raw, bool):
        return raw
    key = normalise(shown(raw))
    if key in _TICKED:
        return True
    if key in _UNTICKED:
        return False
    raise BadValue("tick")


def blank(raw: object) -> bool:
    """An empty cell, or one holding only spaces."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def shown(raw: object) -> str:
    """The value as the leader sees it in the cell (for messages and text answers)."""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, datetime.datetime | datetime.date):
        return raw.strftime("%d.%m.%Y")
    return str(raw)
