"""Answers as people read them (receipts, digests, the workbook) and as the store keeps them.

Answers come from ``forms.read`` keyed by field id, with choice *values* (language-independent
ids), dates as ``datetime.date`` and tables as lists of row dicts. Here they become text in a
language, or JSON-ready values for the store, and back again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from service.errors import Problem
from service.forms.model import Field, FormDef, FormReading, Item
from service.forms.validate import flags
from service.models import Language


def value_text(item: Item, value: object, lang: Language) -> str:
    """One answer as text: choice labels, dates as DD.MM.YYYY, ticked options joined."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if item.type in ("choice", "yesno", "scale") and isinstance(value, str):
        try:
            return item.choice_label(value, lang)
        except LookupError:
            return value
    if item.type == "multichoice" and isinstance(value, list | tuple):
        return ", ".join(value_text_choice(item, v, lang) for v in value)
    return str(value)


def value_text_choice(item: Item, value: object, lang: Language) -> str:
    try:
        return item.choice_label(str(value), lang)
    except LookupError:
        return str(value)


def table_text(f: Field, rows: object, lang: Language) -> str:
    """A table answer in one line per row: «Tiltak – Tema – Status …»."""
    if not isinstance(rows, list):
        return ""
    lines = []
    for row in rows:
        if isinstance(row, Mapping):
            cells = [value_text(col, row.get(col.id), lang) for col in f.columns]
            lines.append(" – ".join(c for c in cells if c))
    return "\n".join(lines)


def summary(form: FormDef, answers: Mapping[str, object], lang: Language) -> list[dict[str, str]]:
    """What was registered, in form order: [{label, value}] for every answered field."""
    out = []
    for f in form.fields():
        value = answers.get(f.id)
        if value is None or value in ((), []):
            continue
        text = table_text(f, value, lang) if f.type == "table" else value_text(f, value, lang)
        out.append({"label": f.label.get(lang), "value": text})
    return out


def raised_flags(form: FormDef, answers: Mapping[str, object]) -> list[dict[str, str]]:
    """The flags the answers raise, JSON-ready, with texts in both languages and the flag's
    severity as a decimal string (read it with ``severity_of``)."""
    out = []
    for flag in flags(form, dict(answers)):
        f = form.field(flag.field)
        out.append(
            {
                "field": f.id,
                "label_nb": f.label.get("nb"),
                "label_en": f.label.get("en"),
                "value_nb": value_text(f, flag.value, "nb"),
                "value_en": value_text(f, flag.value, "en"),
                "message_nb": flag.message.get("nb"),
                "message_en": flag.message.get("en"),
                "severity": str(flag.severity),
            }
        )
    return out


def severity_of(stored: Mapping[str, str]) -> int:
    """A stored flag's severity (higher is more serious); 1 for flags stored without one."""
    value = stored.get("severity", "")
    return int(value) if str(value).isdigit() else 1


def most_serious_first(stored: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """Stored flags by severity, most serious first; equal ones keep their (form) order."""
    return sorted(stored, key=lambda f: -severity_of(f))


def flags_for(stored: Sequence[Mapping[str, str]], lang: Language) -> list[dict[str, str]]:
    """Stored flags as the templates want them: [{label, value, message, severity}] in ``lang``."""
    return [
        {
            "label": f[f"label_{lang}"],
            "value": f[f"value_{lang}"],
            "message": f[f"message_{lang}"],
            "severity": str(severity_of(f)),
        }
        for f in stored
    ]


def to_json(answers: Mapping[str, object]) -> dict[str, Any]:
    """Answers ready for a JSON column: dates as ISO strings, tuples as lists."""

    def conv(v: object) -> Any:
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    return {k: conv(v) for k, v in answers.items()}


def from_json(form: FormDef, stored: Mapping[str, Any]) -> dict[str, object]:
    """Stored answers back to Python values (ISO strings to dates where the form says date)."""

    def conv(item: Item, v: Any) -> object:
        if item.type == "date" and isinstance(v, str):
            try:
                return dt.date.fromisoformat(v)
            except ValueError:
                return v
        return v

    out: dict[str, object] = {}
    for f in form.fields():
        if f.id not in stored:
            continue
        v = stored[f.id]
        if f.type == "table" and isinstance(v, list):
            cols = {c.id: c for c in f.columns}
            out[f.id] = [
                {k: conv(cols[k], x) if k in cols else x for k, x in row.items()}
                for row in v
                if isinstance(row, Mapping)
            ]
        else:
            out[f.id] = conv(f, v)
    return out


def problem_rows(
    form: FormDef, reading: FormReading, problems: Sequence[Problem], lang: Language
) -> list[dict[str, str]]:
    """Problems as a leader reads them in a correction: the field's label, the cell, what to do.
    The label comes from the cell the reader found the answer in (a table cell: the table's label
    and the column's); a problem with no known cell keeps an empty label."""
    key_of: dict[str, str] = {}
    for key, cell in reading.cells.items():
        key_of.setdefault(cell, key)
    return [
        {"label": label_of(form, key_of.get(p.where, ""), lang), "cell": p.where, "message": p.message}
        for p in problems
    ]


def label_of(form: FormDef, key: str, lang: Language) -> str:
    """The label a person knows an answer by, from its key in ``FormReading.cells``."""
    field_id, _, rest = key.partition("/")
    try:
        f = form.field(field_id)
    except (KeyError, LookupError):
        return ""
    column = rest.rpartition("/")[2] if rest.count("/") == 1 else ""
    col = next((c for c in f.columns if c.id == column), None)
    return f"{f.label.get(lang)} – {col.label.get(lang)}" if col is not None else f.label.get(lang)
