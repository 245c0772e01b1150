"""The workbook's sheets as values, and the only writer of the .xlsx (xlsxwriter).

Three kinds of sheet: a ``Sheet`` is a table (a header row, then typed rows, maybe a bold total
and a bar chart beside it); a ``Report`` is a title, the "as of" line and blocks of counts (the
answer summary); ``Charts`` draws some of a report's blocks. Rows are lazy iterables, written in
``constant_memory`` mode, so 10,000 units never sit in memory at once.

Every ``str`` goes through ``write_string``, so nothing a leader typed (``=HYPERLINK(...)``,
``+47…``, ``@x``) can ever become a formula; such cells also carry Excel's quote prefix, so editing
keeps them text. A percent cell holds the whole percent of ``models.share_percent`` (66, shown
"66 %"), and a chart's labels show that same number.

Print: every sheet is landscape A4, fitted to its width and repeating its header rows. A sheet
too wide to stay readable on one page (Svar, Mangler) is fitted to a few pages across instead,
repeating its first columns on each. Page breaks fall between a report's blocks and between rows
of charts, so no table of counts and no chart is cut in two.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]

Value = str | int | float | dt.date | dt.datetime | None
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PERCENT = '0" %"'  # a whole percent (66 -> "66 %"): the cell holds share_percent's number
COUNT_LABEL = "0;-0;;@"  # a chart's count labels: zeros left out, so a stacked bar stays legible

# The page, in the units xlsxwriter and Excel lay out in: A4 landscape with narrow margins,
# 96 px an inch, rows of 15 pt (20 px). Fitting to width only ever shrinks, so a page holds at
# least what it holds at 100 %: the breaks below are placed for 100 %.
A4 = 9
MARGIN_SIDE, MARGIN_TOP = 0.4, 0.6  # inches
PAGE_PX = int((11.69 - 2 * MARGIN_SIDE) * 96)  # printable width, 1045 px
PAGE_PT = (8.27 - 2 * MARGIN_TOP) * 72  # printable height, 509 pt
ROW_PT = 15
TITLE_PT = 22
MIN_SCALE = 0.55  # below this a printed sheet is unreadable: use more pages across instead
FOOTER = "&L&A&RSide &P av &N"
OVERVIEW_CHART_W = 520  # px
# a bar chart's categories top down in the table's order, the value axis still below them
TOP_DOWN = {"reverse": True, "crossing": "max"}


@dataclass(frozen=True)
class Col:
    title: str
    width: float = 14
    percent: bool = False  # the cells hold a whole percent (``models.share_percent``)


@dataclass(frozen=True)
class Sheet:
    """A table: a header row, then rows, maybe a bold total and a bar chart over one column."""

    name: str
    columns: tuple[Col, ...]
    rows: Iterable[Sequence[Value]]
    total: Sequence[Value] | None = None  # a bold last row, outside the filter
    chart: tuple[str, int] | None = None  # (title, column) of a bar chart of percents
    key_columns: int = 1  # repeated at the left of every page when the sheet is printed wider


@dataclass(frozen=True)
class Block:
    """One question's counts: a heading, a header row (answer, faculties, total, share), rows."""

    key: str  # field id, or "table.column"
    title: str
    note: str
    header: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]
    stacked: bool = True  # per faculty, one bar each; False: one bar per answer, of the totals


@dataclass(frozen=True)
class Report:
    """A titled sheet of blocks of counts; ``columns`` gives the widths and which is a percent."""

    name: str
    title: str
    subtitle: str
    columns: tuple[Col, ...]
    blocks: tuple[Block, ...]

    @property
    def rows(self) -> Iterator[tuple[Value, ...]]:
        """Every cell row, as laid out (for readers that want the values without a writer)."""
        for row in _report_layout(self)[0]:
            yield row.values


@dataclass(frozen=True)
class Charts:
    """Charts of some blocks of the report called ``source``, two to a row."""

    name: str
    title: str
    subtitle: str
    source: str
    keys: tuple[str, ...]
    columns: tuple[Col, ...] = ()
    rows: tuple[tuple[Value, ...], ...] = ()


Page = Sheet | Report | Charts


def write_xlsx(book_sheets: Iterable[Page], path: Path) -> dict[str, int]:
    """Write the sheets to ``path`` (atomically); returns per sheet its data rows (a report: its
    blocks; charts: how many)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    wb = xlsxwriter.Workbook(
        str(tmp),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    styles = _Styles(wb)
    counts: dict[str, int] = {}
    reports: dict[str, dict[str, tuple[Block, int]]] = {}  # report -> key -> (block, header row)
    try:
        for sheet in book_sheets:
            ws = wb.add_worksheet(sheet.name)
            if isinstance(sheet, Sheet):
                counts[sheet.name] = _write_sheet(wb, ws, sheet, styles)
            elif isinstance(sheet, Report):
                reports[sheet.name] = _write_report(ws, sheet, styles)
                counts[sheet.name] = len(sheet.blocks)
            else:
                counts[sheet.name] = _write_charts(wb, ws, sheet, reports.get(sheet.source, {}), styles)
        wb.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return counts


class _Styles:
    def __init__(self, wb: Any) -> None:
        look = {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True, "valign": "top"}
        self.header = wb.add_format(look)
        self.header_num = wb.add_format({**look, "align": "right"})  # over a column of numbers
        self.guarded = wb.add_format({"quote_prefix": True})
        self.date = wb.add_format({"num_format": "dd.mm.yyyy"})
        self.stamp = wb.add_format({"num_format": "dd.mm.yyyy hh:mm"})
        self.pct = wb.add_format({"num_format": PERCENT})
        self.total = {
            k: wb.add_format({"bold": True, "top": 1, **({"num_format": PERCENT} if k else {})})
            for k in (False, True)
        }
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.heading = wb.add_format({"bold": True, "font_size": 12})
        self.note = wb.add_format({"italic": True, "font_color": "#595959"})


def _print_setup(ws: Any, width_px: int, *, title_rows: int, key_columns: int = 1) -> int:
    """Landscape A4, fitted to the width, the first ``title_rows`` rows on every page; returns
    the pages across (more than one only where one would shrink the text below ``MIN_SCALE``)."""
    ws.set_landscape()
    ws.set_paper(A4)
    ws.set_margins(left=MARGIN_SIDE, right=MARGIN_SIDE, top=MARGIN_TOP, bottom=MARGIN_TOP)
    ws.set_footer(FOOTER)
    ws.repeat_rows(0, title_rows - 1)
    across = max(1, math.ceil(width_px * MIN_SCALE / PAGE_PX - 1e-9))
    if across > 1:
        ws.repeat_columns(0, key_columns - 1)
    ws.fit_to_pages(across, 0)  # 0: as many pages down as it takes
    return across


def _px(width: float) -> int:
    """A column's width in pixels, as Excel draws a width in characters of Calibri 11."""
    return int(width * 7 + 5)


def _write_sheet(wb: Any, ws: Any, sheet: Sheet, st: _Styles) -> int:
    cols = sheet.columns
    # a question as a header wraps: the row is as tall as the longest needs (up to four lines),
    # since no reader is sure to grow it on opening (constant_memory writes each row once)
    lines = max((math.ceil(len(col.title) / max(col.width - 2, 1)) for col in cols), default=1)
    ws.set_row(0, ROW_PT * min(max(lines, 1), 4))
    for c, col in enumerate(cols):
        ws.set_column(c, c, col.width, st.pct if col.percent else None)
        ws.write_string(0, c, col.title, st.header)
    ws.freeze_panes(1, 0)
    width = sum(_px(c.width) for c in cols)
    if sheet.chart:
        width += _px(8.43) + OVERVIEW_CHART_W  # one empty column, then the chart
    _print_setup(ws, width, title_rows=1, key_columns=sheet.key_columns)
    r = 0
    for r, row in enumerate(sheet.rows, start=1):
        _write_row(ws, r, row, cols, st)
    ws.autofilter(0, 0, max(r, 1), len(cols) - 1)
    if sheet.total is not None:
        for c, value in enumerate(sheet.total):
            style = st.total[cols[c].percent]
            if isinstance(value, str):
                ws.write_string(r + 1, c, value, style)
            elif value is not None:
                ws.write_number(r + 1, c, value, style)
    if sheet.chart and r:
        title, column = sheet.chart
        chart = wb.add_chart({"type": "bar"})
        chart.add_series(
            {
                "name": title,
                "categories": [sheet.name, 1, 0, r, 0],
                "values": [sheet.name, 1, column, r, column],
                "data_labels": {"value": True, "num_format": PERCENT},
            }
        )
        chart.set_title({"name": title, "name_font": {"size": 12}})
        chart.set_legend({"none": True})
        chart.set_x_axis({"min": 0, "max": 100, "major_unit": 20, "num_format": PERCENT})
        chart.set_y_axis(TOP_DOWN)
        chart.set_size({"width": OVERVIEW_CHART_W, "height": max(300, 80 + 28 * r)})
        ws.insert_chart(1, len(cols) + 1, chart)
    return r


def _write_row(ws: Any, r: int, row: Sequence[Value], columns: Sequence[Col], st: _Styles) -> None:
    for c, value in enumerate(row):
        if value is None:
            continue
        if isinstance(value, str):  # always text, whatever it starts with
            ws.write_string(r, c, value, st.guarded if value.startswith(FORMULA_START) else None)
        elif isinstance(value, bool):
            ws.write_string(r, c, "ja" if value else "nei")
        elif isinstance(value, int | float):
            ws.write_number(r, c, value, st.pct if columns[c].percent else None)
        elif isinstance(value, dt.datetime):
            ws.write_datetime(r, c, value, st.stamp)
        else:
            ws.write_datetime(r, c, value, st.date)


# -- the report: blocks of counts ---------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    kind: str  # title, subtitle, heading, note, header, data, blank
    values: tuple[Value, ...]


REPORT_TITLE_ROWS = 2  # the title and the "as of" line, on every printed page
# rows a page holds below the repeated title rows, at 100 %, one kept spare
PAGE_ROWS = int((PAGE_PT - TITLE_PT - ROW_PT) // ROW_PT) - 1


def _report_layout(report: Report) -> tuple[list[_Line], dict[str, int], list[int]]:
    """The report's lines in order; the row of each block's header; the rows that start a page
    (a block that would not fit below the one before starts a page of its own)."""
    lines = [_Line("title", (report.title,)), _Line("subtitle", (report.subtitle,)), _Line("blank", ())]
    headers: dict[str, int] = {}
    breaks: list[int] = []
    used = 1  # rows used on this page below the title rows
    for block in report.blocks:
        height = 3 + bool(block.note) + len(block.rows)
        if used + height > PAGE_ROWS and used > 0:
            breaks.append(len(lines))
            used = 0
        lines.append(_Line("heading", (block.title,)))
        if block.note:
            lines.append(_Line("note", (block.note,)))
        headers[block.key] = len(lines)
        lines.append(_Line("header", block.header))
        lines += [_Line("data", row) for row in block.rows]
        lines.append(_Line("blank", ()))
        used += height
    return lines, headers, breaks


def _write_report(ws: Any, report: Report, st: _Styles) -> dict[str, tuple[Block, int]]:
    for c, col in enumerate(report.columns):
        ws.set_column(c, c, col.width)
    _print_setup(ws, sum(_px(c.width) for c in report.columns), title_rows=REPORT_TITLE_ROWS)
    ws.set_default_row(ROW_PT)  # stated, not left to the reader's font: the page breaks count rows
    lines, headers, breaks = _report_layout(report)
    ws.set_h_pagebreaks(breaks)
    ws.freeze_panes(REPORT_TITLE_ROWS, 0)
    for r, line in enumerate(lines):
        if line.kind == "data":
            _write_row(ws, r, line.values, report.columns, st)
            continue
        style = {"title": st.title, "heading": st.heading, "note": st.note, "header": st.header}.get(
            line.kind
        )
        if line.kind == "title":
            ws.set_row(r, TITLE_PT)
        for c, value in enumerate(line.values):
            ws.write_string(r, c, str(value or ""), st.header_num if c and line.kind == "header" else style)
    return {b.key: (b, headers[b.key]) for b in report.blocks}


# -- charts of a report's blocks ----------------------------------------------------------------

CHART_W, CHART_H = 500, 260  # px; two across fill the page's width
CHART_ROWS = 14  # the rows one row of charts takes, a gap included (260 px = 13 rows of 20 px)
CHART_COL = 8  # the second chart of a row starts in this column (8 * 64 px = 512 px)


def _write_charts(wb: Any, ws: Any, charts: Charts, blocks: dict[str, tuple[Block, int]], st: _Styles) -> int:
    _print_setup(ws, 2 * CHART_COL * _px(8.43), title_rows=REPORT_TITLE_ROWS)
    ws.set_default_row(ROW_PT)  # the charts are anchored to rows: the same size everywhere
    ws.set_row(0, TITLE_PT)
    ws.write_string(0, 0, charts.title, st.title)
    ws.write_string(1, 0, charts.subtitle)
    keys = [k for k in charts.keys if k in blocks and len(blocks[k][0].header) > 3]  # a faculty to draw
    per_page = max(1, PAGE_ROWS // CHART_ROWS)  # rows of charts a page holds
    first = REPORT_TITLE_ROWS + 1
    ws.set_h_pagebreaks([first + n * CHART_ROWS for n in range(per_page, (len(keys) + 1) // 2, per_page)])
    for n, key in enumerate(keys):
        block, header = blocks[key]
        chart = _chart(wb, charts.source, block, header)
        at = (first + (n // 2) * CHART_ROWS, (n % 2) * CHART_COL)
        ws.insert_chart(*at, chart, {"x_offset": 4, "y_offset": 6})  # inside its band, off the break
    return len(keys)


def _chart(wb: Any, source: str, block: Block, header: int) -> Any:
    """A bar chart of one block: per faculty, its answers stacked (a unit gives one answer), or
    one bar per answer with its total (a unit may tick several)."""
    first, last = header + 1, header + len(block.rows)
    n_faculties = len(block.header) - 3  # answer, faculties..., total, share
    if block.stacked:
        chart = wb.add_chart({"type": "bar", "subtype": "stacked"})
        for r in range(first, last + 1):
            chart.add_series(
                {
                    "name": [source, r, 0],
                    "categories": [source, header, 1, header, n_faculties],
                    "values": [source, r, 1, r, n_faculties],
                    "data_labels": {"value": True, "num_format": COUNT_LABEL},
                    "gap": 60,
                }
            )
        chart.set_legend({"position": "bottom", "font": {"size": 8}})
    else:
        total = n_faculties + 1
        chart = wb.add_chart({"type": "bar"})
        chart.add_series(
            {
                "name": block.header[total],
                "categories": [source, first, 0, last, 0],
                "values": [source, first, total, last, total],
                "data_labels": {"value": True},
                "gap": 60,
            }
        )
        chart.set_legend({"none": True})
    chart.set_title({"name": block.title, "name_font": {"size": 10}})
    chart.set_y_axis({**TOP_DOWN, "num_font": {"size": 8}})
    chart.set_x_axis({"min": 0, "num_format": "0", "num_font": {"size": 8}})
    chart.set_size({"width": CHART_W, "height": CHART_H})
    return chart
