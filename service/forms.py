"""The form definition (forms/*.toml): schema, loader and the sheet layout shared by build and read.

One definition drives everything: ``formbook`` builds the .xlsx from it, ``formread`` reads a filled
copy back, ``validate`` checks the answers, and reports lay out their columns from it. ``load_form``
checks a whole file and reports every problem with its location, so an operator fixes a form in one
pass instead of one error per run.

The sheet layout lives here, not in formbook or formread, because the import-linter contract makes
those two independent siblings and both must agree on it to the row.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeVar, get_args

from service.errors import FormDefinitionError, Problem
from service.models import LANGUAGES, Language

FieldType = Literal[
    "text", "longtext", "integer", "date", "choice", "multichoice", "yesno", "scale", "table"
]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
#: a table cell holds one value: no nested tables, and ticks need one row per option
COLUMN_TYPES = frozenset(FIELD_TYPES) - {"table", "multichoice"}
CHOICE_TYPES = frozenset({"choice", "multichoice", "yesno"})
#: ``source`` names the Unit attribute a locked, prefilled field shows
SOURCES = {
    f"unit.{a}": a
    for a in ("code", "name", "faculty", "leader_name", "leader_email", "verneombud_name",
              "verneombud_email")
}
Bound = int | datetime.date


@dataclass(frozen=True)
class Text:
    """A text in both languages."""

    nb: str
    en: str

    def get(self, lang: Language) -> str:
        return self.nb if lang == "nb" else self.en


@dataclass(frozen=True)
class Choice:
    """One option: a stable, language-independent ``value`` and its labels."""

    value: str
    label: Text


#: the options of every yesno field; built in so every form says yes and no the same way
YES_NO = (Choice("yes", Text("Ja", "Yes")), Choice("no", Text("Nei", "No")))


def normalise(text: str) -> str:
    """Case- and space-insensitive form of a label, so ' ja ' and 'JA' both match 'Ja'."""
    return " ".join(text.replace("\u00a0", " ").split()).casefold()


@dataclass(frozen=True)
class Condition:
    """True when ``field``'s answer is (``negate``: is answered and is not) one of ``values``.

    For a multichoice answer it holds when any ticked value qualifies.
    """

    field: str
    values: tuple[str, ...]
    negate: bool = False

    def holds(self, answer: object) -> bool:
        picked = answer if isinstance(answer, tuple) else () if answer is None else (answer,)
        if self.negate:
            return any(v not in self.values for v in picked)
        return any(v in self.values for v in picked)


@dataclass(frozen=True)
class Flag:
    """An answer the coordinator's digest must show: ``when`` tests the field's own answer."""

    when: Condition
    message: Text


@dataclass(frozen=True)
class Item:
    """What a field and a table column share: one answer with its type and constraints."""

    id: str
    type: FieldType
    label: Text
    help: Text | None = None
    required: bool = False
    choices: tuple[Choice, ...] = ()
    min: Bound | None = None
    max: Bound | None = None
    pattern: str | None = None
    #: shown to the leader when ``pattern`` does not match ("like 2020/12345")
    example: str | None = None
    max_length: int | None = None
    #: the only accepted answer (a confirmation that must be ticked)
    must_be: str | None = None

    @property
    def options(self) -> tuple[Choice, ...]:
        """The choices, with the built-in ones for yesno."""
        return YES_NO if self.type == "yesno" else self.choices

    def choice(self, value: str) -> Choice:
        for c in self.options:
            if c.value == value:
                return c
        raise LookupError(f"{self.id}: no choice {value!r}")

    def choice_label(self, value: str, lang: Language) -> str:
        """The label of choice ``value`` in ``lang`` (for messages, digests, reports)."""
        return self.choice(value).label.get(lang)

    def match(self, text: str) -> Choice | None:
        """The choice whose value id or label in either language is ``text``, ignoring case."""
        key = normalise(text)
        for c in self.options:
            if key in (normalise(c.value), normalise(c.label.nb), normalise(c.label.en)):
                return c
        return None


@dataclass(frozen=True)
class Column(Item):
    """One column of a table field."""


@dataclass(frozen=True)
class Field(Item):
    """One question of the form."""

    source: str | None = None
    required_when: Condition | None = None
    flag: Flag | None = None
    #: multichoice values that cannot be ticked together with any other ("none")
    exclusive: tuple[str, ...] = ()
    rows: int = 0
    min_rows: int = 0
    columns: tuple[Column, ...] = ()


@dataclass(frozen=True)
class Section:
    id: str
    title: Text
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class FormDef:
    """A whole form: metadata, instructions and its sections of fields."""

    id: str
    version: int
    title: Text
    instructions: Text
    sections: tuple[Section, ...]

    def fields(self) -> tuple[Field, ...]:
        """Every field in sheet order (table columns stay inside their table)."""
        return self._fields

    @cached_property
    def _fields(self) -> tuple[Field, ...]:
        return tuple(f for section in self.sections for f in section.fields)

    @cached_property
    def _by_id(self) -> dict[str, Field]:
        return {f.id: f for f in self._fields}

    def field(self, field_id: str) -> Field:
        try:
            return self._by_id[field_id]
        except KeyError:
            raise LookupError(f"form {self.id!r} has no field {field_id!r}") from None

    def flagged(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields() if f.flag is not None)


# ---- the sheet layout, shared by formbook and formread -----------------------------------------

SHEET_NAMES: dict[Language, tuple[str, str]] = {
    "nb": ("Instruksjoner", "Skjema"),
    "en": ("Instructions", "Form"),
}
META_SHEET = "skjemapost"
ID_COL, LABEL_COL, ANSWER_COL, HELP_COL = 1, 2, 3, 4
#: hidden-id key of the row that shows the reference code
REFERENCE_KEY = "_reference"
REFERENCE_ROW, HEADER_ROW = 3, 5
REFERENCE_LABEL = Text("Referansekode", "Reference code")


def sheet_ref(sheet: str, cell: str) -> str:
    """``Skjema!C14``; the sheet name quoted only when a formula would need it."""
    if re.fullmatch(r"[A-Za-z_\u00c0-\u024f][\w.]*", sheet):
        return f"{sheet}!{cell}"
    return "'" + sheet.replace("'", "''") + f"'!{cell}"


def option_key(field_id: str, value: str) -> str:
    """Key of a multichoice option's tick cell (hidden id column, ``FormReading.cells``)."""
    return f"{field_id}/{value}"


def row_key(field_id: str, row: int) -> str:
    """Key of a table's data row (1-based) in the hidden id column."""
    return f"{field_id}/{row}"


def cell_key(field_id: str, row: int, column: str) -> str:
    """Key of one table cell in ``FormReading.cells``."""
    return f"{field_id}/{row}/{column}"


def sheet_layout(form: FormDef) -> dict[str, int]:
    """Row of every field, option and table row on the answer sheet, keyed like the id column.

    A section is a heading row, then its fields, then a blank row. A multichoice field is its
    label row and one row per option; a table is its label row, a header row and its data rows.
    """
    rows: dict[str, int] = {REFERENCE_KEY: REFERENCE_ROW}
    row = HEADER_ROW + 1
    for section in form.sections:
        row += 1  # the heading
        for f in section.fields:
            rows[f.id] = row
            row += 1
            if f.type == "multichoice":
                for c in f.options:
                    rows[option_key(f.id, c.value)] = row
                    row += 1
            elif f.type == "table":
                row += 1  # the column headers
                for n in range(1, f.rows + 1):
                    rows[row_key(f.id, n)] = row
                    row += 1
        row += 1  # blank row between sections
    return rows


# ---- loading and checking a definition ----------------------------------------------------------

_ItemT = TypeVar("_ItemT", Field, Column)
_T = TypeVar("_T")
_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
_FORM_ID = re.compile(r"[a-z][a-z0-9_-]{0,59}")
#: Excel writes a list validation inline as "a,b,c" and caps it at 255 characters
_LIST_LIMIT = 250
_ITEM = {"id", "type", "label", "help", "required", "choices", "min", "max", "pattern", "example",
         "max_length", "must_be"}
_FIELD = _ITEM | {"source", "required_when", "flag", "exclusive", "rows", "min_rows", "columns"}
Raw = dict[str, object]


def load_form(path: str | Path) -> FormDef:
    """Read and check a form definition; raise FormDefinitionError listing every problem."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise FormDefinitionError([Problem("", f"cannot read the file: {exc}")], str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise FormDefinitionError([Problem("", f"not valid TOML: {exc}")], str(path)) from exc
    p = _Parser()
    form = p.form(raw)
    p.references(form)
    if p.problems:
        raise FormDefinitionError(p.problems, str(path))
    return form


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class _Parser:
    """Builds the dataclasses and collects problems instead of stopping at the first one."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.where: dict[str, str] = {}  # field id -> location, for the cross-reference pass

    def err(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def keys(self, raw: Raw, allowed: set[str], where: str) -> None:
        for key in sorted(set(raw) - allowed):
            self.err(_at(where, key), "unknown key")

    def typed(self, raw: Raw, key: str, where: str, default: _T, what: str) -> _T:
        value = raw.get(key, default)
        if type(value) is not type(default):  # exact: TOML's true is not a whole number
            self.err(_at(where, key), f"must be {what}")
            return default
        return value

    def string(self, raw: Raw, key: str, where: str, required: bool = True) -> str:
        value = raw.get(key)
        if value is None or not isinstance(value, str) or (required and not value.strip()):
            if value is not None or required:
                self.err(_at(where, key), "missing" if value is None
                         else "must be a non-empty string")
            return ""
        return value

    def ident(self, raw: Raw, key: str, where: str, rule: re.Pattern[str] = _ID) -> str:
        value = self.string(raw, key, where)
        if value and not rule.fullmatch(value):
            self.err(_at(where, key), f"{value!r} must be lowercase a-z, 0-9 and "
                     f"{'_ or -' if rule is _FORM_ID else '_'}, starting with a letter")
        return value

    def text(self, raw: Raw, key: str, where: str) -> Text:
        value = raw.get(key)
        if not isinstance(value, dict):
            self.err(_at(where, key), "missing: give a table with nb and en" if value is None
                     else "must be a table with nb and en")
            return Text("", "")
        self.keys(value, set(LANGUAGES), _at(where, key))
        return Text(self.string(value, "nb", _at(where, key)),
                    self.string(value, "en", _at(where, key)))

    def form(self, raw: Raw) -> FormDef:
        self.keys(raw, {"id", "version", "title", "instructions", "sections"}, "")
        form_id = self.ident(raw, "id", "", _FORM_ID)
        version = self.typed(raw, "version", "", 0, "a whole number")
        if version < 1:
            self.err("version", "must be 1 or more")
        sections = raw.get("sections")
        if not isinstance(sections, list) or not sections:
            self.err("sections", "at least one [[sections]] is needed")
            sections = []
        parsed, seen = [], set()
        for i, s in enumerate(sections):
            where = f"sections[{i}]"
            s = s if isinstance(s, dict) else {}
            self.keys(s, {"id", "title", "fields"}, where)
            sid = self.ident(s, "id", where)
            if sid in seen:
                self.err(f"{where}.id", f"duplicate section id {sid!r}")
            seen.add(sid)
            fields = s.get("fields")
            if not isinstance(fields, list) or not fields:
                self.err(f"{where}.fields", "a section needs at least one field")
                fields = []
            out = [self.item(f, f"{where}.fields[{j}]", Field) for j, f in enumerate(fields)]
            parsed.append(Section(sid, self.text(s, "title", where), tuple(out)))
        return FormDef(form_id, version, self.text(raw, "title", ""),
                       self.text(raw, "instructions", ""), tuple(parsed))

    def item(self, raw: object, where: str, kind: type[_ItemT]) -> _ItemT:
        raw = raw if isinstance(raw, dict) else {}
        fid = self.ident(raw, "id", where)
        if fid:
            where = f"{where}({fid})"
            if kind is Field and fid in self.where:
                self.err(f"{where}.id", f"duplicate field id {fid!r}")
            if kind is Field:
                self.where.setdefault(fid, where)
        self.keys(raw, _FIELD if kind is Field else _ITEM, where)
        ftype = self.string(raw, "type", where)
        allowed = FIELD_TYPES if kind is Field else sorted(COLUMN_TYPES)
        if ftype and ftype not in allowed:
            self.err(f"{where}.type", f"unknown type {ftype!r}; use one of {', '.join(allowed)}")
        kw: Raw = {
            "id": fid, "type": ftype, "label": self.text(raw, "label", where),
            "help": self.text(raw, "help", where) if "help" in raw else None,
            "required": self.typed(raw, "required", where, False, "true or false"),
            "choices": self.choices(raw, ftype, where),
            "pattern": self.pattern(raw, ftype, where),
            "example": self.string(raw, "example", where, required=False) or None,
        }
        kw["min"], kw["max"] = self.bounds(raw, ftype, where)
        if "max_length" in raw:
            kw["max_length"] = length = self.typed(raw, "max_length", where, 1, "a whole number")
            if ftype not in ("text", "longtext") or not 0 < length <= 32767:
                self.err(f"{where}.max_length", "only for text/longtext, between 1 and 32767")
        if "must_be" in raw:
            kw["must_be"] = self.string(raw, "must_be", where)
            if ftype not in ("choice", "yesno"):
                self.err(f"{where}.must_be", "only for choice and yesno fields")
        if kind is Field:
            self.field_extras(raw, ftype, where, kw)
        return kind(**kw)  # type: ignore[arg-type]

    def choices(self, raw: Raw, ftype: str, where: str) -> tuple[Choice, ...]:
        items, at = raw.get("choices"), f"{where}.choices"
        if ftype in ("choice", "multichoice") and not items:
            self.err(at, f"a {ftype} field needs choices")
        if items is None:
            return ()
        if ftype not in ("choice", "multichoice"):
            self.err(at, f"a {ftype or 'field'} takes no choices"
                     + (" (yes/no are built in)" if ftype == "yesno" else ""))
        out: list[Choice] = []
        for k, c in enumerate(items if isinstance(items, list) else [items]):
            c = c if isinstance(c, dict) else {}
            self.keys(c, {"value", *LANGUAGES}, f"{at}[{k}]")
            out.append(Choice(self.ident(c, "value", f"{at}[{k}]"),
                              Text(self.string(c, "nb", f"{at}[{k}]"),
                                   self.string(c, "en", f"{at}[{k}]"))))
        # the reader maps a typed label or value id back to its choice, so no two may share one
        seen: dict[str, str] = {}
        for k, c in enumerate(out):
            for name in (c.value, c.label.nb, c.label.en):
                key = normalise(name)
                if key and seen.setdefault(key, c.value) != c.value:
                    self.err(f"{at}[{k}]", f"{name!r} is also used by {seen[key]!r}")
                if any(ch in name for ch in ',"'):
                    self.err(f"{at}[{k}]", f"{name!r}: no commas or double quotes in a choice "
                             "(spreadsheet dropdowns split on commas)")
        for lang in LANGUAGES:
            if sum(len(c.label.get(lang)) + 1 for c in out) > _LIST_LIMIT:
                self.err(at, f"the {lang} labels are too long for a dropdown "
                         f"(at most {_LIST_LIMIT} characters together)")
        return tuple(out)

    def pattern(self, raw: Raw, ftype: str, where: str) -> str | None:
        if "pattern" not in raw:
            return None
        pattern = self.string(raw, "pattern", where)
        if ftype != "text":
            self.err(f"{where}.pattern", "only text fields take a pattern")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            self.err(f"{where}.pattern", f"not a valid regular expression: {exc}")
            return None
        example = raw.get("example")
        if not isinstance(example, str):
            self.err(f"{where}.example", "a pattern needs an example the leader can follow")
        elif not compiled.fullmatch(example):
            self.err(f"{where}.example", f"{example!r} does not match the pattern")
        return pattern

    def bounds(self, raw: Raw, ftype: str, where: str) -> tuple[Bound | None, Bound | None]:
        kind: type = datetime.date if ftype == "date" else int
        lo, hi = (raw.get("min", 1), raw.get("max", 5)) if ftype == "scale" else (
            raw.get("min"), raw.get("max"))
        for key, value in (("min", lo), ("max", hi)):
            if value is not None and ftype not in ("integer", "scale", "date"):
                self.err(f"{where}.{key}", "only integer, scale and date fields take bounds")
                return None, None
            if value is not None and type(value) is not kind:
                what = "a date (1990-01-31, no quotes)" if kind is datetime.date else "an integer"
                self.err(f"{where}.{key}", f"must be {what}")
                return None, None
        if lo is not None and hi is not None and lo > hi:  # type: ignore[operator]
            self.err(f"{where}.min", f"min {lo} is greater than max {hi}")
        if ftype == "scale" and isinstance(lo, int) and isinstance(hi, int) and hi - lo > 10:
            self.err(f"{where}.max", "a scale has at most 11 steps")
        return lo, hi  # type: ignore[return-value]

    def field_extras(self, raw: Raw, ftype: str, where: str, kw: Raw) -> None:
        if "source" in raw:
            kw["source"] = source = self.string(raw, "source", where)
            if source not in SOURCES or ftype != "text":
                self.err(f"{where}.source", f"unknown source {source!r}; use one of "
                         f"{', '.join(SOURCES)}" if ftype == "text" else "text fields only")
        for key in ("required_when", "flag"):
            table, at = raw.get(key), f"{where}.{key}"
            if table is None:
                continue
            table = table if isinstance(table, dict) else {}
            self.keys(table, {"in", "not_in", "field" if key == "required_when" else "message"},
                      at)
            cond = self.condition(table, self.ident(table, "field", at) if key ==
                                  "required_when" else str(kw["id"]), at)
            kw[key] = cond if key == "required_when" else Flag(cond,
                                                                 self.text(table, "message", at))
        if "exclusive" in raw:
            values = raw["exclusive"]
            ok = isinstance(values, list) and all(isinstance(v, str) for v in values)
            if not ok or ftype != "multichoice":
                self.err(f"{where}.exclusive", "a list of choice values, for multichoice only")
            kw["exclusive"] = tuple(values) if ok else ()  # type: ignore[arg-type]
        if ftype != "table":
            if {"rows", "min_rows", "columns"} & set(raw):
                self.err(where, "rows, min_rows and columns are for table fields only")
            return
        kw["rows"] = rows = self.typed(raw, "rows", where, 10, "a whole number")
        kw["min_rows"] = least = self.typed(raw, "min_rows", where, 0, "a whole number")
        if not 0 <= least <= rows <= 50:
            self.err(f"{where}.rows", "need 0 <= min_rows <= rows <= 50")
        cols = raw.get("columns")
        if not isinstance(cols, list) or not cols:
            self.err(f"{where}.columns", "a table needs at least one column")
            cols = []
        out = [self.item(c, f"{where}.columns[{k}]", Column) for k, c in enumerate(cols)]
        for k, col in enumerate(out):
            if col.id and col.id in [c.id for c in out[:k]]:
                self.err(f"{where}.columns[{k}].id", f"duplicate column id {col.id!r}")
        kw["columns"] = tuple(out)

    def condition(self, raw: Raw, field_id: str, where: str) -> Condition:
        negate = "not_in" in raw
        if ("in" in raw) == negate:
            self.err(where, "give exactly one of 'in' and 'not_in'")
        values = raw.get("not_in" if negate else "in", [])
        if not isinstance(values, list) or not values or not all(
                isinstance(v, str) for v in values):
            self.err(f"{where}.{'not_in' if negate else 'in'}",
                     "must be a non-empty list of choice values")
            values = []
        return Condition(field_id, tuple(values), negate)

    def references(self, form: FormDef) -> None:
        """Second pass: conditions and flags may name fields defined further down."""
        for f in form.fields():
            where = self.where.get(f.id, f.id)
            tests = [(f"{where}.{key}", cond) for key, cond in (
                ("required_when", f.required_when), ("flag", f.flag.when if f.flag else None))
                if cond is not None]
            for at, cond in tests:
                target = form._by_id.get(cond.field)
                if target is None:
                    self.err(f"{at}.field", f"unknown field {cond.field!r}")
                elif target.type not in CHOICE_TYPES:
                    self.err(at, f"can only test a choice, multichoice or yesno field; "
                             f"{target.id!r} is {target.type}")
                elif cond.field == f.id and at.endswith("required_when"):
                    self.err(f"{at}.field", "a field cannot depend on itself")
                else:
                    self.known_values(target, cond.values, at)
            self.known_values(f, f.exclusive, f"{where}.exclusive")
            for item, at in ((f, where), *((c, f"{where}.columns[{k}]")
                                           for k, c in enumerate(f.columns))):
                if item.must_be:
                    self.known_values(item, (item.must_be,), f"{at}.must_be")

    def known_values(self, item: Item, values: tuple[str, ...], where: str) -> None:
        known = {c.value for c in item.options}
        for v in values:
            if v not in known:
                self.err(where, f"unknown choice value {v!r} for field {item.id!r}; "
                         f"known: {', '.join(sorted(known))}")
