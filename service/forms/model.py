"""The form definition (forms/*.toml) as values, and the sheet layout shared by build and read.

One definition drives everything: ``forms.build`` builds the .xlsx from it, ``forms.read`` reads a filled
copy back, ``validate`` checks the answers, and reports lay out their columns from it. The TOML
file is read and checked by ``forms.definition.load_form``, which builds these dataclasses; it lives apart
so that everything that only *uses* a form (most of the service) does not carry the loader.

The sheet layout lives here, beside the definition, because forms.build and forms.read must agree
on it to the row.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, get_args

from service.errors import Problem
from service.models import Language

#: what a flag's ``notice`` may ask for (see ``Flag``)
NOTICES = ("challenges", "help")

FieldType = Literal["text", "longtext", "integer", "date", "choice", "multichoice", "yesno", "scale", "table"]
FIELD_TYPES: tuple[FieldType, ...] = get_args(FieldType)
#: a table cell holds one value: no nested tables, and ticks need one row per option
COLUMN_TYPES = frozenset(FIELD_TYPES) - {"table", "multichoice"}
CHOICE_TYPES = frozenset({"choice", "multichoice", "yesno"})
#: ``source`` (locked) and ``prefill`` (editable) name the Unit attribute a field starts with
SOURCES = {
    f"unit.{a}": a
    for a in ("code", "name", "faculty", "leader_name", "leader_email", "verneombud_name", "verneombud_email")
}
#: the faculty's name from the campaign's ``FormContext`` with its code, «Fakultet for … (IE)»;
#: the roster holds only the code, so this is the code alone where no name is configured
FACULTY_NAME = "unit.faculty_name"
#: every value a ``source`` or ``prefill`` may name
PREFILLS = (*SOURCES, FACULTY_NAME)
#: ``{name}`` in an instructions or help text: a campaign value (``FormContext``); a line holding
#: one whose value is empty is left out, so the text reads well without it
PLACEHOLDERS = ("guidance_url",)
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
    """An answer the coordinator's digest must show: ``when`` tests the field's own answer.

    ``message`` says what the answer means; ``messages`` gives some answers words of their own
    ("unsure" is not "no"): {choice value: message}, for choice and yesno fields.
    ``severity`` ranks flags for readers who sort them, most serious first: a whole number,
    higher is more serious (the shipped form: 6 = the working environment is not, or may not
    be, fully satisfactory … 1 = a step of the letter's process not taken).
    ``notice`` makes it more than a line in the digest: "challenges" (the answer signals special
    challenges: the superior leader and the coordinator get a notice, the receipt says what the
    letter asks of the leader) or "help" (the unit asks for help: whoever it asks gets a notice).
    ``words`` names the fields whose text (the unit's own words) goes with the notice.
    """

    when: Condition
    message: Text
    notice: str = ""
    words: tuple[str, ...] = ()
    messages: tuple[tuple[str, Text], ...] = ()
    severity: int = 1

    def message_for(self, answer: object) -> Text:
        """The message for ``answer``: its own where it has one, else the flag's."""
        return next((text for value, text in self.messages if value == answer), self.message)


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
    #: the answer names a person: `purge` empties it once the campaign is closed
    personal: bool = False

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
    #: like ``source``, but the cell stays open: the leader corrects it where the roster is wrong
    prefill: str | None = None
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
class Faculty:
    """A faculty (or the museum, the joint administration) by the roster's code, and its name."""

    code: str
    name: Text


@dataclass(frozen=True)
class FormContext:
    """What the campaign's config adds to the definition: the address of the leaders' guidance
    page (``{guidance_url}`` in the texts) and the faculties' names (``unit.faculty_name``)."""

    guidance_url: str = ""
    faculties: tuple[Faculty, ...] = ()

    def faculty_name(self, code: str, lang: Language) -> str:
        """«Fakultet for … (IE)» where the config names faculty ``code``; else the code."""
        name = next((f.name.get(lang) for f in self.faculties if f.code == code), "")
        return f"{name} ({code})" if name else code


@dataclass(frozen=True)
class FormDef:
    """A whole form: metadata, instructions and its sections of fields, as the campaign shows
    it (``context``; the texts' placeholders are already filled in by the loader)."""

    id: str
    version: int
    title: Text
    instructions: Text
    sections: tuple[Section, ...]
    context: FormContext = FormContext()

    def personal_answers(self) -> dict[str, frozenset[str]]:
        """{field id: the table columns that name a person} for every field with personal
        answers; an empty set means the whole answer is personal."""
        out: dict[str, frozenset[str]] = {}
        for f in self.fields():
            columns = frozenset(c.id for c in f.columns if c.personal)
            if f.personal or columns:
                out[f.id] = frozenset() if f.personal else columns
        return out

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


# ---- the sheet layout, shared by forms.build and forms.read -----------------------------------------

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


@dataclass(frozen=True)
class FormReading:
    """What was found in a filled form. Empty answers are absent from ``answers``.

    answers: text -> str; integer/scale -> int; date -> datetime.date; choice/yesno -> the
    choice's value id; multichoice -> tuple of value ids; table -> list of row dicts keyed by
    column id (filled cells only), empty rows dropped.
    cells: field id -> cell (``Skjema!C14``); multichoice options under ``option_key``;
    table cells under ``forms.cell_key(table, n, column)`` where n counts the kept rows from 1,
    and the table id itself -> its first cell.
    """

    form_id: str | None
    form_version: int | None
    language: Language | None
    unit_code: str | None
    reference: str | None
    stamp: str | None
    answers: dict[str, object] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
