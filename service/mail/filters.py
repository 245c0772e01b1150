"""The Jinja filters of the mail templates: dates, counts and lists in the reader's language.

Each filter takes the language (and for dates the campaign's time zone) as keyword arguments;
``filters`` binds them once per language, so a template writes ``{{ deadline | longdate }}``.
Kept apart from ``render``, which compiles and renders the templates, because these are the
wording rules (Norwegian "kl.", the spaced "70 %") that a template author looks up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from functools import lru_cache, partial
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.lists import format_list

from service.mail.smtpreason import humane
from service.models import Language

_LOCALES: dict[Language, Locale] = {"nb": Locale.parse("nb"), "en": Locale.parse("en_GB")}
_NBSP = "\u00a0"


def _local_date(value: dt.date, tz: ZoneInfo) -> dt.date:
    # A datetime is a date too; show the day it is in Oslo, not in UTC.
    if isinstance(value, dt.datetime):
        return _aware(value).astimezone(tz).date()
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} in a mail context; pass an aware one")
    return value


@lru_cache(maxsize=4096)
def _format_date(day: dt.date, pattern: str, lang: Language) -> str:
    # Cached: a batch of hundreds of mails shows the same few dates (the deadline above all), and
    # babel parses the locale and pattern on every call.
    return format_date(day, pattern, locale=_LOCALES[lang])


def longdate(value: dt.date, lang: Language, tz: ZoneInfo) -> str:
    """nb ``onsdag 16. desember 2020``, en ``Wednesday 16 December 2020``."""
    pattern = "EEEE d. MMMM y" if lang == "nb" else "EEEE d MMMM y"
    return _format_date(_local_date(value, tz), pattern, lang)


def shortdate(value: dt.date, lang: Language, tz: ZoneInfo) -> str:
    """nb ``16.12.2020``, en ``16 Dec 2020``."""
    pattern = "dd.MM.y" if lang == "nb" else "d MMM y"
    return _format_date(_local_date(value, tz), pattern, lang)


def datetime(value: dt.datetime, lang: Language, tz: ZoneInfo) -> str:
    """An aware time in the campaign zone: nb ``16.12.2020 kl. 14:05``, en ``16 Dec 2020 at 14:05``."""
    local = _aware(value).astimezone(tz)
    sep = " kl. " if lang == "nb" else " at "
    return f"{shortdate(local.date(), lang, tz)}{sep}{local:%H:%M}"


def plural(n: int, one: str, many: str) -> str:
    """``1 påminnelse`` / ``3 påminnelser``: the number and the word that agrees with it."""
    return f"{n} {one if n == 1 else many}"


def days(n: int, lang: Language) -> str:
    """nb ``1 dag``/``2 dager``, en ``1 day``/``2 days``."""
    return plural(n, "dag", "dager") if lang == "nb" else plural(n, "day", "days")


def from_now(n: int, lang: Language) -> str:
    """How far ahead a day is: ``i dag``/``i morgen``/``om 2 dager`` (en: today/tomorrow/in 2 days)."""
    if n < 0:
        raise ValueError(f"from_now needs 0 or more days, got {n}; use ago for the past")
    if n <= 1:
        return (("i dag", "i morgen") if lang == "nb" else ("today", "tomorrow"))[n]
    return f"om {days(n, lang)}" if lang == "nb" else f"in {days(n, lang)}"


def ago(n: int, lang: Language) -> str:
    """How far back a day is: ``i dag``/``i går``/``for 3 dager siden`` (en: today/yesterday/3 days ago)."""
    if n < 0:
        raise ValueError(f"ago needs 0 or more days, got {n}; use from_now for the future")
    if n <= 1:
        return (("i dag", "i går") if lang == "nb" else ("today", "yesterday"))[n]
    return f"for {days(n, lang)} siden" if lang == "nb" else f"{days(n, lang)} ago"


def pct(value: float, lang: Language) -> str:
    """A percentage already scaled to 0–100: nb ``70 %`` (Norwegian spaces it), en ``70%``."""
    text = f"{round(value):d}"
    return f"{text}{_NBSP}%" if lang == "nb" else f"{text}%"


def bar(value: float, width: int = 10) -> str:
    """A text progress bar for a 0–100 percentage: ``███████░░░`` for 70."""
    full = max(0, min(width, round(value * width / 100)))
    return "█" * full + "░" * (width - full)


def and_list(items: Iterable[str], lang: Language) -> str:
    """``Kari, Ola og Per`` / ``Kari, Ola and Per``."""
    return format_list([str(i) for i in items], locale=_LOCALES[lang])


def filters(lang: Language, tz: ZoneInfo) -> dict[str, Callable[..., str]]:
    return {
        "longdate": partial(longdate, lang=lang, tz=tz),
        "shortdate": partial(shortdate, lang=lang, tz=tz),
        "datetime": partial(datetime, lang=lang, tz=tz),
        "days": partial(days, lang=lang),
        "from_now": partial(from_now, lang=lang),
        "ago": partial(ago, lang=lang),
        "pct": partial(pct, lang=lang),
        "bar": bar,
        "plural": plural,
        "and_list": partial(and_list, lang=lang),
        "smtp_reason": partial(humane, lang=lang),
    }
