"""The first day back, read from an out-of-office reply ("tilbake 4. januar", "back on 4 January").

Used by ``classifier`` for its auto-replies (``Classification.returns_on``, recorded with the
reply). Month names in Norwegian and English, return cues in those and German. Kept apart from
the classifier because it is text heuristics of its own, with patterns of its own; the rules
are in ``return_date``'s docstring.
"""

from __future__ import annotations

import datetime as dt
import re

_MONTHS = {
    "januar": 1,
    "january": 1,
    "jan": 1,
    "februar": 2,
    "february": 2,
    "feb": 2,
    "mars": 3,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "mai": 5,
    "may": 5,
    "juni": 6,
    "june": 6,
    "jun": 6,
    "juli": 7,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "oktober": 10,
    "october": 10,
    "okt": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "desember": 12,
    "december": 12,
    "des": 12,
    "dec": 12,
}
_M = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(
    rf"(?<![\w.])(?:(?P<iy>\d{{4}})-(?P<im>\d{{1,2}})-(?P<id>\d{{1,2}})"
    rf"|(?P<nd>\d{{1,2}})[./](?P<nm>\d{{1,2}})(?:[./](?P<ny>\d{{4}}|\d{{2}})(?!\d)|\.)?"
    rf"|(?P<dd>\d{{1,2}})(?:\.|st|nd|rd|th)?\s+(?:of\s+)?(?P<dm>{_M})\b\.?(?:,?\s+(?P<dy>\d{{4}}))?"
    rf"|(?P<mm>{_M})\b\.?\s+(?P<md>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<my>\d{{4}}))?)",
    re.I,
)
_STRONG = re.compile(r"\b(tilbake|igjen|treffes|back|return\w*|again|wieder|zurück)\b", re.I)
_INCLUSIVE = re.compile(
    r"(\btil og med|\bt\.?\s?o\.?\s?m\.?|\bthrough|\bthru|\bto and including|"
    r"\beinschließlich|\better|\bafter)\s*\S*\s*\S*$",
    re.I,
)
_UNTIL = re.compile(r"\b(until|till|til|inntil|før|before|bis)\b", re.I)
#: "Fra og med 4. januar er jeg tilbake", "Ab dem 7. Januar bin ich wieder da": the cue comes after
_FROM = re.compile(r"\b(fra og med|f\.\s?o\.\s?m\.?|fra|from|as of|starting|ab|ab dem|vom)\s*\S*\s*$", re.I)
_SENTENCE = re.compile(r"[!?]\s|[.]\s+(?=[A-ZÆØÅ])|\n\s*\n")


def return_date(text: str, anchor: dt.date | None) -> dt.date | None:
    """The first day back, read from an out-of-office text; ``anchor`` (the mail's date) gives
    the year to dates written without one. None when no date stands next to a return cue.

    "tilbake 4. januar", "back on 4 January 2021", "returning 04.01.2021", "fra og med 4.1. er jeg
    tilbake" read as that day; "til og med 3. januar", "through 3 January" and "etter 3.1." as
    the day after. A cue must stand in the same sentence; a date next to no cue (the day the
    absence started, a quoted deadline) is ignored, and so is a date before the mail was sent.
    """
    text = "\n".join(line for line in text[:4000].splitlines() if not line.lstrip().startswith(">"))
    strong: dt.date | None = None
    weak: dt.date | None = None
    matches = list(_DATE.finditer(text))
    for i, m in enumerate(matches):
        before = text[max(matches[i - 1].end() if i else 0, m.start() - 80) : m.start()]
        before = _SENTENCE.split(before)[-1]
        after = text[m.end() : matches[i + 1].start() if i + 1 < len(matches) else m.end() + 40][:40]
        after = _SENTENCE.split(after)[0]
        day = _resolve(m, anchor)
        if day is None or (anchor is not None and not anchor <= day <= anchor + dt.timedelta(400)):
            continue
        if _STRONG.search(before) or (_FROM.search(before) and _STRONG.search(after)):
            strong = strong or day
        elif _INCLUSIVE.search(before):
            weak = weak or day + dt.timedelta(days=1)
        elif _UNTIL.search(before):
            weak = weak or day
    return strong or weak


def _resolve(m: re.Match[str], anchor: dt.date | None) -> dt.date | None:
    g = m.groupdict()
    if g["iy"]:
        y, mo, d = g["iy"], g["im"], g["id"]
    elif g["nd"]:
        y, mo, d = g["ny"], g["nm"], g["nd"]
    elif g["dd"]:
        y, mo, d = g["dy"], str(_MONTHS[g["dm"].lower()]), g["dd"]
    else:
        y, mo, d = g["my"], str(_MONTHS[g["mm"].lower()]), g["md"]
    if y:
        year = int(y) + (2000 if len(y) == 2 else 0)
    elif anchor is not None:
        year = anchor.year
    else:
        return None
    try:
        day = dt.date(year, int(mo), int(d))
    except ValueError:
        return None
    if y is None and anchor is not None and day < anchor - dt.timedelta(days=7):
        day = day.replace(year=year + 1)  # "4. januar" written in December...
        if day > anchor + dt.timedelta(days=300):
            return None  # ...but "back on 2 November" written in December is a past date
    return day
