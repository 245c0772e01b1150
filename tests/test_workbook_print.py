"""The master workbook on paper: every sheet landscape A4, fitted to its width, its header rows on
every page; page breaks between the summary's blocks; and, printed by LibreOffice, the overview's
chart whole on the overview's one page and each chart of «Diagrammer» whole on its page."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import openpyxl
import pytest
from harness.filling import shipped_form, valid_answers
from harness.website import submit
from projects import new_project
from pypdf import PdfReader

from service.app.wiring import App
from service.config import settings as config_mod
from service.jobs import summary

ONE_PAGE_WIDE = ("Oversikt", "Oppsummering", "Diagrammer", "Tiltak", "Flagg")
TITLE_ROWS = {"Oppsummering": "$1:$2", "Diagrammer": "$1:$2"}  # the others: their header row


@pytest.fixture
def compiled(tmp_path: Path) -> Path:
    """The demo's shape: 20 units over three faculties, 16 with a valid form, 1–3 measures each."""
    p = new_project(tmp_path, n_units=20)
    p.setup()
    app = App(config_mod.load(p.config, p.env))
    for n, unit in enumerate(p.units[:16]):
        answers = valid_answers(n)
        answers["tiltak"] = answers["tiltak"] * (1 + n % 3)
        submit(app, n + 1, unit.code, answers, True)
    app.close()
    out = tmp_path / "book.xlsx"
    result = p.cli("--as-of", "2020-12-16T14:00", "compile", "-o", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_every_sheet_prints_landscape_fitted_to_its_width_with_its_header_rows(compiled):
    """Landscape A4, fit to width (as many pages down as it takes), the header rows repeated; a
    sheet too wide for one readable page repeats its key columns on each page across."""
    wb = openpyxl.load_workbook(compiled)
    for ws in wb:
        setup = ws.page_setup
        assert setup.orientation == "landscape" and int(setup.paperSize) == 9, ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert int(setup.fitToHeight) == 0, ws.title  # the height is free: fitted to the width only
        across = int(setup.fitToWidth or 1)
        assert across == 1 if ws.title in ONE_PAGE_WIDE else across >= 1, ws.title
        assert ws.print_title_rows == TITLE_ROWS.get(ws.title, "$1:$1"), ws.title
        assert (ws.print_title_cols is not None) == (across > 1), ws.title
        assert "&P" in ws.oddFooter.right.text, ws.title  # page numbers


def test_the_summary_breaks_pages_between_blocks(compiled):
    """Each page of «Oppsummering» starts with a block's title, after a blank row: no table of
    counts is cut in two."""
    ws = openpyxl.load_workbook(compiled)["Oppsummering"]
    rows = [r[0] for r in ws.iter_rows(values_only=True)]
    breaks = [b.id for b in ws.row_breaks.brk]
    assert breaks, "a summary of every question is longer than a page"
    titles = {rows[i - 2] for i, v in enumerate(rows) if v == "Svar"}
    for row in breaks:  # a break's id is the 0-based row that starts the next page
        assert rows[row] in titles and rows[row - 1] is None, row


@pytest.mark.libreoffice
def test_libreoffice_prints_each_chart_whole_on_far_fewer_pages(compiled, lo_workdir):
    """LibreOffice prints the workbook to far fewer pages than the 36 it took before; the overview
    (table and chart) is one page and «Diagrammer» is one page per four charts."""
    env = {**os.environ, "HOME": str(lo_workdir)}
    done = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{lo_workdir}/profile",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(lo_workdir),
            str(compiled),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pages = PdfReader(lo_workdir / "book.pdf").pages
    sheets: dict[str, int] = {}
    for page in pages:  # the footer names the sheet: "Oversikt … Side 1 av 18"
        footer = [line for line in page.extract_text().splitlines() if " av " in line and "Side" in line]
        assert footer, page.extract_text()[-200:]
        name = footer[-1].split()[0]
        sheets[name] = sheets.get(name, 0) + 1
    wb = openpyxl.load_workbook(compiled)
    assert list(sheets) == wb.sheetnames
    assert len(pages) <= 24, sheets
    assert sheets["Oversikt"] == 1
    form = shipped_form()
    keys = {f.id for f in form.fields()} | {f"{f.id}.{c.id}" for f in form.fields() for c in f.columns}
    charts = sum(1 for k in summary.CHARTED if k in keys)
    assert sheets["Diagrammer"] == math.ceil(charts / 4), sheets
