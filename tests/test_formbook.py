"""The personalised .xlsx: unit data locked, answers open, dropdowns, language, hidden stamp."""

from __future__ import annotations

import datetime
import zipfile
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO

import openpyxl
import pytest
from harness.filling import FORM_PATH

from service.forms.build import INSTRUCTIONS_WIDTH, build_form, format_date
from service.forms.definition import load_form
from service.forms.model import (
    ANSWER_COL,
    HELP_COL,
    LABEL_COL,
    META_SHEET,
    SHEET_NAMES,
    Faculty,
    FormContext,
    Text,
    option_key,
    row_key,
    sheet_layout,
)
from service.forms.read import read_form
from service.models import Unit

STAMP = "st1.aW5zdGl0dXR0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
REFERENCE = "KQ7M-3XWD"
DEADLINE = datetime.date(2020, 12, 16)
UNITS = {
    "nb": Unit(
        "IE-IDI",
        "Institutt for datateknologi og informatikk",
        "IE",
        "Kari Nordmann",
        "kari@example.test",
        "nb",
    ),
    "en": Unit("NV-IBI", "Department of Biology", "NV", "Jane Leader", "jane@example.test", "en"),
}


@pytest.fixture(scope="module", params=["nb", "en"])
def built(request, form):
    lang = request.param
    unit = UNITS[lang]
    data = build_form(
        form,
        unit,
        lang=lang,
        reference=REFERENCE,
        stamp=STAMP,
        campaign_title="ARK-oppfølging 2020",
        deadline=DEADLINE,
    )
    wb = openpyxl.load_workbook(BytesIO(data))
    return lang, unit, data, wb


def answer_sheet(wb, lang):
    return wb[SHEET_NAMES[lang][1]]


def test_sheets_are_named_in_the_unit_language(built):
    """Instructions first, then the answer sheet, both in the unit's language; meta very hidden."""
    lang, _, _, wb = built
    assert wb.sheetnames == [*SHEET_NAMES[lang], META_SHEET]
    assert wb[META_SHEET].sheet_state == "veryHidden"
    assert [ws.sheet_state for ws in wb.worksheets[:2]] == ["visible", "visible"]


def test_unit_values_are_filled_in_and_locked(built, form):
    """Unit code, name, faculty and leader show the unit's values in locked cells."""
    lang, unit, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    expected = {
        "enhet_kode": unit.code,
        "enhet_navn": unit.name,
        "fakultet": unit.faculty,
        "leder": unit.leader_name,
    }
    for field_id, value in expected.items():
        cell = ws.cell(rows[field_id], ANSWER_COL)
        assert cell.value == value
        assert cell.protection.locked is True
    assert ws.protection.sheet is True
    assert wb[SHEET_NAMES[lang][0]].protection.sheet is True


def campaign_form(form):
    """The shipped form as a campaign with a guidance page and faculty names loads it."""
    context = FormContext(
        "https://innsida.ntnu.no/wiki/-/wiki/Norsk/Arbeidsmiljøundersøkelse+-+for+ledere",
        (
            Faculty(
                "IE", Text("Fakultet for informasjonsteknologi og elektroteknikk", "Faculty of IT and EE")
            ),
        ),
    )
    return load_form(FORM_PATH, context)


def build(form, unit, lang="nb"):
    data = build_form(
        form, unit, lang=lang, reference=REFERENCE, stamp=STAMP, campaign_title="C", deadline=DEADLINE
    )
    return data, openpyxl.load_workbook(BytesIO(data))


def test_the_faculty_is_shown_by_its_name_with_its_code(form):
    """With [faculties] configured the locked faculty cell reads «name (code)» in the unit's
    language; a faculty without a configured name shows its code."""
    named = campaign_form(form)
    for lang, shown in (
        ("nb", "Fakultet for informasjonsteknologi og elektroteknikk (IE)"),
        ("en", "Faculty of IT and EE (IE)"),
    ):
        _, wb = build(named, UNITS["nb"], lang)
        cell = answer_sheet(wb, lang).cell(sheet_layout(named)["fakultet"], ANSWER_COL)
        assert cell.value == shown and cell.protection.locked is True
    _, wb = build(named, UNITS["en"], "en")  # NV has no name in this context
    assert answer_sheet(wb, "en").cell(sheet_layout(named)["fakultet"], ANSWER_COL).value == "NV"


def test_the_verneombud_is_prefilled_in_an_open_cell(form):
    """The roster's verneombud name stands in the yellow, unlocked answer cell; with none it is empty."""
    unit = Unit(
        "IE-IDI", "Institutt", "IE", "Kari", "kari@example.test", "nb", "Per Olsen", "per@example.test"
    )
    row = sheet_layout(form)["verneombud_navn"]
    _, wb = build(form, unit)
    cell = answer_sheet(wb, "nb").cell(row, ANSWER_COL)
    assert cell.value == "Per Olsen" and cell.protection.locked is False
    data, wb = build(form, UNITS["nb"])  # no verneombud in the roster
    assert not answer_sheet(wb, "nb").cell(row, ANSWER_COL).value
    assert "verneombud_navn" not in read_form(data, form).answers


def test_rows_showing_roster_values_are_as_tall_as_the_value(form):
    """A unit name that wraps gets a taller row in its own copy (LibreOffice would draw it over
    the next row); a short one keeps a single line."""
    rows = sheet_layout(form)
    long_name = "Institutt for informasjonssikkerhet og kommunikasjonsteknologi ved campus Gjøvik og Ålesund"
    heights, intro = {}, {}
    for name in ("Institutt", "Institutt for datateknologi og informatikk", long_name):
        unit = Unit("IE-X", name, "IE", "Kari", "kari@example.test", "nb")
        _, wb = build(form, unit)
        ws = answer_sheet(wb, "nb")
        assert ws.cell(rows["enhet_navn"], ANSWER_COL).value == name
        heights[name] = ws.row_dimensions[rows["enhet_navn"]].height
        ins = wb[SHEET_NAMES["nb"][0]]
        line = next(c.row for c in ins["B"] if str(c.value).startswith("Enhet: IE-X"))
        intro[name] = ins.row_dimensions[line].height  # the instructions' «Enhet: …» line
    assert heights["Institutt"] == 15
    assert 15 < heights["Institutt for datateknologi og informatikk"] < heights[long_name]
    assert intro["Institutt"] == intro["Institutt for datateknologi og informatikk"] == 15
    assert intro[long_name] > 15


def test_instructions_link_the_guidance_page_and_fit_the_page(form):
    """The guidance page is a paragraph of its own and a link; the one column fits A4 portrait."""
    named = campaign_form(form)
    _, wb = build(named, UNITS["nb"])
    ins = wb[SHEET_NAMES["nb"][0]]
    links = [c for row in ins.iter_rows() for c in row if c.hyperlink is not None]
    assert [c.value for c in links] == [named.context.guidance_url]
    assert "%C3%B8" in links[0].hyperlink.target  # ø, percent-encoded for the link itself
    assert ins.column_dimensions["B"].width == INSTRUCTIONS_WIDTH <= 70
    assert ins.page_setup.orientation == "portrait"
    texts = " ".join(str(c.value) for row in ins.iter_rows() for c in row if c.value)
    assert "(tidligere FaktaARK 2)" in texts and "november 2019" in texts
    _, plain = build(form, UNITS["nb"])
    assert not [c for row in plain.worksheets[0].iter_rows() for c in row if c.hyperlink is not None]


def test_the_track_help_links_the_guidance_page_beside_the_answer(form):
    """The track question's help cell ends with the guidance page's address; its input message
    (a tooltip, 255 characters at most, where a link cannot be clicked) leaves the address out."""
    named = campaign_form(form)
    _, wb = build(named, UNITS["nb"])
    ws, row = answer_sheet(wb, "nb"), sheet_layout(named)["forlop"]
    helping = ws.cell(row, HELP_COL).value
    assert named.context.guidance_url in helping.split("\n")
    coordinate = ws.cell(row, ANSWER_COL).coordinate
    dv = next(d for d in ws.data_validations.dataValidation if coordinate in d.sqref)
    assert "innsida.ntnu.no" not in dv.prompt and "«Arbeidsmiljøundersøkelse – for ledere»" in dv.prompt


def test_answer_cells_are_unlocked_and_labels_locked(built, form):
    """Every cell a leader types in is unlocked; labels and help are locked."""
    lang, _, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    open_cells = []
    for f in form.fields():
        if f.source:
            continue
        if f.type == "multichoice":
            open_cells += [(rows[option_key(f.id, c.value)], ANSWER_COL) for c in f.options]
        elif f.type == "table":
            open_cells += [
                (rows[row_key(f.id, n)], LABEL_COL + k)
                for n in range(1, f.rows + 1)
                for k in range(len(f.columns))
            ]
        else:
            open_cells.append((rows[f.id], ANSWER_COL))
        assert ws.cell(rows[f.id], LABEL_COL).protection.locked is True
        assert ws.cell(rows[f.id], HELP_COL).protection.locked is True
    assert len(open_cells) > 60
    for row, col in open_cells:
        assert ws.cell(row, col).protection.locked is False, (row, col)


def validation_items(ws, coordinate):
    """The items of the list validation covering ``coordinate``, or None."""
    for dv in ws.data_validations.dataValidation:
        if coordinate in dv.sqref and dv.type == "list":
            return dv.formula1.strip('"').split(",")
    return None


def test_every_choice_field_has_a_dropdown_with_exactly_its_choices(built, form):
    """choice, yesno, scale, table choice columns and multichoice ticks all get list validations."""
    lang, _, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    checked = 0
    for f in form.fields():
        if f.type in ("choice", "yesno"):
            coordinate = ws.cell(rows[f.id], ANSWER_COL).coordinate
            assert validation_items(ws, coordinate) == [c.label.get(lang) for c in f.options]
            checked += 1
        elif f.type == "scale":
            coordinate = ws.cell(rows[f.id], ANSWER_COL).coordinate
            assert validation_items(ws, coordinate) == ["1", "2", "3", "4", "5"]
            checked += 1
        elif f.type == "multichoice":
            for c in f.options:
                coordinate = ws.cell(rows[option_key(f.id, c.value)], ANSWER_COL).coordinate
                assert validation_items(ws, coordinate) == [{"nb": "Ja", "en": "Yes"}[lang]]
            checked += 1
        elif f.type == "table":
            for k, col in enumerate(f.columns):
                for n in (1, f.rows):
                    coordinate = ws.cell(rows[row_key(f.id, n)], LABEL_COL + k).coordinate
                    items = validation_items(ws, coordinate)
                    if col.type == "choice":
                        assert items == [c.label.get(lang) for c in col.options]
                        checked += 1
                    else:
                        assert items is None
    assert checked >= 13


def test_labels_and_help_are_in_the_unit_language(built, form):
    """Labels (with * when required) and the visible help column use the unit's language."""
    lang, _, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    for f in form.fields():
        assert ws.cell(rows[f.id], LABEL_COL).value == f.label.get(lang) + (" *" if f.required else "")
        if f.help:
            assert f.help.get(lang) in ws.cell(rows[f.id], HELP_COL).value
    other = "en" if lang == "nb" else "nb"
    texts = " ".join(str(c.value) for row in ws.iter_rows() for c in row if c.value)
    assert form.field("motedato").label.get(other) not in texts


def test_help_is_also_the_input_message(built, form):
    """Each answer cell's validation carries the help text as its input message."""
    lang, _, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    f = form.field("antall_ansatte")
    coordinate = ws.cell(rows[f.id], ANSWER_COL).coordinate
    dv = next(d for d in ws.data_validations.dataValidation if coordinate in d.sqref)
    assert dv.showInputMessage and dv.prompt.startswith(f.help.get(lang)[:40])
    assert dv.type == "whole" and (dv.formula1, dv.formula2) == ("1", "5000")
    assert all(
        len(d.prompt or "") <= 255 and len(d.promptTitle or "") <= 32
        for d in ws.data_validations.dataValidation
    )


def visible_texts(wb):
    return [
        str(c.value)
        for ws in wb.worksheets
        if ws.sheet_state == "visible"
        for row in ws.iter_rows()
        for c in row
        if c.value is not None
    ]


def test_stamp_is_stored_twice_and_never_visible(built):
    """The stamp is a defined name and on the very hidden sheet, but in no visible cell."""
    lang, unit, _, wb = built
    assert wb.defined_names["sp_stamp"].attr_text == f'"{STAMP}"'
    meta = {r[0]: r[1] for r in wb[META_SHEET].iter_rows(values_only=True)}
    assert meta["stamp"] == STAMP and meta["unit_code"] == unit.code
    assert meta["language"] == lang and meta["form_id"] == "oppsummering-og-evaluering"
    assert not any(STAMP in text for text in visible_texts(wb))
    assert not any(STAMP[:12] in text for text in visible_texts(wb))


def test_reference_and_deadline_are_visible(built):
    """The reference code and the deadline, in the language's format, are on both sheets."""
    lang, unit, _, wb = built
    deadline = format_date(DEADLINE, lang)
    assert deadline == {"nb": "16. desember 2020", "en": "16 December 2020"}[lang]
    for ws in wb.worksheets[:2]:
        texts = [str(c.value) for row in ws.iter_rows() for c in row if c.value]
        assert any(REFERENCE in t for t in texts), ws.title
        assert any(deadline in t for t in texts), ws.title
    assert wb.defined_names["sp_reference"].attr_text == f'"{REFERENCE}"'
    instructions = " ".join(visible_texts(wb)[:12])
    assert unit.code in instructions


def test_id_column_is_hidden_and_names_point_at_answer_cells(built, form):
    """Column A holds every key and is hidden; each field has a defined name on its cell."""
    lang, _, _, wb = built
    ws, rows = answer_sheet(wb, lang), sheet_layout(form)
    assert ws.column_dimensions["A"].hidden
    for key, row in rows.items():
        assert ws.cell(row, 1).value == key
    title = SHEET_NAMES[lang][1]
    assert wb.defined_names["sp_motedato"].attr_text == f"{title}!$C${rows['motedato']}"
    assert wb.defined_names["sp_hjelp_onsket__bht"].attr_text == (f"{title}!$C${rows['hjelp_onsket/bht']}")
    assert wb.defined_names["sp_tiltak"].attr_text == (
        f"{title}!$B${rows['tiltak/1']}:$F${rows['tiltak/10']}"
    )


def test_hostile_values_are_escaped(form):
    """Roster values with <&>\", control characters or placeholder look-alikes stay literal."""
    unit = Unit("X&<1>", 'A "quoted" <b>name</b> & co\x07', "F", "@@SP[stamp]@@", "x@y.test", "nb")
    stamp = 'st"1<&>'
    data = build_form(
        form, unit, lang="nb", reference="R&D-<1>", stamp=stamp, campaign_title="Q&A", deadline=DEADLINE
    )
    with zipfile.ZipFile(BytesIO(data)) as zf:
        assert zf.testzip() is None
    wb = openpyxl.load_workbook(BytesIO(data))
    ws, rows = wb["Skjema"], sheet_layout(form)
    assert ws.cell(rows["enhet_kode"], ANSWER_COL).value == "X&<1>"
    assert ws.cell(rows["enhet_navn"], ANSWER_COL).value == 'A "quoted" <b>name</b> & co'
    assert ws.cell(rows["leder"], ANSWER_COL).value == "@@SP[stamp]@@"
    assert wb.defined_names["sp_stamp"].attr_text == '"st""1<&>"'
    assert wb.defined_names["sp_reference"].attr_text == '"R&D-<1>"'


def test_same_input_gives_the_same_bytes(form):
    """Building twice for the same unit gives identical files (no clock inside)."""
    kw = {"lang": "en", "reference": REFERENCE, "stamp": STAMP, "campaign_title": "C", "deadline": DEADLINE}
    assert build_form(form, UNITS["en"], **kw) == build_form(form, UNITS["en"], **kw)
    assert build_form(form, UNITS["en"], **kw) != build_form(form, UNITS["nb"], **kw)


def test_print_setup(built):
    """Both visible sheets print on A4, one page wide, with a print area."""
    wb = built[3]
    for ws in wb.worksheets[:2]:
        assert int(ws.page_setup.paperSize) == 9  # A4
        assert ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_area


def test_builds_from_many_threads_are_each_valid(form):
    """Forms built concurrently from the shared cached template are each complete and correct."""
    units = [Unit(f"U{i:03d}", f"Enhet {i}", "F", f"Leder {i}", "x@y.test", "nb") for i in range(40)]

    def one(unit):
        return unit, build_form(
            form,
            unit,
            lang="nb",
            reference=f"R-{unit.code}",
            stamp=f"s-{unit.code}",
            campaign_title="C",
            deadline=DEADLINE,
        )

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, units))
    for unit, data in results:
        with zipfile.ZipFile(BytesIO(data)) as zf:
            assert zf.testzip() is None
        wb = openpyxl.load_workbook(BytesIO(data))
        assert wb["Skjema"].cell(sheet_layout(form)["enhet_kode"], ANSWER_COL).value == unit.code
        assert wb.defined_names["sp_stamp"].attr_text == f'"s-{unit.code}"'


def test_overlong_stamp_is_refused(form):
    """A stamp longer than a defined name can hold is a programming error, not a broken file."""
    with pytest.raises(ValueError, match="250"):
        build_form(
            form,
            UNITS["nb"],
            lang="nb",
            reference=REFERENCE,
            stamp="x" * 300,
            campaign_title="C",
            deadline=DEADLINE,
        )
