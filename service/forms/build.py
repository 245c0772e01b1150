"""Build the personalised .xlsx form a unit leader fills in.

Speed: openpyxl needs ~13 ms to build this workbook, and a campaign sends hundreds. So the workbook
is built once per (form, language) as a template whose personal cells hold placeholders
(``@@SP[unit.code]@@``), and each unit's copy is made by replacing those placeholders in the saved
zip members with XML-escaped values (~1 ms). openpyxl writes strings inline, so every placeholder
sits whole inside one ``<t>`` element or one defined name, never split across shared strings.

Rows that show a roster value (the unit's name, the faculty's) are as tall as that value needs
in LibreOffice, which neither autofits nor clips: their height is a placeholder too
(``@@SPH2x30[unit.name]@@``: at least 2 lines, more if the name wraps further at width 30).

What survives which client decided the layout (see DESIGN.md "The form"): every answer row carries
its key in hidden column A (plain cell text survives everything), every answer cell also has a
defined name, and the layout itself is computed from the form definition, so ``forms.read`` has
three independent ways to find an answer. The stamp (the signed machine token) is stored twice,
as a defined name and on a very hidden sheet, and never in a visible cell.

Multichoice: one row per option with a one-item dropdown holding the language's "yes"; an empty
cell means "not ticked". A tick per row reads back reliably from every client, unlike several
values typed into one cell. How the cells look (fills, help texts, dropdowns) is ``forms.style``.
"""

from __future__ import annotations

import datetime
import functools
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import quote
from xml.sax.saxutils import escape

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.worksheet import Worksheet

from service.forms.model import (
    ANSWER_COL,
    FACULTY_NAME,
    HEADER_ROW,
    HELP_COL,
    ID_COL,
    LABEL_COL,
    META_SHEET,
    REFERENCE_KEY,
    REFERENCE_LABEL,
    REFERENCE_ROW,
    SHEET_NAMES,
    SOURCES,
    YES_NO,
    Field,
    FormDef,
    option_key,
    row_key,
    sheet_layout,
    sheet_ref,
)
from service.forms.style import (
    ANSWER_FILL,
    BOX,
    FILLED_FILL,
    HEAD_FILL,
    SUB_FILL,
    UI,
    UNLOCKED,
    WIDTHS,
    WRAP,
    fit_height,
    help_text,
    is_address,
    line_height,
    print_setup,
    style_answer,
    validation,
    wrapped_lines,
)
from service.models import Language, Unit

#: defined names the reader looks for; cell names are NAME_PREFIX + key with '/' as '__'
STAMP_NAME, REFERENCE_NAME, NAME_PREFIX = "sp_stamp", "sp_reference", "sp_"


def build_form(
    form: FormDef,
    unit: Unit,
    *,
    lang: Language,
    reference: str,
    stamp: str,
    campaign_title: str,
    deadline: datetime.date,
) -> bytes:
    """The personalised .xlsx for ``unit``, in ``lang``, as bytes."""
    if len(stamp) > 250 or len(reference) > 250:
        # both are string constants in defined names, which Excel caps at 255 characters
        raise ValueError("stamp and reference must be at most 250 characters")
    values = {source: str(getattr(unit, attr)) for source, attr in SOURCES.items()}
    values |= {
        FACULTY_NAME: form.context.faculty_name(unit.faculty, lang),
        "reference": reference,
        "stamp": stamp,
        "campaign": campaign_title,
        "deadline": format_date(deadline, lang),
    }
    fixed, personal = _template(form, lang)
    # the members nobody's data touches are compressed once, in `fixed`; a unit's build only
    # appends its few personal members (append mode rewrites just the central directory)
    out = BytesIO(fixed)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as zf:
        for part in personal:
            # a fresh ZipInfo each time: writestr fills in sizes and offsets on the object it
            # is given, and the cached template is shared by every thread that builds forms
            info = zipfile.ZipInfo(part.name, part.date_time)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, part.external_attr
            zf.writestr(info, part.fill(values), compresslevel=1)
    return out.getvalue()


def format_date(day: datetime.date, lang: Language) -> str:
    """A date as a person writes it: '16. desember 2020' / '16 December 2020'."""
    month = UI[lang]["months"].split()[day.month - 1]
    return f"{day.day}. {month} {day.year}" if lang == "nb" else f"{day.day} {month} {day.year}"


def cell_name(key: str) -> str:
    """Defined name of the answer cell (or table range) for a layout key."""
    return NAME_PREFIX + key.replace("/", "__")


# ---- personalising the saved template --------------------------------------------------------

_PLACEHOLDER = re.compile(rb"@@(SP|SPF|SPH\d+x\d+)\[([a-z_.]+)\]@@")
#: characters XML 1.0 forbids; a roster value carrying one would make the file unreadable
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _ph(name: str) -> str:
    """Placeholder for a value shown as cell text."""
    return f"@@SP[{name}]@@"


def _ph_formula(name: str) -> str:
    """Placeholder for a value inside a defined name's string constant ("...")."""
    return f'"@@SPF[{name}]@@"'


def _ph_height(name: str, lines: int, width: int) -> str:
    """Placeholder for the height of a row showing value ``name`` in a cell ``width`` wide, at
    least ``lines`` lines."""
    return f"@@SPH{lines}x{width}[{name}]@@"


def _escape(value: str, formula: bool) -> bytes:
    text = _NOT_XML.sub("", value).strip()[:32000]  # Excel caps a cell at 32,767 characters
    if formula:
        text = text.replace('"', '""')  # a string constant in a formula doubles its quotes
    return escape(text).encode()


@dataclass(frozen=True)
class _Part:
    """A zip member of the template that holds personal values, pre-split around them."""

    name: str
    date_time: tuple[int, int, int, int, int, int]
    external_attr: int
    #: literal bytes and (kind, name) placeholders, in order
    pieces: tuple[bytes | tuple[str, str], ...]

    def fill(self, values: dict[str, str]) -> bytes:
        return b"".join(p if isinstance(p, bytes) else _value(*p, values) for p in self.pieces)


def _value(kind: str, name: str, values: dict[str, str]) -> bytes:
    if kind.startswith("SPH"):  # a row height: the value wrapped at the cell's width
        least, width = (int(n) for n in kind[3:].split("x"))
        lines = wrapped_lines(((values[name], width),), minimum=least)
        return f"{line_height(lines):g}".encode()
    return _escape(values[name], kind == "SPF")


@functools.lru_cache(maxsize=16)
def _template(form: FormDef, lang: Language) -> tuple[bytes, tuple[_Part, ...]]:
    """The template as a zip of its fixed members, plus the members to personalise."""
    fixed, parts = BytesIO(), []
    with (
        zipfile.ZipFile(BytesIO(build_template(form, lang))) as src,
        zipfile.ZipFile(fixed, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if b"@@SP" not in data:
                dst.writestr(info, data, compresslevel=6)
                continue
            pieces: list[bytes | tuple[str, str]] = []
            at = 0
            for m in _PLACEHOLDER.finditer(data):
                pieces += [data[at : m.start()], (m[1].decode(), m[2].decode())]
                at = m.end()
            pieces.append(data[at:])
            parts.append(_Part(info.filename, info.date_time, info.external_attr, tuple(pieces)))
    return fixed.getvalue(), tuple(parts)


# ---- building the template with openpyxl -------------------------------------------------------


def build_template(form: FormDef, lang: Language) -> bytes:
    """The form in ``lang`` with placeholders where the unit's values go (see module doc)."""
    wb = Workbook()
    instructions_title, answers_title = SHEET_NAMES[lang]
    ins = wb.active
    ins.title = instructions_title
    ws = wb.create_sheet(answers_title)
    meta = wb.create_sheet(META_SHEET)
    heights = {ins: _instructions(ins, form, lang, answers_title)}
    names, heights[ws] = _answers(ws, form, lang)
    for row, (key, value) in enumerate(
        (
            ("form_id", form.id),
            ("form_version", form.version),
            ("language", lang),
            ("unit_code", _ph("unit.code")),
            ("reference", _ph("reference")),
            ("stamp", _ph("stamp")),
            ("note", "skjemapost: machine data, do not edit"),
        ),
        1,
    ):
        meta.cell(row, 1, key)
        meta.cell(row, 2, value)
    meta.sheet_state = "veryHidden"
    meta.protection.sheet = True
    names |= {STAMP_NAME: _ph_formula("stamp"), REFERENCE_NAME: _ph_formula("reference")}
    for name, text in names.items():
        wb.defined_names[name] = DefinedName(name, attr_text=text)
    # leaders must not add, delete or rename sheets: the reader finds the answers by sheet name
    wb.security = WorkbookProtection(lockStructure=True)
    wb.active = 0
    out = BytesIO()
    wb.save(out)
    # openpyxl names the sheets' parts by their position and writes heights only as numbers
    return _with_heights(
        out.getvalue(), {f"xl/worksheets/sheet{wb.index(w) + 1}.xml": rows for w, rows in heights.items()}
    )


_ROW = re.compile(rb'<row r="(\d+)"([^>]*)>')
_HEIGHT = re.compile(rb'\s(?:ht|customHeight)="[^"]*"')


def _with_heights(data: bytes, heights: dict[str, dict[int, str]]) -> bytes:
    """The saved workbook with the rows of ``heights`` ({sheet part: {row: height placeholder}})
    given those heights."""

    def marker(rows: dict[int, str]) -> Callable[[re.Match[bytes]], bytes]:
        def mark(m: re.Match[bytes]) -> bytes:
            row = int(m[1])
            if row not in rows:
                return m[0]
            return b'<row r="%d" ht="%s" customHeight="1"%s>' % (
                row,
                rows[row].encode(),
                _HEIGHT.sub(b"", m[2]),
            )

        return mark

    out = BytesIO()
    with zipfile.ZipFile(BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            rows = heights.get(info.filename)
            dst.writestr(info, _ROW.sub(marker(rows), body) if rows else body)
    return out.getvalue()


#: the instructions' one column. LibreOffice does not scale a sheet of one column to fit the
#: page (a column is never split), and without Calibri or Carlito its fallback font makes columns
#: a third wider than Excel does; at this width the column fits A4 portrait unscaled anyway
INSTRUCTIONS_WIDTH = 70


def _instructions(ws: Worksheet, form: FormDef, lang: Language, answers_title: str) -> dict[int, str]:
    """Write the instructions sheet; return the height placeholder of the line naming the unit."""
    ui = UI[lang]
    ws.column_dimensions["A"].width = 2
    ws.column_dimensions["B"].width = INSTRUCTIONS_WIDTH
    unit_line = f"{ui['unit']}: {_ph('unit.code')} {_ph('unit.name')}"
    lines: list[tuple[str, Font | None]] = [
        (form.title.get(lang), Font(bold=True, size=16)),
        (_ph("campaign"), Font(italic=True, size=12)),
        ("", None),
        (unit_line, Font(bold=True)),
        (f"{ui['deadline']}: {_ph('deadline')}", Font(bold=True)),
        (f"{REFERENCE_LABEL.get(lang)}: {_ph('reference')}", Font(bold=True)),
        ("", None),
        (ui["where"].format(sheet=answers_title), Font(bold=True)),
    ]
    paragraphs = (p.strip() for p in re.split(r"\n\s*\n", form.instructions.get(lang)))
    lines += [(p, None) for p in paragraphs if p]
    for row, (text, font) in enumerate(lines, 1):
        cell = ws.cell(row, 2, text or None)
        cell.alignment = WRAP
        if font is not None:
            cell.font = font
        if is_address(text):  # a paragraph that is an address is a link
            cell.hyperlink = quote(text, safe=":/?#[]@!$&'()*+,;=%")
            cell.font = Font(color="0563C1", underline="single")
        fit_height(ws, row, ((text, INSTRUCTIONS_WIDTH),))
    ws.row_dimensions[1].height = 24  # the title's large type, clear of the line below
    ws.protection.sheet = True
    print_setup(ws, f"B1:B{len(lines)}")
    # the unit's name follows "Enhet: CODE " in bold type: it has less than the column to itself
    row = 1 + [text for text, _ in lines].index(unit_line)
    return {row: _ph_height("unit.name", 1, INSTRUCTIONS_WIDTH - 20)}


def _answers(ws: Worksheet, form: FormDef, lang: Language) -> tuple[dict[str, str], dict[int, str]]:
    """Lay out the answer sheet; return the defined names (name -> reference) it needs, and the
    height placeholders of the rows showing a roster value (row -> placeholder)."""
    layout = sheet_layout(form)
    sheet = ws.title
    names: dict[str, str] = {}
    heights: dict[int, str] = {}
    right = max([6] + [LABEL_COL + len(f.columns) - 1 for f in form.fields()])  # widest table

    def answer_cell(row: int, col: int, key: str) -> None:
        cell = ws.cell(row, col)
        cell.protection, cell.fill, cell.border, cell.alignment = (UNLOCKED, ANSWER_FILL, BOX, WRAP)
        names[cell_name(key)] = sheet_ref(sheet, f"${get_column_letter(col)}${row}")

    _sheet_head(ws, form, lang)
    for section in form.sections:
        head = layout[section.fields[0].id] - 1
        for col in range(LABEL_COL, right + 1):
            ws.cell(head, col).fill = HEAD_FILL
        ws.cell(head, LABEL_COL, section.title.get(lang)).font = Font(bold=True, size=12, color="FFFFFF")
        for f in section.fields:
            row = layout[f.id]
            lines = _question(ws, f, row, lang)
            if f.source or f.prefill:
                heights[row] = _ph_height(str(f.source or f.prefill), lines, WIDTHS["C"])
            if f.source:
                cell = ws.cell(row, ANSWER_COL, _ph(f.source))
                cell.fill, cell.border, cell.alignment = FILLED_FILL, BOX, WRAP
                names[cell_name(f.id)] = sheet_ref(sheet, f"${get_column_letter(ANSWER_COL)}${row}")
            elif f.type == "multichoice":
                dv = validation(f, lang, [c.label.get(lang) for c in YES_NO[:1]])
                for c in f.options:
                    orow = layout[option_key(f.id, c.value)]
                    ws.cell(orow, ID_COL, option_key(f.id, c.value))
                    ws.cell(orow, LABEL_COL, c.label.get(lang)).alignment = Alignment(
                        indent=2, wrap_text=True, vertical="top"
                    )
                    answer_cell(orow, ANSWER_COL, option_key(f.id, c.value))
                    dv.add(ws.cell(orow, ANSWER_COL))
                ws.add_data_validation(dv)
            elif f.type == "table":
                _table(ws, f, lang, layout, names=names, sheet=sheet)
            else:
                answer_cell(row, ANSWER_COL, f.id)
                if f.prefill:  # the roster's value, open to correction
                    ws.cell(row, ANSWER_COL, _ph(f.prefill))
                style_answer(ws.cell(row, ANSWER_COL), f)
                dv = validation(f, lang)
                dv.add(ws.cell(row, ANSWER_COL))
                ws.add_data_validation(dv)
    last = max(layout.values()) + 1
    ws.freeze_panes = ws.cell(HEADER_ROW + 1, 1)
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.protection.sheet = True
    ws.protection.formatRows = ws.protection.formatColumns = False  # may resize to read
    print_setup(ws, f"B1:{get_column_letter(right)}{last}")
    return names, heights


def _sheet_head(ws: Worksheet, form: FormDef, lang: Language) -> None:
    """The columns, the title, the reference code, the deadline and the column headings."""
    ui = UI[lang]
    for letter, width in WIDTHS.items():
        ws.column_dimensions[letter].width = width
    ws.column_dimensions["A"].hidden = True  # the row keys: plain text every client keeps
    ws.cell(1, LABEL_COL, form.title.get(lang)).font = Font(bold=True, size=14)
    ws.row_dimensions[1].height = 21
    ws.cell(2, LABEL_COL, _ph("campaign")).font = Font(italic=True)
    ws.cell(REFERENCE_ROW, ID_COL, REFERENCE_KEY)
    ws.cell(REFERENCE_ROW, LABEL_COL, REFERENCE_LABEL.get(lang)).font = Font(bold=True)
    ws.cell(REFERENCE_ROW, ANSWER_COL, _ph("reference")).font = Font(bold=True, size=12)
    ws.cell(REFERENCE_ROW, HELP_COL, ui["keep"]).alignment = WRAP
    ws.cell(REFERENCE_ROW + 1, LABEL_COL, ui["deadline"]).font = Font(bold=True)
    ws.cell(REFERENCE_ROW + 1, ANSWER_COL, _ph("deadline")).font = Font(bold=True)
    for col, key in ((LABEL_COL, "question"), (ANSWER_COL, "answer"), (HELP_COL, "help")):
        cell = ws.cell(HEADER_ROW, col, ui[key])
        cell.font, cell.fill = Font(bold=True), SUB_FILL


def _question(ws: Worksheet, f: Field, row: int, lang: Language) -> int:
    """The row's key, label and help, the row as tall as they need; the lines it takes."""
    ws.cell(row, ID_COL, f.id)
    label = ws.cell(row, LABEL_COL, f.label.get(lang) + (" *" if f.required else ""))
    label.alignment = WRAP
    helping = help_text(f, lang)
    ws.cell(row, HELP_COL, helping or None).alignment = Alignment(wrap_text=True, vertical="top")
    ws.cell(row, HELP_COL).font = Font(italic=True, color="595959")
    texts = ((label.value, WIDTHS["B"]), (helping, WIDTHS["D"]))
    room = 4 if f.type == "longtext" else 1  # room to write in
    fit_height(ws, row, texts, minimum=room)
    return wrapped_lines(texts, room)


def _table(
    ws: Worksheet, f: Field, lang: Language, layout: dict[str, int], *, names: dict[str, str], sheet: str
) -> None:
    header = layout[f.id] + 1
    first, last = layout[row_key(f.id, 1)], layout[row_key(f.id, f.rows)]
    for k, col in enumerate(f.columns):
        c = LABEL_COL + k
        cell = ws.cell(header, c, col.label.get(lang) + (" *" if col.required else ""))
        cell.font, cell.fill, cell.border, cell.alignment = Font(bold=True), SUB_FILL, BOX, WRAP
        dv = validation(col, lang)
        for row in range(first, last + 1):
            answer = ws.cell(row, c)
            answer.protection, answer.fill, answer.border, answer.alignment = (
                UNLOCKED,
                ANSWER_FILL,
                BOX,
                WRAP,
            )
            style_answer(answer, col)
            dv.add(answer)
        ws.add_data_validation(dv)
    for n in range(1, f.rows + 1):
        ws.cell(layout[row_key(f.id, n)], ID_COL, row_key(f.id, n))
    end = get_column_letter(LABEL_COL + len(f.columns) - 1)
    names[cell_name(f.id)] = sheet_ref(sheet, f"${get_column_letter(LABEL_COL)}${first}:${end}${last}")
