"""How the form's sheets look and guide the leader: wording, colours, help, dropdowns, printing.

``forms.build`` decides what goes in which cell (the layout the reader relies on); this module only
dresses those cells: the interface texts in both languages, the yellow "type here" fill and the
grey prefilled one, each answer's help text (which also spells out the options, for clients that
drop dropdowns), its data validation, row heights that fit wrapped text, and the print setup.
Nothing here changes where an answer is, so the reader never needs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, PatternFill, Protection, Side
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from service.forms.model import Field, Item
from service.models import Language

DATE_FORMAT = "DD.MM.YYYY"
WIDTHS = {"A": 14, "B": 44, "C": 30, "D": 48, "E": 22, "F": 14}

#: the sheets' own words (headings, hints, validation errors), by language
UI: dict[Language, dict[str, str]] = {
    "nb": {
        "question": "Spørsmål  (* = må fylles ut)",
        "answer": "Svar",
        "help": "Hjelp",
        "deadline": "Svarfrist",
        "unit": "Enhet",
        "keep": "Ikke endre koden: den knytter svaret til enheten.",
        "where": "Svarene skrives i de gule feltene i arkfanen «{sheet}».",
        "options": "Alternativer",
        "tick": "Velg «Ja» ved hvert alternativ som passer.",
        "date": "Skriv datoen som DD.MM.ÅÅÅÅ, for eksempel 16.12.2020.",
        "bad": "Ugyldig svar",
        "pick": "Velg et alternativ fra listen.",
        "whole": "Skriv et heltall fra {lo} til {hi}.",
        "long": "Høyst {n} tegn.",
        "months": "januar februar mars april mai juni juli august september oktober november desember",
    },
    "en": {
        "question": "Question  (* = required)",
        "answer": "Answer",
        "help": "Help",
        "deadline": "Deadline",
        "unit": "Unit",
        "keep": "Do not change the code: it links your reply to your unit.",
        "where": "Write your answers in the yellow cells on the “{sheet}” tab.",
        "options": "Options",
        "tick": "Choose “Yes” next to each option that applies.",
        "date": "Write the date as DD.MM.YYYY, for example 16.12.2020.",
        "bad": "Invalid answer",
        "pick": "Choose an option from the list.",
        "whole": "Write a whole number from {lo} to {hi}.",
        "long": "At most {n} characters.",
        "months": "January February March April May June July August September October November December",
    },
}

_THIN = Side(style="thin", color="808080")
BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
ANSWER_FILL = PatternFill("solid", fgColor="FFF6CC")  # yellow: "type here"
FILLED_FILL = PatternFill("solid", fgColor="E7E6E6")  # grey: prefilled, locked
HEAD_FILL = PatternFill("solid", fgColor="1F4E79")
SUB_FILL = PatternFill("solid", fgColor="DDEBF7")
WRAP = Alignment(wrap_text=True, vertical="top")
UNLOCKED = Protection(locked=False)
_ADDRESS = re.compile(r"https?://\S+")


def style_answer(cell: Cell, item: Item) -> None:
    """The number format of an answer cell, by the item's type."""
    if item.type == "date":
        cell.number_format = DATE_FORMAT
    elif item.type in ("text", "longtext"):
        cell.number_format = "@"  # keep "0123" and "2020/1" as typed


def help_text(item: Item, lang: Language) -> str:
    """The help column text: the help, plus the options spelled out for clients without dropdowns."""
    ui = UI[lang]
    parts = [item.help.get(lang)] if item.help else []
    if item.type == "date":
        parts.append(ui["date"])
    if item.type == "choice":
        parts.append(f"{ui['options']}: " + " · ".join(c.label.get(lang) for c in item.options))
    if item.type == "multichoice":
        parts.append(ui["tick"])
    for col in item.columns if isinstance(item, Field) else ():
        # a table's help cell speaks for its columns too: dropdowns and input messages may be lost
        if col.type == "choice":
            parts.append(f"{col.label.get(lang)}: " + " · ".join(o.label.get(lang) for o in col.options))
        elif col.help:
            parts.append(f"{col.label.get(lang)}: {col.help.get(lang)}")
    return "\n".join(parts)


def validation(item: Item, lang: Language, items: list[str] | None = None) -> DataValidation:
    """A dropdown (choice-like) or a typed check, always carrying the help as input message."""
    ui = UI[lang]
    # a link cannot be clicked in an input message, and would spend its 255 characters: the help
    # cell beside the answer shows it
    prompt = "\n".join(line for line in help_text(item, lang).split("\n") if not is_address(line))
    kw: dict[str, object] = {}
    if items is None and item.type in ("choice", "yesno"):
        items = [c.label.get(lang) for c in item.options]
    elif items is None and item.type == "scale":
        items = [str(n) for n in range(int(str(item.min)), int(str(item.max)) + 1)]
    if items is not None:
        kw = {"type": "list", "formula1": '"' + ",".join(items) + '"', "error": ui["pick"]}
    elif item.type == "integer" and item.min is not None and item.max is not None:
        kw = {
            "type": "whole",
            "operator": "between",
            "formula1": str(item.min),
            "formula2": str(item.max),
            "error": ui["whole"].format(lo=item.min, hi=item.max),
        }
    elif item.type in ("text", "longtext") and item.max_length:
        kw = {
            "type": "textLength",
            "operator": "lessThanOrEqual",
            "formula1": str(item.max_length),
            "error": ui["long"].format(n=item.max_length),
        }
    # Excel refuses files whose input message exceeds 255 characters or its title 32
    return DataValidation(
        allow_blank=True,
        showInputMessage=bool(prompt),
        promptTitle=_cut(item.label.get(lang), 32),
        prompt=_cut(prompt, 250),
        showErrorMessage="error" in kw,
        errorTitle=ui["bad"],
        **kw,
    )


def is_address(text: str) -> bool:
    """Whether ``text`` is a web address alone (a line or paragraph that is a link)."""
    return _ADDRESS.fullmatch(text) is not None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def wrapped_lines(texts: Iterable[tuple[object, float]], minimum: int = 1) -> int:
    """How many lines the tallest of ``texts`` (text, column width) takes when wrapped."""
    lines = minimum
    for text, width in texts:
        if isinstance(text, str) and text:
            # ~1.1 characters of body text per unit of column width
            lines = max(lines, sum(max(1, math.ceil(len(p) / (width * 1.1))) for p in text.split("\n")))
    return lines


def line_height(lines: int) -> float:
    """The height in points of a row showing ``lines`` lines of body text."""
    return 15 * lines + 2 if lines > 1 else 15


def fit_height(ws: Worksheet, row: int, texts: Iterable[tuple[object, float]], minimum: int = 1) -> None:
    """Set a row tall enough for its wrapped text; Google Sheets and Numbers do not autofit."""
    lines = wrapped_lines(texts, minimum)
    if lines > 1:
        ws.row_dimensions[row].height = line_height(lines)


def print_setup(ws: Worksheet, area: str) -> None:
    """Print ``area`` on A4 portrait, one page wide, without gridlines, with narrow margins."""
    ws.print_area = area
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = "portrait"
    ws.page_margins.left = ws.page_margins.right = 0.6  # inches
    ws.page_margins.top = ws.page_margins.bottom = 0.75
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.gridLines = False
