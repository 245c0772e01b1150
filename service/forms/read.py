"""Read a filled form (.xlsx bytes) back into answers keyed by field id.

A reply may have passed through Excel, LibreOffice, Google Sheets or Numbers, each of which drops
some of what ``forms.build`` wrote. So every answer row is located three ways, in this order:

1. the key in hidden column A (plain cell text, which every client keeps);
2. the defined name of the answer cell (``sp_<key>``);
3. the layout computed from the form definition, accepted only if the label cell still shows the
   field's label in either language; failing that, the label is searched for in column B.

The unit code, reference and stamp are likewise taken from the very hidden sheet, the defined
names and the visible reference cell, whichever survived. Values are read as cached values,
never formulas, and converted by field type; what cannot be converted becomes a
``ConversionProblem`` with its cell. Limits: the file size, the unpacked size and the rows and
columns scanned are capped, because a reply is untrusted input that may claim a million rows.

Cells come from ``xlsx.cells`` (zip + XML, ~2 ms), not openpyxl (~13 ms), as reading the form is
most of the inbox's work per reply; it refuses DTDs and zip bombs too. No openpyxl fallback is
kept: no file was found that openpyxl reads and it does not (see bench/form_read.py). The inbox
passes the workbook ``intake`` already opened and checked, so a reply is unzipped once. Turning
a cell into the field's type is ``forms.values``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from service.errors import FormReadError, Problem
from service.forms.model import (
    ANSWER_COL,
    ID_COL,
    LABEL_COL,
    META_SHEET,
    REFERENCE_KEY,
    REFERENCE_LABEL,
    SHEET_NAMES,
    Field,
    FormDef,
    FormReading,
    Item,
    cell_key,
    normalise,
    option_key,
    row_key,
    sheet_layout,
    sheet_ref,
)
from service.forms.validate import ConversionKind, ConversionProblem, conversion_message
from service.forms.values import BadValue, blank, convert, shown, tick
from service.models import LANGUAGES, Language
from service.xlsx.cells import Value, Workbook, XlsxError
from service.xlsx.cells import column_index as _column
from service.xlsx.cells import column_letters as _letters
from service.xlsx.safezip import ZipLimits

__all__ = ["read_form"]

MAX_BYTES = 20 * 2**20  # far above any real reply (~15 KB); mail systems cap near this anyway
#: zip bombs: checked in the zip directory and again while unpacking (see safezip)
LIMITS = ZipLimits(max_unpacked=100 * 2**20, max_members=500)
MAX_ROWS, MAX_COLS = 1000, 30
STAMP_NAME, REFERENCE_NAME, NAME_PREFIX = "sp_stamp", "sp_reference", "sp_"  # as forms.build writes
_OLE = b"\xd0\xcf\x11\xe0"  # .xls and password-protected .xlsx are OLE files, not zips
_REF = re.compile(
    r"^(?:'((?:[^']|'')+)'|([^'!]+))!\$?([A-Z]{1,3})\$?(\d+)"
    r"(?::\$?([A-Z]{1,3})\$?(\d+))?$"
)


def read_form(
    data: bytes, form: FormDef, *, lang: Language | None = None, workbook: Workbook | None = None
) -> FormReading:
    """The answers in a filled copy of ``form``; messages in ``lang`` (default: the file's).

    ``workbook``: ``data`` already opened (``intake.Spreadsheet.workbook``); its unpacked parts
    are read instead of unzipping ``data`` again. Raises FormReadError when the bytes are not a
    readable workbook or not this form.
    """
    return _Interpreter(_load(data, workbook), form, lang).read()


@dataclass
class _Book:
    """Everything read from the workbook, so the file is only touched inside ``_load``."""

    sheet: str  # title of the answer sheet
    cells: dict[tuple[int, int], Value]  # (row, column) -> value, within MAX_ROWS x MAX_COLS
    rows: int  # the last row read
    meta: dict[str, object] = field(default_factory=dict)
    #: defined name -> string constant, or (sheet, row, col, last row, last col)
    names: dict[str, str | tuple[str, int, int, int, int]] = field(default_factory=dict)


#: what a reader of our errors is told, by xlsx.cells' code
_CODES = {
    "not_zip": "not_xlsx",
    "bomb": "too_large",
    "xml_attack": "xml_attack",
    "encrypted": "not_xlsx",
    "corrupt": "unreadable",
}


def _load(data: bytes, workbook: Workbook | None = None) -> _Book:
    if len(data) > MAX_BYTES:
        raise FormReadError(f"the file is too large ({len(data)} bytes)", code="too_large")
    if data[:4] == _OLE:
        raise FormReadError(
            "an old .xls file or a password-protected workbook, not an .xlsx", code="not_xlsx"
        )
    try:
        if workbook is not None:
            # opened under the caller's limits (the operator's config); ours must hold as well,
            # or a file refused when read alone would be read when handed over
            workbook.package.check_sizes(LIMITS)
            return _read_book(workbook)
        with Workbook(data, LIMITS) as wb:
            return _read_book(wb)
    except XlsxError as exc:
        raise FormReadError(f"the workbook could not be read: {exc}", code=_CODES[exc.code]) from exc
    except FormReadError:
        raise
    except Exception as exc:  # an input we did not foresee must still be a FormReadError
        raise FormReadError(
            f"the workbook could not be read: {type(exc).__name__}: {exc}", code="unreadable"
        ) from exc


def _read_book(wb: Workbook) -> _Book:
    titles = [s.name for s in wb.sheets]
    # as openpyxl: within a scope the last of two equal names wins; the workbook's scope first,
    # then each sheet's in tab order; the first name (ignoring case) across scopes is kept
    scopes: dict[str | None, dict[str, str]] = {None: {}}
    for dn in wb.names:
        scopes.setdefault(dn.sheet, {})[dn.name] = dn.text
    names: dict[str, str | tuple[str, int, int, int, int]] = {}
    for scope in (None, *(t for t in titles if t in scopes)):
        for name, text in scopes[scope].items():
            parsed = _parse_name(text)
            if parsed is not None and name.lower().startswith(NAME_PREFIX):
                names.setdefault(name.lower(), parsed)
    known = {SHEET_NAMES[lang][1] for lang in LANGUAGES}
    title = next((t for t in titles if t in known), None)
    if title is None:  # renamed: the sheet the cell names point to, else the second sheet
        pointed = [v[0] for v in names.values() if isinstance(v, tuple) and v[0] in titles]
        visible = [t for t in titles if t != META_SHEET]
        title = pointed[0] if pointed else visible[min(1, len(visible) - 1)] if visible else None
    if title is None:
        raise FormReadError("the workbook has no sheets", code="wrong_form")
    grid = wb.read(title, max_row=MAX_ROWS, max_col=MAX_COLS)
    meta: dict[str, object] = {}
    if META_SHEET in titles:
        rows = wb.read(META_SHEET, max_row=50, max_col=2)
        for r in range(1, rows.rows + 1):
            key = rows.value(r, 1)
            if isinstance(key, str):
                meta[key] = rows.value(r, 2)
    return _Book(title, grid.cells, grid.rows, meta, names)


def _parse_name(text: str) -> str | tuple[str, int, int, int, int] | None:
    text = text.strip().lstrip("=")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    m = _REF.match(text)
    if m is None:
        return None
    sheet = m[1].replace("''", "'") if m[1] else m[2]
    row, col = int(m[4]), _column(m[3])
    return sheet, row, col, int(m[6] or row), _column(m[5]) if m[5] else col


class _Interpreter:
    """Locates each answer in the grid and converts it."""

    def __init__(self, book: _Book, form: FormDef, lang: Language | None) -> None:
        self.book, self.form = book, form
        file_lang = book.meta.get("language")
        self.file_lang: Language | None = next((x for x in LANGUAGES if x == file_lang), None)
        self.lang: Language = lang or self.file_lang or "nb"
        self.answers: dict[str, object] = {}
        self.cells: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.layout = sheet_layout(form)
        self.rows: dict[str, int] = {}
        for r in range(1, book.rows + 1):  # 1. the hidden key column
            key = book.cells.get((r, ID_COL))
            if isinstance(key, str) and key.strip() in self.layout:
                self.rows.setdefault(key.strip(), r)

    def read(self) -> FormReading:
        meta, form = self.book.meta, self.form
        if meta.get("form_id") not in (None, form.id):
            raise FormReadError(f"this is the form {meta['form_id']!r}, not {form.id!r}", code="wrong_form")
        located = 0
        for f in form.fields():
            row = self.locate(f.id, f.label.get("nb"), f.label.get("en"))
            if row is None:
                self.cells[f.id] = self.where(self.layout[f.id], self.answer_col(f))
                self.fail(f.id, f, None, "missing", "")
                continue
            located += 1
            if f.type == "multichoice":
                self.multichoice(f, row)
            elif f.type == "table":
                self.table(f, row)
            else:
                self.put(f.id, f, None, row, self.answer_col(f), into=self.answers)
        if located == 0 and not meta:
            raise FormReadError(
                f"none of the fields of {form.id!r} were found: this is not the form we sent",
                code="wrong_form",
            )
        version = meta.get("form_version")
        source = next((f.id for f in form.fields() if f.source == "unit.code"), None)
        unit = self.constant("unit_code", None) or (self.answers.get(source) if source else None)
        return FormReading(
            form_id=str(meta["form_id"]) if "form_id" in meta else None,
            form_version=int(version) if isinstance(version, int | float) else None,
            language=self.file_lang,
            unit_code=str(unit) if unit else None,
            reference=self.constant("reference", REFERENCE_NAME) or self.visible_reference(),
            stamp=self.constant("stamp", STAMP_NAME),
            answers=self.answers,
            cells=self.cells,
            problems=self.problems,
        )

    # -- locating ---------------------------------------------------------------------------------

    def locate(self, key: str, *labels: str, anchor: int | None = None) -> int | None:
        """The sheet row of ``key``: hidden id column, defined name, layout, then label search."""
        if key in self.rows:
            return self.rows[key]
        named = self.book.names.get((NAME_PREFIX + key.replace("/", "__")).lower())
        if isinstance(named, tuple) and named[0] == self.book.sheet:
            return named[1]
        expected = self.layout[key] if anchor is None else anchor
        if self.label_at(expected, labels):
            return expected
        hits = [r for r in range(1, self.book.rows + 1) if self.label_at(r, labels)]
        return hits[0] if len(hits) == 1 else None

    def label_at(self, row: int, labels: tuple[str, ...]) -> bool:
        text = self.value(row, LABEL_COL)
        if not isinstance(text, str):
            return False
        text = normalise(text).rstrip("* ").strip()
        return any(text == normalise(label) for label in labels)

    def answer_col(self, f: Field) -> int:
        named = self.book.names.get((NAME_PREFIX + f.id).lower())
        return named[2] if isinstance(named, tuple) and named[0] == self.book.sheet else ANSWER_COL

    # -- reading ----------------------------------------------------------------------------------

    def value(self, row: int, col: int) -> object:
        return self.book.cells.get((row, col))

    def where(self, row: int, col: int) -> str:
        return sheet_ref(self.book.sheet, f"{_letters(col)}{row}")

    def put(
        self, key: str, item: Item, column: str | None, row: int, col: int, *, into: dict[str, object]
    ) -> None:
        """Convert one cell into ``into[item.id]``, or record why it could not be."""
        self.cells[key] = self.where(row, col)
        raw = self.value(row, col)
        if blank(raw):
            return
        try:
            into[item.id] = convert(item, raw)
        except BadValue as bad:
            self.fail(key, self.form.field(key.split("/")[0]), column, bad.kind, shown(raw))

    def fail(self, key: str, f: Field, column: str | None, kind: ConversionKind, raw: str) -> None:
        p = ConversionProblem(self.cells[key], "", key=key, field=f.id, column=column, kind=kind, raw=raw)
        self.problems.append(conversion_message(self.form, p, self.lang))

    def multichoice(self, f: Field, row: int) -> None:
        self.cells[f.id] = self.where(row, ANSWER_COL)
        ticked = []
        for k, c in enumerate(f.options, 1):
            key = option_key(f.id, c.value)
            orow = self.locate(key, c.label.nb, c.label.en, anchor=row + k)
            if orow is None:
                self.cells[key] = self.where(row + k, ANSWER_COL)
                self.fail(key, f, None, "missing", "")
                continue
            self.cells[key] = self.where(orow, ANSWER_COL)
            raw = self.value(orow, ANSWER_COL)
            if blank(raw):
                continue
            try:
                if tick(raw):
                    ticked.append(c.value)
            except BadValue:
                self.fail(key, f, None, "tick", shown(raw))
        if ticked:
            self.answers[f.id] = tuple(ticked)

    def table(self, f: Field, row: int) -> None:
        named = self.book.names.get((NAME_PREFIX + f.id).lower())
        first_col = named[2] if isinstance(named, tuple) else LABEL_COL
        kept: list[object] = []
        for n in range(1, f.rows + 1):
            key = row_key(f.id, n)
            if key in self.rows:
                r = self.rows[key]
            elif isinstance(named, tuple) and named[0] == self.book.sheet:
                r = named[1] + n - 1
            else:
                r = row + 1 + n  # below the label row and the column headers
            if n == 1:
                self.cells[f.id] = self.where(r, first_col)
            if all(blank(self.value(r, first_col + k)) for k in range(len(f.columns))):
                continue
            values: dict[str, object] = {}
            index = len(kept) + 1
            for k, col in enumerate(f.columns):
                self.put(cell_key(f.id, index, col.id), col, col.id, r, first_col + k, into=values)
            kept.append(values)
        if kept:
            self.answers[f.id] = kept

    def constant(self, meta_key: str, name: str | None) -> str | None:
        for value in (self.book.meta.get(meta_key), self.book.names.get(name) if name else None):
            if isinstance(value, str | int) and str(value).strip():
                return str(value).strip()
        return None

    def visible_reference(self) -> str | None:
        row = self.locate(REFERENCE_KEY, REFERENCE_LABEL.nb, REFERENCE_LABEL.en)
        value = self.value(row, ANSWER_COL) if row is not None else None
        return value.strip() if isinstance(value, str) and value.strip() else None
