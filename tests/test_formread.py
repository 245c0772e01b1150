"""Reading a filled form back: every type, both languages, every problem with its cell."""

from __future__ import annotations

import datetime
import zipfile
from io import BytesIO

import openpyxl
import pytest

from service.errors import FormReadError
from service.forms.build import build_form
from service.forms.definition import load_form
from service.forms.model import (
    ANSWER_COL,
    LABEL_COL,
    META_SHEET,
    SHEET_NAMES,
    FormReading,
    sheet_layout,
)
from service.forms.read import read_form
from service.forms.validate import flags, validate
from service.models import Unit

STAMP = "st1.SUUtSURJ.bWFjLXNpZ25hdHVyZQ"
REFERENCE = "KQ7M-3XWD"
UNIT = Unit(
    "IE-IDI", "Institutt for datateknologi og informatikk", "IE", "Kari Nordmann", "kari@example.test", "nb"
)
D = datetime.date


def blank(form, lang="nb"):
    return build_form(
        form,
        UNIT,
        lang=lang,
        reference=REFERENCE,
        stamp=STAMP,
        campaign_title="ARK 2020",
        deadline=D(2020, 12, 16),
    )


def at(form, key, column=None):
    """The coordinate (C14) of a field, option or table cell (key tiltak/3 + column id)."""
    row = sheet_layout(form)[key]
    if column is None:
        return f"{'ABCDEFGH'[ANSWER_COL - 1]}{row}"
    index = [c.id for c in form.field(key.split("/")[0]).columns].index(column)
    return f"{'ABCDEFGH'[LABEL_COL - 1 + index]}{row}"


def fill(data, values, lang="nb", edit=None):
    """Type ``values`` ({coordinate: value}) with openpyxl, optionally edit the book, save."""
    wb = openpyxl.load_workbook(BytesIO(data))
    ws = wb[SHEET_NAMES[lang][1]]
    for coordinate, value in values.items():
        ws[coordinate] = value
    if edit is not None:
        edit(wb)
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def complete(form):
    """A complete, valid nb answer set: {coordinate: typed value} and the expected answers."""
    typed = {
        at(form, "resultatrapport_gjennomgatt"): "Planlagt",
        at(form, "forlop"): "Gruppeprosess på side 7: ble avbrutt midt i prosessen i vår",
        at(form, "antall_ansatte"): 23,
        at(form, "motedato"): D(2020, 11, 3),
        at(form, "moteform"): "I mindre grupper eller kohorter",
        at(form, "antall_deltakere"): 19,
        at(form, "verneombud_navn"): "Åsmund Ærø-Øye",
        at(form, "verneombud_involvert"): "Ja",
        at(form, "losam_involvert"): "Ikke relevant",
        at(form, "hvordan_har_vi_det"): "Vi savner hverandre.\nHjemmekontor sliter på noen.",
        at(form, "handlingsplan_ephorte"): "Ja",
        at(form, "saksnummer"): "2020/12345",
        at(form, "tiltak/1", "beskrivelse"): "Faste møteplasser på campus",
        at(form, "tiltak/1", "tema"): "Sosialt fellesskap",
        at(form, "tiltak/1", "status"): "Nytt",
        at(form, "tiltak/1", "ansvarlig"): "Instituttleder",
        at(form, "tiltak/1", "frist"): D(2021, 3, 1),
        # row 2 left empty on purpose: it is dropped, and row 3 becomes the second measure
        at(form, "tiltak/3", "beskrivelse"): "Kurs i digitale møter",
        at(form, "tiltak/3", "tema"): "Kompetanse",
        at(form, "tiltak/3", "status"): "Gjennomført",
        at(form, "tiltak/3", "ansvarlig"): "HR-rådgiver",
        at(form, "pandemi_pavirkning"): 4,
        at(form, "prosess_vurdering"): 3,
        at(form, "risikovurdert"): "Under arbeid",
        at(form, "ledermote_agenda"): "Ja",
        at(form, "fullt_forsvarlig"): "Usikker",
        at(form, "forsvarlig_beskrivelse"): "Høy arbeidsbelastning.\nFå møteplasser.",
        at(form, "hjelp_onsket/koordinator"): "Ja",
        at(form, "hjelp_onsket/bht"): "Ja",
        at(form, "kommentarer"): "Takk – «bra» & <greit>",
        at(form, "bekreftet"): "Ja",
        at(form, "bekreftet_dato"): D(2020, 12, 10),
    }
    answers = {
        "enhet_kode": "IE-IDI",
        "enhet_navn": UNIT.name,
        "fakultet": "IE",
        "leder": "Kari Nordmann",
        "resultatrapport_gjennomgatt": "planned",
        "forlop": "avbrutt",
        "antall_ansatte": 23,
        "motedato": D(2020, 11, 3),
        "moteform": "grupper",
        "antall_deltakere": 19,
        "verneombud_navn": "Åsmund Ærø-Øye",
        "verneombud_involvert": "yes",
        "losam_involvert": "not_relevant",
        "hvordan_har_vi_det": "Vi savner hverandre.\nHjemmekontor sliter på noen.",
        "handlingsplan_ephorte": "yes",
        "saksnummer": "2020/12345",
        "tiltak": [
            {
                "beskrivelse": "Faste møteplasser på campus",
                "tema": "sosialt_fellesskap",
                "status": "nytt",
                "ansvarlig": "Instituttleder",
                "frist": D(2021, 3, 1),
            },
            {
                "beskrivelse": "Kurs i digitale møter",
                "tema": "kompetanse",
                "status": "gjennomfort",
                "ansvarlig": "HR-rådgiver",
            },
        ],
        "pandemi_pavirkning": 4,
        "prosess_vurdering": 3,
        "risikovurdert": "in_progress",
        "ledermote_agenda": "yes",
        "fullt_forsvarlig": "unsure",
        "forsvarlig_beskrivelse": "Høy arbeidsbelastning.\nFå møteplasser.",
        "hjelp_onsket": ("koordinator", "bht"),
        "kommentarer": "Takk – «bra» & <greit>",
        "bekreftet": "yes",
        "bekreftet_dato": D(2020, 12, 10),
    }
    return typed, answers


def test_reads_back_exactly_the_entered_answers(form):
    """Every field type, table rows with a gap and æøå text come back as entered, no problems."""
    typed, answers = complete(form)
    reading = read_form(fill(blank(form), typed), form)
    assert isinstance(reading, FormReading)
    assert reading.answers == answers
    assert (reading.unit_code, reading.reference, reading.stamp) == ("IE-IDI", REFERENCE, STAMP)
    assert (reading.form_id, reading.form_version, reading.language) == (form.id, 2, "nb")
    assert reading.problems == []
    assert validate(form, reading, "nb") == []
    assert reading.cells["motedato"] == f"Skjema!{at(form, 'motedato')}"
    assert reading.cells["tiltak/2/tema"] == f"Skjema!{at(form, 'tiltak/3', 'tema')}"
    assert reading.cells["hjelp_onsket/bht"] == f"Skjema!{at(form, 'hjelp_onsket/bht')}"


def test_flags_raised_by_the_answers(form):
    """Unsure about the working environment and asking for help raise their flags, each with
    its own words and severity; a planned report review and a risk assessment in progress do not."""
    typed, _ = complete(form)
    reading = read_form(fill(blank(form), typed), form)
    raised = {f.field: f for f in flags(form, reading.answers)}
    assert set(raised) == {"fullt_forsvarlig", "hjelp_onsket"}
    assert raised["hjelp_onsket"].value == ("koordinator", "bht")
    assert raised["fullt_forsvarlig"].message.en == (
        "The leader and the safety representative are unsure whether the working environment "
        "is fully satisfactory."
    )
    assert raised["fullt_forsvarlig"].severity > raised["hjelp_onsket"].severity


def test_the_verneombud_name_is_prefilled_and_may_be_corrected(form):
    """The roster's verneombud reads back untouched, and a corrected name reads back instead."""
    unit = Unit(
        "IE-IDI", UNIT.name, "IE", "Kari Nordmann", "kari@example.test", "nb", "Per Olsen", "per@example.test"
    )
    data = build_form(
        form, unit, lang="nb", reference=REFERENCE, stamp=STAMP, campaign_title="C", deadline=D(2020, 12, 16)
    )
    assert read_form(fill(data, {}), form).answers["verneombud_navn"] == "Per Olsen"
    corrected = fill(data, {at(form, "verneombud_navn"): "Siri Lie"})
    assert read_form(corrected, form).answers["verneombud_navn"] == "Siri Lie"


def test_labels_in_the_other_language_and_value_ids_still_map(form):
    """English labels, value ids, odd case and spacing in an nb form map to the choice ids."""
    values = {
        at(form, "forlop"): "group process on PAGE 7: interrupted mid-process in the spring",
        at(form, "moteform"): "  ONLINE ",
        at(form, "verneombud_involvert"): "no",
        at(form, "losam_involvert"): "Not relevant",
        at(form, "handlingsplan_ephorte"): "in_progress",
        at(form, "fullt_forsvarlig"): "Yes",
        at(form, "hjelp_onsket/ingen"): "x",
        at(form, "hjelp_onsket/hr_hms"): "Nei",
        at(form, "bekreftet"): True,
        at(form, "tiltak/1", "tema"): "Workload",
        at(form, "tiltak/1", "status"): "implemented",
        at(form, "motedato"): "3.11.2020",
        at(form, "bekreftet_dato"): "2020-12-10",
        at(form, "tiltak/1", "frist"): "01.03.2021",
        at(form, "antall_ansatte"): "1 200",
        at(form, "antall_deltakere"): 19.0,
    }
    answers = read_form(fill(blank(form), values), form).answers
    assert answers["forlop"] == "avbrutt" and answers["moteform"] == "digitalt"
    assert answers["verneombud_involvert"] == "no"
    assert answers["losam_involvert"] == "not_relevant"
    assert answers["handlingsplan_ephorte"] == "in_progress"
    assert answers["fullt_forsvarlig"] == "yes" and answers["bekreftet"] == "yes"
    assert answers["hjelp_onsket"] == ("ingen",)
    assert answers["tiltak"] == [{"tema": "arbeidsmengde", "status": "gjennomfort", "frist": D(2021, 3, 1)}]
    assert answers["motedato"] == D(2020, 11, 3) and answers["bekreftet_dato"] == D(2020, 12, 10)
    assert answers["antall_ansatte"] == 1200 and answers["antall_deltakere"] == 19


def broken(form):
    typed, _ = complete(form)
    typed.update(
        {
            at(form, "antall_ansatte"): "ca. 20",
            at(form, "motedato"): "12/16/2020",
            at(form, "moteform"): None,
            at(form, "saksnummer"): None,
            at(form, "pandemi_pavirkning"): 7,
            at(form, "tiltak/1", "tema"): "Fiskeri",
            at(form, "bekreftet"): "Nei",
        }
    )
    return fill(blank(form), typed)


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_each_problem_is_reported_at_its_cell_in_the_leaders_language(form, lang):
    """Each kind of mistake gives exactly one problem, at its cell, in the leader's language."""
    reading = read_form(broken(form), form)
    found = validate(form, reading, lang)
    rows = [int(p.where.lstrip("Skjema!ABCDEFGH")) for p in found]
    assert rows == sorted(rows)  # in the order the leader meets them on the sheet
    problems = {p.where: p.message for p in found}
    label = {f.id: f.label.get(lang) for f in form.fields()}
    expected = {
        "antall_ansatte": ("ca. 20", {"nb": "heltall", "en": "whole number"}),
        "motedato": ("12/16/2020", {"nb": "DD.MM.ÅÅÅÅ", "en": "DD.MM.YYYY"}),
        "moteform": ("", {"nb": "ikke fylt ut", "en": "not been filled in"}),
        "saksnummer": (label["handlingsplan_ephorte"], {"nb": "må fylles ut når", "en": "required when"}),
        "pandemi_pavirkning": ("7", {"nb": "mellom 1 og 5", "en": "between 1 and 5"}),
        "bekreftet": ("", {"nb": "«Ja»", "en": "“Yes”"}),
    }
    for field_id, (detail, words) in expected.items():
        message = problems.pop(f"Skjema!{at(form, field_id)}")
        assert label[field_id] in message and detail in message and words[lang] in message
    message = problems.pop(f"Skjema!{at(form, 'tiltak/1', 'tema')}")
    assert "Fiskeri" in message and {"nb": "Arbeidsmengde", "en": "Workload"}[lang] in message
    assert problems == {}


def test_conversion_problems_are_in_the_file_language_by_default(form):
    """read_form's own problems use the form's language unless asked otherwise."""
    data = broken(form)
    nb = read_form(data, form).problems
    en = read_form(data, form, lang="en").problems
    assert [p.where for p in nb] == [p.where for p in en] and len(nb) == 3
    assert "heltall" in nb[0].message and "whole number" in en[0].message


def test_table_rules_min_rows_and_required_columns(form):
    """An empty measures table needs a row; a row without its theme names that cell."""
    typed, _ = complete(form)
    for key in ("tiltak/1", "tiltak/3"):
        for col in ("beskrivelse", "tema", "status", "ansvarlig", "frist"):
            typed.pop(at(form, key, col), None)
    empty = {p.where: p.message for p in validate(form, read_form(fill(blank(form), typed), form), "en")}
    first = f"Skjema!{at(form, 'tiltak/1', 'beskrivelse')}"
    assert "at least 1 row" in empty[first]
    typed[at(form, "tiltak/2", "beskrivelse")] = "Bedre rutiner"
    partial = {p.where: p.message for p in validate(form, read_form(fill(blank(form), typed), form), "nb")}
    theme = at(form, "tiltak/2", "tema")
    assert f"«Tema» i rad {theme[1:]}" in partial[f"Skjema!{theme}"]
    assert f"Skjema!{at(form, 'tiltak/2', 'frist')}" not in partial  # optional column


def test_pattern_and_exclusive_choice(form):
    """A malformed case number and «none» ticked with a helper are both reported."""
    typed, _ = complete(form)
    typed[at(form, "saksnummer")] = "12345"
    typed[at(form, "hjelp_onsket/ingen")] = "Ja"
    problems = {p.where: p.message for p in validate(form, read_form(fill(blank(form), typed), form), "nb")}
    assert "2020/12345" in problems[f"Skjema!{at(form, 'saksnummer')}"]
    assert "Ingen hjelp nå" in problems[f"Skjema!{at(form, 'hjelp_onsket')}"]


def strip_ids_and_names(wb):
    ws = wb["Skjema"]
    for row in ws.iter_rows(min_col=1, max_col=1):
        row[0].value = None
    for name in list(wb.defined_names):
        del wb.defined_names[name]


def strip_everything(wb):
    strip_ids_and_names(wb)
    del wb[META_SHEET]


@pytest.mark.parametrize("edit", [strip_ids_and_names, strip_everything])
def test_reads_by_layout_when_ids_and_names_were_dropped(form, edit):
    """Without id column and defined names (even the meta sheet) the labelled layout finds all."""
    typed, answers = complete(form)
    data = fill(blank(form), typed, edit=edit)
    wb = openpyxl.load_workbook(BytesIO(data))
    assert wb["Skjema"]["A7"].value is None and "sp_stamp" not in wb.defined_names
    reading = read_form(data, form)
    assert reading.answers == answers
    assert reading.reference == REFERENCE and reading.unit_code == "IE-IDI"
    assert reading.stamp == (None if edit is strip_everything else STAMP)
    assert validate(form, reading, "nb") == []


def test_rows_inserted_above_are_followed_by_the_id_column(form):
    """A leader inserted two rows near the top: the hidden keys still locate every answer."""
    typed, answers = complete(form)
    data = fill(blank(form), typed, edit=lambda wb: wb["Skjema"].insert_rows(6, 2))
    reading = read_form(data, form)
    assert reading.answers == answers
    assert reading.cells["motedato"] == f"Skjema!C{sheet_layout(form)['motedato'] + 2}"


def test_english_form_reads_back(form):
    """The en form (sheet «Form») reads back with English labels typed."""
    values = {
        at(form, "moteform"): "Online",
        at(form, "bekreftet"): "Yes",
        at(form, "tiltak/1", "status"): "Continued",
    }
    reading = read_form(fill(blank(form, "en"), values, lang="en"), form)
    assert reading.language == "en" and reading.cells["moteform"].startswith("Form!")
    assert reading.answers["moteform"] == "digitalt" and reading.answers["bekreftet"] == "yes"
    assert reading.answers["tiltak"] == [{"status": "viderefort"}]


def test_far_away_cells_are_not_scanned(form):
    """A cell at row 1,000,000 neither slows the reader down nor changes the answers."""
    typed, answers = complete(form)
    data = fill(blank(form), typed, edit=lambda wb: wb["Skjema"].cell(1_000_000, 3, "far"))
    assert read_form(data, form).answers == answers


def zipped(members):
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not_xlsx"),
        (b"this is not a spreadsheet", "not_xlsx"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 500, "not_xlsx"),
        (zipped({"hello.txt": "hi"}), "unreadable"),
        (zipped({"[Content_Types].xml": "<broken", "xl/workbook.xml": "<"}), "unreadable"),
    ],
)
def test_not_a_workbook_gives_form_read_error(form, data, code):
    """Bytes that are not an .xlsx raise FormReadError with a code, never a raw exception."""
    with pytest.raises(FormReadError) as info:
        read_form(data, form)
    assert info.value.code == code


def test_truncated_file_gives_form_read_error(form):
    """A half-received attachment is a FormReadError."""
    data = blank(form)
    with pytest.raises(FormReadError):
        read_form(data[: len(data) // 2], form)


def test_another_form_or_workbook_is_refused(form):
    """Another form's id, or a workbook with none of our fields, is refused as the wrong form."""

    def other_id(wb):
        wb[META_SHEET]["B1"] = "another-form"

    with pytest.raises(FormReadError) as info:
        read_form(fill(blank(form), {}, edit=other_id), form)
    assert info.value.code == "wrong_form"
    wb = openpyxl.Workbook()
    wb.active["B7"] = "Budget 2021"
    out = BytesIO()
    wb.save(out)
    with pytest.raises(FormReadError) as info:
        read_form(out.getvalue(), form)
    assert info.value.code == "wrong_form"


SMALL = """
id = "small"
version = 3
title = { nb = "Lite", en = "Small" }
instructions = { nb = "Fyll ut.", en = "Fill in." }
[[sections]]
id = "s"
title = { nb = "Del", en = "Part" }
[[sections.fields]]
id = "farge"
type = "multichoice"
label = { nb = "Farger", en = "Colours" }
choices = [{ value = "red", nb = "Rød", en = "Red" }, { value = "blue", nb = "Blå", en = "Blue" }]
[[sections.fields]]
id = "rader"
type = "table"
rows = 3
label = { nb = "Rader", en = "Rows" }
[[sections.fields.columns]]
id = "a"
type = "integer"
label = { nb = "A", en = "A" }
[[sections.fields.columns]]
id = "b"
type = "yesno"
label = { nb = "B", en = "B" }
[[sections.fields.columns]]
id = "c"
type = "scale"
label = { nb = "C", en = "C" }
[[sections.fields.columns]]
id = "d"
type = "text"
label = { nb = "D", en = "D" }
[[sections.fields.columns]]
id = "e"
type = "text"
label = { nb = "E", en = "E" }
[[sections.fields.columns]]
id = "f"
type = "date"
label = { nb = "F", en = "F" }
[[sections.fields.columns]]
id = "g"
type = "longtext"
label = { nb = "G", en = "G" }
"""


def test_any_valid_form_builds_and_reads_back(tmp_path):
    """A different form (no roster fields, a 7-column table) builds and reads back the same way."""
    path = tmp_path / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    small = load_form(path)
    data = build_form(
        small, UNIT, lang="en", reference="R-1", stamp="S-1", campaign_title="C", deadline=D(2021, 1, 1)
    )
    row = sheet_layout(small)["rader/2"]
    typed = {
        f"C{sheet_layout(small)['farge/blue']}": "Yes",
        f"B{row}": 7,
        f"C{row}": "No",
        f"D{row}": 5,
        f"H{row}": "siste kolonne",
    }
    reading = read_form(fill(data, typed, lang="en"), small)
    assert reading.answers == {
        "farge": ("blue",),
        "rader": [{"a": 7, "b": "no", "c": 5, "g": "siste kolonne"}],
    }
    assert reading.cells["rader/1/g"] == f"Form!H{row}" and reading.form_version == 3
    assert (reading.reference, reading.stamp, reading.unit_code) == ("R-1", "S-1", "IE-IDI")
