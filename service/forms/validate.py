"""Check the answers read from a form, and tell the leader in their language what to fix.

Every problem names its cell (``Skjema!C14``) and says, with the field's label, what to do.
Values that could not even be converted are ``ConversionProblem``s: they keep what was typed and
why it failed, so the message can be rendered again in whichever language the reply goes out in.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Literal

from service.errors import Problem
from service.forms.model import Field, FormDef, FormReading, Item, Text, cell_key
from service.models import Language

#: why a typed value could not be converted; "missing" = the field's row was not found at all
ConversionKind = Literal["integer", "scale", "date", "choice", "tick", "missing"]
#: default sanity range for dates without bounds: catches two-digit years and typos like 20200
DATE_SANITY = (datetime.date(1900, 1, 1), datetime.date(2100, 12, 31))


@dataclass(frozen=True)
class ConversionProblem(Problem):
    """A cell whose content could not be turned into the field's type."""

    key: str = ""  # field id, option key or table cell key (see forms.cell_key)
    field: str = ""
    column: str | None = None
    kind: ConversionKind = "missing"
    raw: str = ""


@dataclass(frozen=True)
class RaisedFlag:
    """An answer the coordinator's digest must show: the answer's message, and the flag's
    severity (higher is more serious, ``Flag.severity``)."""

    field: str
    value: object
    message: Text
    severity: int = 1


def flags(form: FormDef, answers: dict[str, object]) -> list[RaisedFlag]:
    """The flags the answers raise, in form order."""
    return [
        RaisedFlag(f.id, answers[f.id], f.flag.message_for(answers[f.id]), f.flag.severity)
        for f in form.flagged()
        if f.flag is not None and f.flag.when.holds(answers.get(f.id))
    ]


def validate(form: FormDef, reading: FormReading, lang: Language) -> list[Problem]:
    """Every problem with the answers, each with its cell and a message in ``lang``."""
    out: list[Problem] = [
        conversion_message(form, p, lang) if isinstance(p, ConversionProblem) else p for p in reading.problems
    ]
    # a value that could not be read is already reported; do not call it "empty" as well
    unreadable = {p.key for p in reading.problems if isinstance(p, ConversionProblem)}
    unreadable |= {p.field for p in reading.problems if isinstance(p, ConversionProblem)}
    answers, cells = reading.answers, reading.cells
    m = _MESSAGES[lang]
    for f in form.fields():
        if f.source or (f.id in unreadable and f.type != "table"):
            continue
        where, value, label = cells.get(f.id, ""), answers.get(f.id), _q(f.label.get(lang), lang)
        cond = f.required_when
        if value is None or value == () or value == []:
            if f.type == "table" and f.min_rows and f.id not in unreadable:
                out.append(Problem(where, m["min_rows"].format(label=label, n=f.min_rows)))
            elif f.required:
                out.append(Problem(where, m["required"].format(label=label)))
            elif cond is not None and cond.holds(answers.get(cond.field)):
                other = form.field(cond.field)
                shown = answers[cond.field]
                picked = shown if isinstance(shown, tuple) else (shown,)
                said = " / ".join(
                    _q(other.choice_label(str(v), lang), lang)
                    for v in picked
                    if (v not in cond.values) == cond.negate
                )
                out.append(
                    Problem(
                        where,
                        m["required_when"].format(
                            label=label, other=_q(other.label.get(lang), lang), value=said
                        ),
                    )
                )
            continue
        if f.type == "table" and isinstance(value, list):
            out += _table(f, value, reading, unreadable, lang)
        elif f.type == "multichoice" and isinstance(value, tuple):
            if len(value) > 1 and any(v in f.exclusive for v in value):
                alone = " / ".join(_q(f.choice_label(v, lang), lang) for v in f.exclusive)
                out.append(Problem(where, m["exclusive"].format(label=label, alone=alone)))
        else:
            out += _check(f, value, where, label, lang)
    return sorted(out, key=_position)


def _table(
    f: Field, rows: list[object], reading: FormReading, unreadable: set[str], lang: Language
) -> list[Problem]:
    m, out = _MESSAGES[lang], []
    label = _q(f.label.get(lang), lang)
    if len(rows) < f.min_rows:
        out.append(Problem(reading.cells.get(f.id, ""), m["min_rows"].format(label=label, n=f.min_rows)))
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            continue
        for col in f.columns:
            key = cell_key(f.id, n, col.id)
            where, value = reading.cells.get(key, ""), row.get(col.id)
            col_label = m["in_row"].format(
                label=label, n=_sheet_row(where), column=_q(col.label.get(lang), lang)
            )
            if value is None:
                if col.required and key not in unreadable:
                    out.append(Problem(where, m["required"].format(label=col_label)))
            else:
                out += _check(col, value, where, col_label, lang)
    return out


def _check(item: Item, value: object, where: str, label: str, lang: Language) -> list[Problem]:
    """The type-specific rules for one converted value."""
    m, out = _MESSAGES[lang], []
    lo, hi = item.min, item.max
    if isinstance(value, datetime.date) and lo is None and hi is None:
        lo, hi = DATE_SANITY
    if isinstance(value, int | datetime.date) and (lo is not None or hi is not None):
        too_low = lo is not None and value < lo  # type: ignore[operator]
        too_high = hi is not None and value > hi  # type: ignore[operator]
        if too_low or too_high:
            key = "range" if lo is not None and hi is not None else "min" if too_low else "max"
            out.append(
                Problem(where, m[key].format(label=label, lo=_show(lo), hi=_show(hi), value=_show(value)))
            )
    if isinstance(value, str):
        if item.pattern and not re.fullmatch(item.pattern, value):
            out.append(
                Problem(
                    where,
                    m["pattern"].format(label=label, example=item.example or item.pattern, value=_cut(value)),
                )
            )
        if item.max_length and len(value) > item.max_length:
            out.append(
                Problem(where, m["too_long"].format(label=label, n=item.max_length, length=len(value)))
            )
        if item.must_be and value != item.must_be:
            must = _q(item.choice_label(item.must_be, lang), lang)
            out.append(Problem(where, m["must_be"].format(label=label, value=must)))
    return out


def conversion_message(form: FormDef, p: ConversionProblem, lang: Language) -> Problem:
    """The message for an unreadable value, in ``lang``."""
    m = _MESSAGES[lang]
    try:
        item: Item = form.field(p.field)
    except LookupError:
        return Problem(p.where, p.message)
    label = _q(item.label.get(lang), lang)
    if p.column is not None and isinstance(item, Field):
        col = next((c for c in item.columns if c.id == p.column), None)
        if col is not None:
            label = m["in_row"].format(
                label=label, n=_sheet_row(p.where), column=_q(col.label.get(lang), lang)
            )
            item = col
    options = " / ".join(_q(c.label.get(lang), lang) for c in item.options)
    text = m[f"bad_{p.kind}"].format(label=label, raw=_cut(p.raw), options=options, lo=item.min, hi=item.max)
    return ConversionProblem(p.where, text, key=p.key, field=p.field, column=p.column, kind=p.kind, raw=p.raw)


def _sheet_row(where: str) -> str:
    """The spreadsheet row number in a cell reference: what the leader sees at the left edge.

    Table messages name it rather than the measure's position, because empty rows are skipped.
    """
    m = re.search(r"[A-Z]+\$?(\d+)$", where)
    return m[1] if m else "?"


def _position(p: Problem) -> tuple[int, int]:
    """Sort key: problems in the order the leader meets them on the sheet."""
    m = re.search(r"([A-Z]+)\$?(\d+)$", p.where)
    if m is None:
        return (1 << 30, 0)
    col = 0
    for ch in m[1]:
        col = col * 26 + ord(ch) - 64
    return int(m[2]), col


def _q(text: str, lang: Language) -> str:
    return f"«{text}»" if lang == "nb" else f"“{text}”"


def _cut(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: object) -> str:
    return value.strftime("%d.%m.%Y") if isinstance(value, datetime.date) else str(value)


_MESSAGES: dict[Language, dict[str, str]] = {
    "nb": {
        "required": "{label} er ikke fylt ut. Fyll ut feltet.",
        "required_when": "{label} er ikke fylt ut. Det må fylles ut når {other} er {value}.",
        "min_rows": "Fyll ut minst {n} rad i {label}.",
        "in_row": "{label}, {column} i rad {n}",
        "exclusive": "{label}: {alone} kan ikke velges sammen med andre alternativer. Fjern det ene.",
        "range": "{label} må være mellom {lo} og {hi}, men er {value}. Rett svaret.",
        "min": "{label} må være minst {lo}, men er {value}. Rett svaret.",
        "max": "{label} kan være høyst {hi}, men er {value}. Rett svaret.",
        "pattern": "{label} må skrives slik: {example}. Du skrev «{value}».",
        "too_long": "{label} kan ha høyst {n} tegn, men har {length}. Gjør teksten kortere.",
        "must_be": "Velg {value} i {label} for å bekrefte før du sender skjemaet.",
        "bad_integer": "{label} må være et heltall, men inneholder «{raw}». Skriv bare tallet.",
        "bad_scale": "{label} må være et tall fra {lo} til {hi}, men inneholder «{raw}». Velg fra listen.",
        "bad_date": "{label}: «{raw}» er ikke en dato. Skriv datoen som DD.MM.ÅÅÅÅ, for eksempel 16.12.2020.",
        "bad_choice": "{label}: «{raw}» er ikke et av alternativene. Velg {options}.",
        "bad_tick": "{label}: «{raw}» kan ikke leses som et kryss. Velg «Ja» eller la feltet stå tomt.",
        "bad_missing": "Fant ikke {label} i skjemaet. Bruk skjemaet du fikk tilsendt, uten å "
        "endre oppsettet.",
    },
    "en": {
        "required": "{label} has not been filled in. Please fill it in.",
        "required_when": "{label} has not been filled in. It is required when {other} is {value}.",
        "min_rows": "Fill in at least {n} row(s) in {label}.",
        "in_row": "{label}, {column} in row {n}",
        "exclusive": "{label}: {alone} cannot be chosen together with other options. Remove one of them.",
        "range": "{label} must be between {lo} and {hi}, but is {value}. Please correct it.",
        "min": "{label} must be at least {lo}, but is {value}. Please correct it.",
        "max": "{label} can be at most {hi}, but is {value}. Please correct it.",
        "pattern": "{label} must be written like {example}. You wrote “{value}”.",
        "too_long": "{label} can have at most {n} characters, but has {length}. Please shorten it.",
        "must_be": "Choose {value} in {label} to confirm before you send the form.",
        "bad_integer": "{label} must be a whole number, but contains “{raw}”. Write the number only.",
        "bad_scale": "{label} must be a number from {lo} to {hi}, but contains “{raw}”. "
        "Choose from the list.",
        "bad_date": "{label}: “{raw}” is not a date. Write the date as DD.MM.YYYY, for example 16.12.2020.",
        "bad_choice": "{label}: “{raw}” is not one of the options. Choose {options}.",
        "bad_tick": "{label}: “{raw}” cannot be read as a tick. Choose “Yes” or leave it empty.",
        "bad_missing": "{label} was not found in the form. Please use the form you were sent, "
        "without changing its layout.",
    },
}
