"""Reading a filled form: the openpyxl loader (before) against the direct zip+XML reader (now).

Two files with the same answers: the personalised form built by formbook and filled with
openpyxl (openpyxl writes inline strings), and the same form typed into LibreOffice through
tests/harness/lo_fill.py (shared strings, LibreOffice's styles; skipped without soffice and python3-uno).
"old" is formread's previous loader - openpyxl ``load_workbook(read_only=True, data_only=True)``
- feeding the same interpreter; "new" is ``read_form`` as it is. Both readings must be equal.
Goal: <= 3 ms per read. Figures only: nothing here asserts on time.

The inbox first opens each attachment (``intake.open_attachment``: zip checks, every member
unpacked and DTD-checked), then reads it. The second table times that whole path per reply:
"two passes" hands the reader only the bytes (it unzips and parses them again, as the inbox
did), "one pass" hands it intake's opened workbook too (``read_form(..., workbook=)``, as the
inbox does now).

Run: .venv/bin/python bench/form_read.py [READS_PER_ROUND]
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

import openpyxl

from service.forms import read as formread
from service.forms.build import build_form
from service.forms.definition import load_form
from service.forms.intake import Limits, Spreadsheet, open_attachment
from service.forms.model import ANSWER_COL, LABEL_COL, SHEET_NAMES, option_key, row_key, sheet_layout
from service.models import Unit

ROOT = Path(__file__).parent.parent
FORM = ROOT / "forms" / "oppsummering-og-evaluering.toml"
UNIT = Unit(
    "IE-IDI", "Institutt for datateknologi og informatikk", "IE", "Kari Nordmann", "kari@example.test", "nb"
)
ROUNDS = 15
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def typed_answers(form):
    """{coordinate: value} filling every answer cell plausibly, by field type."""
    layout, out = sheet_layout(form), {}

    def value(item, n=0):
        if item.type in ("choice", "yesno"):
            return item.options[n % len(item.options)].label.nb
        return {
            "integer": 23 + n,
            "scale": 4,
            "date": datetime.date(2020, 11, 3 + n),
            "longtext": f"Høy arbeidsbelastning {n}.\nFå møteplasser – «ærlig» & <greit>.",
        }.get(item.type, f"Åsmund Ærø-Øye {n}")

    for f in form.fields():
        if f.source:
            continue
        if f.type == "multichoice":
            for c in f.options[:2]:
                out[f"C{layout[option_key(f.id, c.value)]}"] = "Ja"
        elif f.type == "table":
            for n in range(1, 4):
                for k, col in enumerate(f.columns):
                    out[f"{chr(64 + LABEL_COL + k)}{layout[row_key(f.id, n)]}"] = value(col, n)
        else:
            out[f"{chr(64 + ANSWER_COL)}{layout[f.id]}"] = value(f)
    return out


def saved_by_openpyxl(blank, typed):
    wb = openpyxl.load_workbook(BytesIO(blank))
    ws = wb[SHEET_NAMES["nb"][1]]
    for coordinate, value in typed.items():
        ws[coordinate] = value
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def saved_by_libreoffice(blank, typed):
    """The same answers typed into LibreOffice (nb-NO), or None when it cannot run here."""
    if shutil.which("soffice") is None or not Path("/usr/bin/python3").exists():
        return None
    work = Path(tempfile.mkdtemp(prefix="bench-lo-", dir="/tmp"))
    try:
        work.chmod(0o755)
        cells = {
            f"{SHEET_NAMES['nb'][1]}!{k}": v.strftime("%d.%m.%Y") if isinstance(v, datetime.date) else str(v)
            for k, v in typed.items()
        }
        (work / "form.xlsx").write_bytes(blank)
        (work / "cells.json").write_text(json.dumps(cells, ensure_ascii=False), encoding="utf-8")
        done = subprocess.run(
            [
                "/usr/bin/python3",
                str(ROOT / "tests" / "harness" / "lo_fill.py"),
                str(work / "form.xlsx"),
                str(work / "filled.xlsx"),
                str(work / "cells.json"),
                str(work),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env=dict(os.environ, LO_FILL_LOCALE="nb-NO"),
        )
        if done.returncode != 0:
            print(f"(LibreOffice fill failed: {done.stderr.strip()[-300:]})")
            return None
        return (work / "filled.xlsx").read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def openpyxl_book(data):
    """formread's previous loader (openpyxl, read-only, cached values), giving the same _Book."""
    wb = openpyxl.load_workbook(BytesIO(data), read_only=True, data_only=True)
    try:
        sheets = {ws.title: ws for ws in wb.worksheets}
        names = {}
        for scope in [wb.defined_names] + [ws.defined_names for ws in sheets.values()]:
            for name, dn in scope.items():
                parsed = formread._parse_name(str(dn.attr_text or ""))
                if parsed is not None and name.lower().startswith(formread.NAME_PREFIX):
                    names.setdefault(name.lower(), parsed)
        known = {SHEET_NAMES[lang][1] for lang in ("nb", "en")}
        title = next((t for t in sheets if t in known), None)
        if title is None:
            pointed = [v[0] for v in names.values() if isinstance(v, tuple) and v[0] in sheets]
            visible = [t for t in sheets if t != formread.META_SHEET]
            title = pointed[0] if pointed else visible[min(1, len(visible) - 1)]
        grid = list(
            sheets[title].iter_rows(
                min_row=1, max_row=formread.MAX_ROWS, max_col=formread.MAX_COLS, values_only=True
            )
        )
        meta = {}
        for row in (
            sheets[formread.META_SHEET].iter_rows(min_row=1, max_row=50, max_col=2, values_only=True)
            if formread.META_SHEET in sheets
            else ()
        ):
            if isinstance(row[0], str):
                meta[row[0]] = row[1]
        cells = {(r, c): v for r, row in enumerate(grid, 1) for c, v in enumerate(row, 1) if v is not None}
        return formread._Book(title, cells, len(grid), meta, names)
    finally:
        wb.close()


def old_read(data, form):
    return formread._Interpreter(openpyxl_book(data), form, None).read()


def intake_then_read(data, form, reuse):
    """The inbox's path for one attachment: open it, then read the form from it."""
    opened = open_attachment("skjema.xlsx", XLSX, data, Limits())
    assert isinstance(opened, Spreadsheet), opened
    return formread.read_form(opened.xlsx, form, workbook=opened.workbook if reuse else None)


def timed(fn, reads):
    """ms per call: median and best of ROUNDS rounds of ``reads`` calls (this host is noisy)."""
    fn()
    rounds = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        for _ in range(reads):
            fn()
        rounds.append((time.perf_counter() - t) * 1000 / reads)
    return statistics.median(rounds), min(rounds)


def main(reads=100):
    form = load_form(FORM)
    blank = build_form(
        form,
        UNIT,
        lang="nb",
        reference="KQ7M-3XWD",
        stamp="st1.SUUtSURJ.c2ln",
        campaign_title="ARK 2020",
        deadline=datetime.date(2020, 12, 16),
    )
    typed = typed_answers(form)
    files = {
        "saved by openpyxl": saved_by_openpyxl(blank, typed),
        "saved by LibreOffice": saved_by_libreoffice(blank, typed),
    }
    print(
        f"form {form.id}: {len(typed)} answer cells typed; ms per read, median of {ROUNDS} "
        f"rounds x {reads} reads (best)"
    )
    print(f"{'file':<22}{'bytes':>7}  {'openpyxl (old)':>15}  {'direct (new)':>14}  {'speed-up':>8}")
    for label, data in files.items():
        if data is None:
            print(f"{label:<22}  skipped: LibreOffice (soffice + /usr/bin/python3 uno) not available")
            continue
        new, old = formread.read_form(data, form), old_read(data, form)
        assert new == old, f"{label}: the readings differ"
        assert new.problems == [] and len(new.answers) == len(form.fields()), new.problems
        o, n = (
            timed(lambda d=data: old_read(d, form), reads),
            timed(lambda d=data: formread.read_form(d, form), reads),
        )
        print(
            f"{label:<22}{len(data):>7}  {o[0]:>7.2f} ({o[1]:.2f})  {n[0]:>6.2f} ({n[1]:.2f})  "
            f"{o[0] / n[0]:>7.1f}x"
        )
    print("readings identical (old == new) and complete, without problems, for every file read")
    print(f"\nintake + read per reply, ms, median of {ROUNDS} rounds x {reads} replies (best)")
    print(f"{'file':<22}{'bytes':>7}  {'two passes':>15}  {'one pass':>14}  {'saved':>8}")
    for label, data in files.items():
        if data is None:
            continue
        assert intake_then_read(data, form, True) == intake_then_read(data, form, False)
        two, one = (
            timed(lambda d=data, r=reuse: intake_then_read(d, form, r), reads) for reuse in (False, True)
        )
        print(
            f"{label:<22}{len(data):>7}  {two[0]:>7.2f} ({two[1]:.2f})  {one[0]:>6.2f} ({one[1]:.2f})  "
            f"{1 - one[0] / two[0]:>7.0%}"
        )
    print("readings identical with and without intake's workbook")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
