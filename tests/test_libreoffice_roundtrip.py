"""A person fills the form in LibreOffice (headless, typing through the dispatcher); we read it.

tests/harness/lo_fill.py runs under /usr/bin/python3, which has LibreOffice's ``uno``. Typing goes through
``.uno:GoToCell`` + ``.uno:EnterString``, so sheet protection is honoured and LibreOffice turns
typed numbers and dates into numbers and dates as it would for a person, in the given locale.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from io import BytesIO
from pathlib import Path

import openpyxl
import pytest
from harness.filling import SYSTEM_PYTHON

from service.forms.build import build_form
from service.forms.model import ANSWER_COL, LABEL_COL, SHEET_NAMES, sheet_layout
from service.forms.read import read_form
from service.forms.validate import validate
from service.models import Unit

pytestmark = pytest.mark.libreoffice

HERE = Path(__file__).parent
STAMP = "st1.TlYtSUJJ.c2lnbmF0dXJl"
REFERENCE = "PX4K-9TQR"
D = datetime.date
UNITS = {
    "nb": Unit(
        "IE-IDI",
        "Institutt for datateknologi og informatikk",
        "IE",
        "Kari Nordmann",
        "kari@example.test",
        "nb",
        "Per Olsen",
        "per@example.test",
    ),
    "en": Unit("NV-IBI", "Department of Biology", "NV", "Jane Leader", "jane@example.test", "en"),
}


@pytest.fixture
def workdir(lo_workdir):
    return lo_workdir


def at(form, lang, key, column=None):
    row = sheet_layout(form)[key]
    col = ANSWER_COL
    if column is not None:
        col = LABEL_COL + [c.id for c in form.field(key.split("/")[0]).columns].index(column)
    return f"{SHEET_NAMES[lang][1]}!{'ABCDEFGH'[col - 1]}{row}"


def type_in_libreoffice(workdir, data, cells, locale):
    """Run lo_fill.py: type ``cells`` ({Sheet!C14: text}) into ``data``; the saved bytes."""
    src, dst, spec = workdir / "form.xlsx", workdir / "filled.xlsx", workdir / "cells.json"
    src.write_bytes(data)
    spec.write_text(json.dumps(cells, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [SYSTEM_PYTHON, str(HERE / "harness" / "lo_fill.py"), str(src), str(dst), str(spec), str(workdir)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=dict(os.environ, LO_FILL_LOCALE=locale),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dst.read_bytes()


def test_nb_form_filled_in_libreoffice_reads_back_exactly(form, workdir):
    """Typed in nb LibreOffice, every answer (the letter's questions too) reads back exactly, the
    locked unit code stays and the prefilled verneombud is replaced by the name typed over it."""
    unit = UNITS["nb"]
    data = build_form(
        form,
        unit,
        lang="nb",
        reference=REFERENCE,
        stamp=STAMP,
        campaign_title="ARK 2020",
        deadline=D(2020, 12, 16),
    )

    def c(key, column=None):
        return at(form, "nb", key, column)

    typed = {
        c("enhet_kode"): "HACKED",
        c("resultatrapport_gjennomgatt"): "Nei",
        c("forlop"): "Gruppeprosess på side 8: laget en ferdig tiltaksplan i vår",
        c("antall_ansatte"): "23",
        c("motedato"): "03.11.2020",
        c("moteform"): "Digitalt møte",
        c("antall_deltakere"): "19",
        c("verneombud_navn"): "Åsmund Ærø-Øye",
        c("verneombud_involvert"): "Nei",
        c("losam_involvert"): "Nei",
        c("hvordan_har_vi_det"): "Vi har det greit, men savner hverandre – «hjemmekontor» & stille dager.",
        c("handlingsplan_ephorte"): "Ja",
        c("saksnummer"): "2020/12345",
        c("tiltak/1", "beskrivelse"): "Faste møteplasser på campus",
        c("tiltak/1", "tema"): "Hjemmekontor / digitalt arbeid",
        c("tiltak/1", "status"): "Videreført",
        c("tiltak/1", "ansvarlig"): "Instituttleder",
        c("tiltak/1", "frist"): "01.03.2021",
        c("tiltak/2", "beskrivelse"): "Kurs i smittevern",
        c("tiltak/2", "tema"): "Smittevern / fysisk arbeidsmiljø",
        c("tiltak/2", "status"): "Evaluert",
        c("tiltak/2", "ansvarlig"): "HMS-koordinator",
        c("pandemi_pavirkning"): "5",
        c("prosess_vurdering"): "2",
        c("risikovurdert"): "Under arbeid",
        c("ledermote_agenda"): "Nei",
        c("fullt_forsvarlig"): "Nei",
        c("forsvarlig_beskrivelse"): "For høy arbeidsmengde i eksamensperioden.",
        c("hjelp_onsket/hr_hms"): "Ja",
        c("kommentarer"): "Takk – «bra» opplegg & god støtte",
        c("bekreftet"): "Ja",
        c("bekreftet_dato"): "10.12.2020",
    }
    filled = type_in_libreoffice(workdir, data, typed, "nb-NO")

    ws = openpyxl.load_workbook(BytesIO(filled), data_only=True)["Skjema"]
    assert isinstance(ws[c("motedato").split("!")[1]].value, datetime.datetime)  # LO made a date
    assert ws[c("enhet_kode").split("!")[1]].value == "IE-IDI"  # protection refused "HACKED"
    reading = read_form(filled, form)
    assert reading.answers == {
        "enhet_kode": "IE-IDI",
        "enhet_navn": unit.name,
        "fakultet": "IE",
        "leder": "Kari Nordmann",
        "resultatrapport_gjennomgatt": "no",
        "forlop": "handlingsplan_var",
        "antall_ansatte": 23,
        "motedato": D(2020, 11, 3),
        "moteform": "digitalt",
        "antall_deltakere": 19,
        "verneombud_navn": "Åsmund Ærø-Øye",
        "verneombud_involvert": "no",
        "losam_involvert": "no",
        "hvordan_har_vi_det": "Vi har det greit, men savner hverandre – «hjemmekontor» & stille dager.",
        "handlingsplan_ephorte": "yes",
        "saksnummer": "2020/12345",
        "tiltak": [
            {
                "beskrivelse": "Faste møteplasser på campus",
                "tema": "hjemmekontor",
                "status": "viderefort",
                "ansvarlig": "Instituttleder",
                "frist": D(2021, 3, 1),
            },
            {
                "beskrivelse": "Kurs i smittevern",
                "tema": "smittevern",
                "status": "evaluert",
                "ansvarlig": "HMS-koordinator",
            },
        ],
        "pandemi_pavirkning": 5,
        "prosess_vurdering": 2,
        "risikovurdert": "in_progress",
        "ledermote_agenda": "no",
        "fullt_forsvarlig": "no",
        "forsvarlig_beskrivelse": "For høy arbeidsmengde i eksamensperioden.",
        "hjelp_onsket": ("hr_hms",),
        "kommentarer": "Takk – «bra» opplegg & god støtte",
        "bekreftet": "yes",
        "bekreftet_dato": D(2020, 12, 10),
    }
    assert (reading.unit_code, reading.reference, reading.stamp) == ("IE-IDI", REFERENCE, STAMP)
    assert validate(form, reading, "nb") == []
    # every question of the form is answered here, but the side-6 one (the en test types it)
    assert {f.id for f in form.fields()} - set(reading.answers) == {"planlagt_med_verneombud"}


def test_en_form_filled_in_libreoffice_with_text_dates(form, workdir):
    """Typed in en LibreOffice, text dates and English labels read back (the side-6 track and its
    verneombud question too); a non-number is flagged."""
    data = build_form(
        form,
        UNITS["en"],
        lang="en",
        reference=REFERENCE,
        stamp=STAMP,
        campaign_title="ARK 2020",
        deadline=D(2020, 12, 16),
    )

    def c(key, column=None):
        return at(form, "en", key, column)

    typed = {
        c("enhet_navn"): "Renamed",
        c("motedato"): "'03.11.2020",  # the apostrophe makes LibreOffice keep it as text
        c("antall_ansatte"): "about 40",
        c("moteform"): "A combination",
        c("forlop"): "Group process on page 6: no follow-up meeting in the spring",
        c("planlagt_med_verneombud"): "No",
        c("risikovurdert"): "Yes",
        c("hjelp_onsket/ingen"): "Yes",
        c("tiltak/1", "beskrivelse"): "Weekly coffee",
        c("tiltak/1", "tema"): "Social community",
        c("tiltak/1", "frist"): "2021-02-15",
        c("bekreftet"): "Yes",
    }
    filled = type_in_libreoffice(workdir, data, typed, "en-US")
    ws = openpyxl.load_workbook(BytesIO(filled), data_only=True)["Form"]
    assert ws[c("motedato").split("!")[1]].value == "03.11.2020"
    reading = read_form(filled, form)
    answers = reading.answers
    assert answers["enhet_navn"] == "Department of Biology"
    assert answers["motedato"] == D(2020, 11, 3) and answers["moteform"] == "kombinasjon"
    assert answers["hjelp_onsket"] == ("ingen",) and answers["bekreftet"] == "yes"
    assert (answers["forlop"], answers["planlagt_med_verneombud"], answers["risikovurdert"]) == (
        "ingen_mote_var",
        "no",
        "yes",
    )
    assert answers["fakultet"] == "NV" and "verneombud_navn" not in answers  # none in the roster
    assert answers["tiltak"] == [
        {"beskrivelse": "Weekly coffee", "tema": "sosialt_fellesskap", "frist": D(2021, 2, 15)}
    ]
    assert "antall_ansatte" not in answers
    problems = {p.where: p.message for p in validate(form, reading, "en")}
    assert "whole number" in problems[c("antall_ansatte")]
    assert reading.stamp == STAMP and reading.language == "en"
