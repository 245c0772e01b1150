"""The workbook's answer summary («Oppsummering», «Diagrammer») checked against the stored answers,
and the one rounding rule that every surface shows a share by."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from harness.filling import shipped_form, valid_answers
from harness.website import submit
from projects import new_project

from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.forms.model import Choice, Column, Field, Item, Text
from service.jobs import digest, summary
from service.jobs.xlsxout import PERCENT
from service.models import share_percent
from service.web.users import WebUser
from service.web.views import Views

FORM = shipped_form()
COUNTED = ("choice", "yesno", "multichoice", "scale")
AS_OF = "2020-12-16T14:00"  # local time


def _answers(n: int) -> dict[str, object]:
    """Valid answers that differ from unit to unit in every counted question."""
    a = valid_answers(n)
    a["losam_involvert"] = ("yes", "no", "not_relevant")[n % 3]
    a["handlingsplan_ephorte"] = ("yes", "no", "in_progress", "yes")[n % 4]
    a["hjelp_onsket"] = [("ingen",), ("koordinator", "bht"), ("hr_hms",), ("koordinator",)][n % 4]
    statuses = ("nytt", "viderefort", "gjennomfort", "evaluert")
    a["tiltak"] = [
        {
            **valid_answers(n)["tiltak"][0],
            "status": statuses[(n + k) % 4],
            "tema": "ledelse" if k else "annet",
        }
        for k in range(1 + n % 3)
    ]
    if n % 5 == 0:
        del a["moteform"]  # unanswered: counted as «Ikke besvart»
    return a


@pytest.fixture
def answered(tmp_path: Path):
    """Twelve units over IE/NV/HF: ten with a valid form (IE-U000 sent a second valid one, NV-U001
    a newer invalid one after its valid one), HF-U011's only form invalid, and one unit silent."""
    p = new_project(tmp_path, n_units=12)
    p.setup()
    app = App(config_mod.load(p.config, p.env))
    for n, unit in enumerate(p.units[:10]):
        submit(app, n + 1, unit.code, _answers(n), True)
    submit(app, 20, "IE-U000", _answers(7), True)  # IE-U000's newest valid version: counted
    submit(app, 21, "NV-U001", {"antall_ansatte": "mange"}, False)  # newer, invalid: not counted
    submit(app, 22, "HF-U011", {"forlop": "avbrutt"}, False)
    app.close()
    return p


def _compile(p, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "book.xlsx"
    result = p.cli("--as-of", AS_OF, "compile", "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    return out


def _blocks(ws) -> dict[str, tuple[list[str], dict[str, tuple]]]:
    """{block title: (faculties, {answer: (counts per faculty..., total, share)})} read off the
    sheet: a header row starts with "Svar" (or is the basis block's), its title two rows up."""
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    out = {}
    for i, row in enumerate(rows):
        if row and row[0] in ("Svar", "", "Bekreftelse") and row[-2:] == ("Totalt", "Andel"):
            title = rows[i - 2][0]
            lines = {}
            for data in rows[i + 1 :]:
                if not data or data[0] is None:
                    break
                lines[data[0]] = data[1:]
            out[title] = (list(row[1:-2]), lines)
    return out


def _stored_current(p) -> list[tuple[str, dict]]:
    """(faculty, answers) of each unit's newest valid version, straight from the database."""
    newest: dict[str, tuple] = {}
    for code, faculty, received, valid, answers in p.query(
        "select u.code, u.faculty, s.received_at, s.valid, s.answers "
        "from submissions s join units u on u.id = s.unit_id"
    ):
        if valid and (code not in newest or str(received) > str(newest[code][0])):
            newest[code] = (received, faculty, answers)
    return [(f, json.loads(a) if isinstance(a, str) else a) for _, f, a in newest.values()]


def _questions() -> list[tuple[str, Item, str | None]]:
    """(block title, item, table id) of every question the summary must count, from the form."""
    out: list[tuple[str, Item, str | None]] = []
    for f in FORM.fields():
        if f.type == "table":
            out += [(f"{f.label.nb} – {c.label.nb}", c, f.id) for c in f.columns if c.type in COUNTED]
        elif f.type in COUNTED and f.must_be is None:
            out.append((f.label.nb, f, None))
    return out


def _label(item: Item, value: object) -> str:
    if value in (None, "", [], ()):
        return "Ikke besvart"
    return str(value) if item.type == "scale" else item.choice_label(str(value), "nb")


def test_the_summary_counts_are_the_stored_answers(answered, tmp_path):
    """Every counted question of the form has a block whose counts per faculty, total and share
    (rounded down) are the ones computed straight from each unit's newest valid stored answers."""
    wb = openpyxl.load_workbook(_compile(answered, tmp_path))
    assert wb.sheetnames[:3] == ["Oversikt", "Oppsummering", "Diagrammer"]
    ws = wb["Oppsummering"]
    assert "hva enhetene svarte" in ws["A1"].value
    assert ws["A2"].value.startswith("Per 16.12.2020 kl. 14:00 (Europe/Oslo).")
    blocks = _blocks(ws)
    stored = _stored_current(answered)
    assert len(stored) == 10
    faculties = ["HF", "IE", "NV"]

    basis = next(lines for title, (_, lines) in blocks.items() if title.startswith("Grunnlag"))
    forms = Counter(f for f, _ in stored)
    assert basis["Levert gyldig skjema"] == (*(forms[f] for f in faculties), 10, share_percent(10, 12))
    assert basis["Aktive enheter"][:4] == (4, 4, 4, 12)

    for title, item, table in _questions():
        assert title in blocks, title
        heads, lines = blocks[title]
        assert heads == faculties
        want: Counter[tuple[str, str]] = Counter()
        base = 0
        for faculty, answers in stored:
            values = (
                [row.get(item.id) for row in answers.get(table) or []] if table else [answers.get(item.id)]
            )
            for value in values:
                base += 1
                ticked = value if isinstance(value, list) and value else [value]
                for v in ticked:
                    want[(_label(item, v), faculty)] += 1
        for answer, (*per, total, share) in lines.items():
            assert per == [want[(answer, f)] for f in faculties], (title, answer)
            assert total == sum(per) and share == share_percent(total, base), (title, answer)
        assert {a for a, _ in want} <= set(lines), title
        options = (
            [str(n) for n in range(1, 6)] if item.type == "scale" else [c.label.nb for c in item.options]
        )
        assert list(lines)[: len(options)] == options, title  # every answer offered, in the form's order


def test_the_summary_reads_the_numbers_hr_asked_for(answered, tmp_path):
    """Spot checks in HR's words: help asked per kind counts units (a unit may tick several), and
    the measures are counted per row, not per unit."""
    blocks = _blocks(openpyxl.load_workbook(_compile(answered, tmp_path))["Oppsummering"])
    help_asked = FORM.field("hjelp_onsket")
    _, lines = blocks[help_asked.label.nb]
    # units 1, 3, 5, 7, 9 and IE-U000 (its newest version is variant 7) tick the coordinator
    assert lines[help_asked.choice_label("koordinator", "nb")][-2] == 6
    tiltak = FORM.field("tiltak")
    status = next(c for c in tiltak.columns if c.id == "status")
    _, lines = blocks[f"{tiltak.label.nb} – {status.label.nb}"]
    rows = sum(1 + n % 3 for n in (7, *range(1, 10)))
    assert sum(line[-2] for line in lines.values()) == rows


def test_a_question_added_to_the_form_gets_its_block(tmp_path):
    """Built from the definition: a yes/no question and a table column added to the form are
    counted without a change to the summary's code; a choice the form no longer offers still
    shows, under its stored value."""
    added = Field("planlagt_test", "yesno", Text("Ble prosessen planlagt?", "Was it planned?"))
    kind = Column("kind", "choice", Text("Art", "Kind"), choices=(Choice("a", Text("A", "A")),))
    sections = list(FORM.sections)
    tiltak = FORM.field("tiltak")
    sections[0] = dataclasses.replace(sections[0], fields=(*sections[0].fields, added))
    sections = [
        dataclasses.replace(
            s,
            fields=tuple(
                dataclasses.replace(f, columns=(*f.columns, kind)) if f.id == tiltak.id else f
                for f in s.fields
            ),
        )
        for s in sections
    ]
    form = dataclasses.replace(FORM, sections=tuple(sections))
    answered = [
        ("IE", {"planlagt_test": "yes", tiltak.id: [{"kind": "a"}, {"kind": "gone"}]}),
        ("NV", {"planlagt_test": "no"}),
        ("NV", {}),
    ]
    report = summary.report(form, answered, units={"IE": 1, "NV": 2}, title="T", subtitle="S")
    blocks = {b.title: b for b in report.blocks}
    assert blocks["Ble prosessen planlagt?"].rows == (
        ("Ja", 1, 0, 1, 33),
        ("Nei", 0, 1, 1, 33),
        ("Ikke besvart", 0, 1, 1, 33),
    )
    assert blocks[f"{tiltak.label.nb} – Art"].rows == (("A", 1, 0, 1, 50), ("gone", 1, 0, 1, 50))
    assert "bekreftet" not in {b.key for b in report.blocks}  # a required confirmation tells nothing


def test_the_charts_draw_hrs_questions(answered, tmp_path):
    """Diagrammer holds one chart per HR question the form has: per faculty stacked, the help
    asked for as totals; Oversikt keeps its chart of shares, labelled as the cells are."""
    path = _compile(answered, tmp_path)
    ids = {f.id for f in FORM.fields()} | {f"{f.id}.{c.id}" for f in FORM.fields() for c in f.columns}
    keys = [k for k in summary.CHARTED if k in ids]
    assert {"forlop", "fullt_forsvarlig", "hjelp_onsket", "tiltak.status"} <= set(keys)
    with zipfile.ZipFile(path) as z:
        charts = sorted(n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n))
        xml = {n: z.read(n).decode() for n in charts}
    assert len(charts) == 1 + len(keys) + 1  # and the co-signature's, after HR's questions
    overview = xml["xl/charts/chart1.xml"]
    assert "Andel levert per fakultet" in overview and 'formatCode="0&quot; %&quot;"' in overview
    titles = {}
    for text in xml.values():
        found = re.search(r"<c:title>.*?<a:t>(.*?)</a:t>", text, re.S)
        titles[found.group(1) if found else ""] = text
    for key in keys:
        item = FORM.field(key.split(".")[0])
        title = item.label.nb
        if "." in key:
            title += " – " + next(c for c in item.columns if c.id == key.split(".")[1]).label.nb
        assert title in titles, title
        grouping = (
            '<c:grouping val="clustered"/>' if item.type == "multichoice" else '<c:grouping val="stacked"/>'
        )
        assert grouping in titles[title], title
    cosign = titles["Verneombudets bekreftelse av svarene"]  # per faculty, its answers stacked
    assert '<c:grouping val="stacked"/>' in cosign
    _, rows = _blocks(openpyxl.load_workbook(path)["Oppsummering"])["Verneombudets bekreftelse av svarene"]
    assert cosign.count("<c:ser>") == len(rows) >= 4  # confirmed, a comment, awaiting, not asked, …


def test_two_of_three_reads_66_percent_everywhere(tmp_path):
    """One rounding rule: with 2 of HF's 3 units in, `status`, the digest's numbers, the web page,
    the store's progress and the workbook's cell and chart label all say 66 (%)."""
    p = new_project(tmp_path, n_units=9)  # HF-U002, HF-U005, HF-U008
    p.setup()
    now = dt.datetime(2020, 12, 7, 12, 0, tzinfo=dt.UTC)
    app = App(config_mod.load(p.config, p.env), FixedClock(now))
    try:
        submit(app, 1, "HF-U002", valid_answers(0), True)
        submit(app, 2, "HF-U005", valid_answers(1), True)
        (hf,) = [r for r in app.store.faculty_progress(app.campaign_id) if r.faculty == "HF"]
        assert (hf.valid, hf.units) == (2, 3)
        assert share_percent(2, 3) == 66 and share_percent(3, 3) == 100 and share_percent(0, 0) == 0
        assert hf.percent == 66  # store/reports
        assert digest.progress([hf])["percent"] == 66  # the digests
        hr = WebUser("hr-kari", "hr", None, "x")
        (line,) = [f for f in Views(app).dashboard(hr, "nb").faculties if f.faculty == "HF"]
        assert line.percent == 66  # the web page
    finally:
        app.close()
    status = next(line for line in p.cli("status").output.splitlines() if line.startswith("HF"))
    assert status.split()[-1] == "66%"  # the CLI
    path = _compile(p, tmp_path)
    ws = openpyxl.load_workbook(path)["Oversikt"]
    (cell,) = [row[5] for row in ws.iter_rows(min_row=2) if row[0].value == "HF"]
    assert cell.value == 66 and cell.number_format == PERCENT  # the workbook: "66 %"
    with zipfile.ZipFile(path) as z:
        chart = z.read("xl/charts/chart1.xml").decode()
    assert "<c:dLbls>" in chart and 'formatCode="0&quot; %&quot;"' in chart  # its label: the same


def test_a_campaign_without_units_writes_a_workbook_without_charts(tmp_path):
    """No active unit (a faculty's slice before its roster is in): every sheet is written, the
    summary's blocks count nothing, and Diagrammer draws no empty chart."""
    from service.jobs import collate

    src = collate.Sources([], {}, frozenset(), lambda: iter(()), lambda: iter(()), {}, {})
    counts = collate.write_xlsx(collate.sheets(src, FORM), tmp_path / "empty.xlsx")
    assert counts["Svar"] == 0 and counts["Diagrammer"] == 0
    assert counts["Oppsummering"] == 1 + len(summary.questions(FORM))
    with zipfile.ZipFile(tmp_path / "empty.xlsx") as z:
        assert not [n for n in z.namelist() if n.startswith("xl/charts/")]
