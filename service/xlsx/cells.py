"""Cell values straight from an .xlsx (zipfile + xml.etree), for untrusted files, fast.

Why not openpyxl: it takes 7-13 ms to open a filled form and the inbox must take 100 replies a
second. Reading only what is needed - ``workbook.xml`` and its relationships, the shared strings,
two blocks of the styles (for dates) and the wanted sheets - takes 1-2 ms.

Values are those of openpyxl with ``data_only=True``: shared and inline strings (rich-text runs
joined, phonetic runs left out), booleans, numbers (``int`` unless written with a point or an
exponent), a formula's cached ``<v>`` (nothing is evaluated), error values as text (``#N/A``),
ISO dates (``t="d"``), and numbers whose style has a date or time format converted from the Excel
serial (1900 system, or 1904 by ``workbookPr date1904``). Deliberate differences: a date-only
format gives a ``datetime.date`` (openpyxl: a midnight ``datetime``), and ST_Xstring escapes such
as ``_x000D_`` are decoded (openpyxl leaves them in the text; see _ESCAPED). Which formats show
a date, and what a serial is as one, is ``xlsx.dates``.

Hostile input is refused by ``xlsx.safezip`` (bombs, DTDs, memory); here, rows past the cap are never
parsed: the row tags are scanned and the text is cut before the first row past it, and nothing
is ever sized by the ``<dimension>`` a file claims. Failures are ``XlsxError`` (= PackageError),
whose ``code`` says what was wrong.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from xml.etree import ElementTree as ET

from service.xlsx.dates import BUILTIN_DATE_FORMATS, DateKind, format_kind, from_serial, iso_value
from service.xlsx.safezip import Package, PackageError, ZipLimits, guarded, parse

Value = str | int | float | bool | datetime.date | datetime.time | datetime.timedelta | None

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
XlsxError = PackageError  # what a caller of this module catches
__all__ = [
    "DefinedName",
    "Grid",
    "Sheet",
    "Workbook",
    "XlsxError",
    "column_index",
    "column_letters",
    "open_workbook",
]


@dataclass(frozen=True)
class Sheet:
    """A worksheet as ``workbook.xml`` lists it (chart sheets are left out)."""

    name: str
    state: str  # visible, hidden or veryHidden
    part: str  # its zip member, e.g. xl/worksheets/sheet2.xml


@dataclass(frozen=True)
class DefinedName:
    name: str
    text: str  # as written: Skjema!$C$14, "a constant", ...
    sheet: str | None = None  # the sheet a sheet-scoped name (localSheetId) belongs to


@dataclass(frozen=True)
class Grid:
    """The values of one sheet within the caps; empty cells are absent."""

    sheet: str
    cells: dict[tuple[int, int], Value]  # (row, column), both from 1
    rows: int  # the last row read
    truncated: bool  # rows past the cap were present and not read

    def value(self, row: int, col: int) -> Value:
        return self.cells.get((row, col))


# ---- cutting a sheet and the styles down to what is read ----------------------------------------

_ROOT = re.compile(r"<(?![?!])([\w.:-]+)")
_SHEET_DATA = re.compile(r"<([\w.-]+:|)sheetData\b")
_ROW_NO = re.compile(r"""\br\s*=\s*["'](\d+)["']""")


@lru_cache(maxsize=8)
def _row_tag(prefix: str) -> re.Pattern[str]:
    # a literal start ("<row") lets the regex engine jump between candidates: ~10x faster
    return re.compile("<" + re.escape(prefix) + r"row\b([^>]*)>")


def _cut(text: str, max_row: int) -> tuple[str, bool]:
    """The sheet text up to its last row within the cap, closed again; and whether rows were cut.

    Rows past the cap must never be parsed, and what follows ``sheetData`` (validations with their
    long prompts, print setup) is a third of a form's sheet and never needed. Each row tag is
    rewritten to carry only its number: LibreOffice writes six more attributes per row, a third
    of what would be parsed. Row tags cannot occur in text (``<`` is escaped there), so this scan
    sees only real ones; the result is parsed as XML as usual.
    """
    root, data = _ROOT.search(text), _SHEET_DATA.search(text)
    if root is None or data is None:
        return text, False
    prefix, close = data[1], f"</{root[1]}>"
    count = row_no = 0
    pieces, at = [text[: data.end()]], data.end()
    for m in _row_tag(prefix).finditer(text, at):
        found = _ROW_NO.search(m[1])
        row_no, count = int(found[1]) if found else row_no + 1, count + 1
        if row_no > max_row or count > max_row:
            pieces.append(f"{text[at : m.start()]}</{prefix}sheetData>{close}")
            return "".join(pieces), True
        empty = "/" if m[1].endswith("/") else ""
        pieces.append(f'{text[at : m.start()]}<{prefix}row r="{row_no}"{empty}>')
        at = m.end()
    end = text.find(f"</{prefix}sheetData>", at)
    if end < 0:
        return text, False
    pieces.append(f"{text[at:end]}</{prefix}sheetData>{close}")
    return "".join(pieces), False


_NUM_FMTS = re.compile(r"<([\w.-]+:|)numFmts\b[^>]*?(?:/>|>.*?</\1numFmts\s*>)", re.S)
_CELL_XFS = re.compile(r"<([\w.-]+:|)cellXfs\b[^>]*?(?:/>|>.*?</\1cellXfs\s*>)", re.S)
_XF = re.compile(r"<(?:[\w.-]+:)?xf\b([^>]*)>")
_NUM_FMT_ID = re.compile(r"""\bnumFmtId\s*=\s*["'](\d+)["']""")


def _style_kinds(text: str, ns: str) -> list[DateKind | None]:
    """The date kind of each cell style (its cellXfs index), from its number format.

    Fonts, fills, borders and named styles are most of styles.xml, and parsing it all took a fifth
    of a reply's read time. So only the small numFmts block is parsed (alone, or with the whole
    part if a prefix declared elsewhere stops it), and each cellXfs ``<xf>`` tag is only scanned
    for its numFmtId, a number.
    """
    custom: dict[int, str] = {}
    fmts = _NUM_FMTS.search(text)
    if fmts is not None:
        prefix = fmts[1][:-1]
        try:
            root = ET.fromstring(f'<w xmlns{":" if prefix else ""}{prefix}="{ns}">{fmts[0]}</w>')
        except ET.ParseError:
            root = parse(text, "styles")
        q = f"{{{ns}}}"
        custom = {
            int(f.get("numFmtId", "-1")): f.get("formatCode", "")
            for f in root.iterfind(f"{q}numFmts/{q}numFmt")
        }
    xfs = _CELL_XFS.search(text)
    tags = _XF.finditer(xfs[0]) if xfs is not None else iter(())
    ids = (int(m[1]) if m else 0 for m in (_NUM_FMT_ID.search(x[1]) for x in tags))
    return [format_kind(custom.get(n, BUILTIN_DATE_FORMATS.get(n, ""))) for n in ids]


# ---- the workbook ------------------------------------------------------------------------------


class Workbook:
    """An opened .xlsx: its sheets and names at once, each sheet's cells on demand."""

    def __init__(self, data: bytes | Package, limits: ZipLimits | None = None) -> None:
        self.package = data if isinstance(data, Package) else Package(data, limits or ZipLimits())
        self._strings: list[str] | None = None
        self._kinds: list[DateKind | None] | None = None
        with guarded("workbook"):
            self._open()

    def _open(self) -> None:
        package = self.package
        self.part = package.office_document() or "xl/workbook.xml"
        if not package.has(self.part):
            raise PackageError("no workbook part: not a spreadsheet", code="corrupt")
        root = parse(package.xml(self.part), self.part)
        self.ns = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
        if self.ns not in (MAIN_NS, STRICT_NS):
            raise PackageError(f"unknown namespace {self.ns!r}", code="corrupt", part=self.part)
        q = f"{{{self.ns}}}"
        rels = package.rels(self.part)
        listed: list[str] = []
        sheets: list[Sheet] = []
        for el in root.iterfind(f"{q}sheets/{q}sheet"):
            listed.append(el.get("name") or "")
            rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), "")
            kind, target = rels.get(rid, ("", ""))
            # as openpyxl: a sheet whose part is missing is skipped; chart sheets hold no cells
            if target and package.has(target) and not kind.endswith("/chartsheet"):
                sheets.append(Sheet(listed[-1], el.get("state") or "visible", target))
        self.sheets: tuple[Sheet, ...] = tuple(sheets)
        names = []
        for el in root.iterfind(f"{q}definedNames/{q}definedName"):
            local = el.get("localSheetId")
            if local is None or int(local) < len(listed):
                names.append(
                    DefinedName(
                        el.get("name") or "", el.text or "", None if local is None else listed[int(local)]
                    )
                )
        self.names: tuple[DefinedName, ...] = tuple(names)
        pr = root.find(f"{q}workbookPr")
        self.date1904 = pr is not None and pr.get("date1904", "").lower() in ("1", "true")
        by_type = {kind.rsplit("/", 1)[-1]: t for kind, t in rels.values()}
        self._parts = {k: by_type.get(k) for k in ("sharedStrings", "styles")}

    def sheet(self, name: str) -> Sheet:
        for s in self.sheets:
            if s.name == name:
                return s
        raise LookupError(f"no sheet {name!r}")

    def read(self, name: str, *, max_row: int = 1000, max_col: int = 30) -> Grid:
        """The values of sheet ``name`` in rows 1..max_row and columns 1..max_col."""
        part = self.sheet(name).part
        with guarded(part):
            piece, truncated = _cut(self.package.xml(part), max_row)
            return self._read(name, parse(piece, part), max_row, max_col, truncated)

    def _read(self, name: str, root: ET.Element, max_row: int, max_col: int, truncated: bool) -> Grid:  # noqa: C901 - the hot loop over every cell, kept whole for speed (bench/form_read.py)
        q = f"{{{self.ns}}}"
        tag_c, tag_v, tag_is = q + "c", q + "v", q + "is"
        cells: dict[tuple[int, int], Value] = {}
        row_no = last = 0
        for row in root.iterfind(f"{q}sheetData/{q}row"):
            r = row.get("r")
            row_no = int(r) if r else row_no + 1
            if row_no > max_row:  # only if rows are out of order: _cut stops at the first
                truncated = True
                break
            last, col = row_no, 0
            for c in row:
                if c.tag != tag_c:
                    continue  # a row's extLst
                ref = c.get("r")
                if ref is None:
                    col += 1
                else:
                    letters = ref.rstrip(_DIGITS)
                    col = _COLUMNS.get(letters) or column_index(letters)
                if col > max_col or not len(c):
                    continue  # no children: a styled cell without a value
                t = c.get("t", "n")
                if t == "inlineStr":
                    inline = c.find(tag_is)
                    if inline is not None:
                        cells[row_no, col] = _text(inline, q)
                    continue
                v = c.findtext(tag_v)
                if not v:
                    continue
                if t == "s":
                    cells[row_no, col] = self.string(int(v))
                elif t == "n":
                    cells[row_no, col] = self._number(v, int(c.get("s") or 0))
                elif t == "b":
                    cells[row_no, col] = bool(int(v))
                elif t == "d":
                    cells[row_no, col] = iso_value(v)
                else:  # str (a formula's text result), e (#N/A...) or unknown: the text itself
                    cells[row_no, col] = v
        return Grid(name, cells, last, truncated)

    def _number(self, v: str, style: int) -> Value:
        number: int | float = float(v) if "." in v or "E" in v or "e" in v else int(v)
        kinds = self.kinds()
        kind = kinds[style] if 0 <= style < len(kinds) else None
        return number if kind is None else from_serial(number, kind, date1904=self.date1904)

    def _part_text(self, kind: str) -> str:
        part = self._parts[kind]
        return self.package.xml(part) if part and self.package.has(part) else ""

    def string(self, index: int) -> str:
        """Shared string ``index``; the table is read on first use."""
        if self._strings is None:
            text, q = self._part_text("sharedStrings"), f"{{{self.ns}}}"
            root = parse(text, "sharedStrings") if text else None
            self._strings = [] if root is None else [_text(si, q) for si in root.iterfind(q + "si")]
        if not 0 <= index < len(self._strings):
            raise PackageError(f"shared string {index} does not exist", code="corrupt")
        return self._strings[index]

    def kinds(self) -> list[DateKind | None]:
        """The date kind of each cell style; read on first use."""
        if self._kinds is None:
            self._kinds = _style_kinds(self._part_text("styles"), self.ns)
        return self._kinds

    def close(self) -> None:
        self.package.close()

    def __enter__(self) -> Workbook:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_workbook(data: bytes, limits: ZipLimits | None = None) -> Workbook:
    """Open ``data`` as an .xlsx; raises XlsxError (see the module doc)."""
    return Workbook(data, limits)


# ---- values -------------------------------------------------------------------------------------

#: ST_Xstring escapes as Excel writes them: control characters XML cannot carry, and _x005F_ for
#: a literal "_x" sequence. Others stay as written: openpyxl (our templates) does not escape, and
#: a stamp in base64url could otherwise contain one by chance. NUL stays too (no store takes it).
_ESCAPED = re.compile(r"_x(00(?:0[1-9A-Fa-f]|1[0-9A-Fa-f]|5[Ff]))_")


def _unescape(match: re.Match[str]) -> str:
    return chr(int(match[1], 16))


def _text(element: ET.Element, q: str) -> str:
    """The text of an ``<si>`` or ``<is>``: its ``<t>``, or its runs' ``<t>`` joined."""
    tag_t = q + "t"
    if len(element) == 1 and element[0].tag == tag_t:  # plain text: nearly every cell
        text = element[0].text or ""
    else:  # runs; phonetic guides (rPh) are left out, as Excel shows them apart
        tag_r = q + "r"
        text = "".join(
            (child.text or "") if child.tag == tag_t else (child.findtext(tag_t) or "")
            for child in element
            if child.tag == tag_t or child.tag == tag_r
        )
    return _ESCAPED.sub(_unescape, text) if "_x" in text else text


_DIGITS = "0123456789"


def column_index(letters: str) -> int:
    """Column number of a reference's letters (C, AB; C14 and $C$14 work too)."""
    letters = letters.replace("$", "").rstrip(_DIGITS).upper()
    if not 1 <= len(letters) <= 3 or not letters.isalpha() or not letters.isascii():
        raise ValueError(f"bad cell reference {letters!r}")
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def column_letters(col: int) -> str:
    """Column letters of a column number: 3 -> C, 28 -> AB."""
    out = ""
    while col > 0:
        col, rest = divmod(col - 1, 26)
        out = chr(65 + rest) + out
    return out


#: A..ZZ, looked up for every cell; three letters are rare enough to compute
_COLUMNS = {
    a + b: column_index(a + b) for a in ("", *map(chr, range(65, 91))) for b in map(chr, range(65, 91))
}
