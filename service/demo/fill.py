"""The demo's leaders filling in their forms: answers typed into the personalised .xlsx they were
sent, by field id, the way a person picks values from the dropdowns (in the form's language).

Only for `skjemapost demo`; openpyxl writes the cells, so the form's hidden stamp and reference
stay exactly as the service built them. ``tests/filling.py`` does the same for the tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from io import BytesIO
from typing import Any

import openpyxl
from openpyxl.utils import get_column_letter

from service.forms.model import ANSWER_COL, LABEL_COL, SHEET_NAMES, FormDef, option_key, row_key, sheet_layout
from service.models import Language

YES: dict[Language, str] = {"nb": "Ja", "en": "Yes"}


def cells(form: FormDef, answers: Mapping[str, Any], lang: Language) -> dict[str, Any]:
    """{coordinate: typed value} for ``answers`` (value ids become labels in ``lang``)."""
    layout = sheet_layout(form)
    out: dict[str, Any] = {}
    answer_col = get_column_letter(ANSWER_COL)
    for field_id, value in answers.items():
        f = form.field(field_id)
        if f.type == "multichoice":
            for v in value:
                out[f"{answer_col}{layout[option_key(f.id, v)]}"] = YES[lang]
        elif f.type == "table":
            ids = [c.id for c in f.columns]
            for n, row in enumerate(value, start=1):
                for col_id, cell_value in row.items():
                    col = f.columns[ids.index(col_id)]
                    typed = col.choice_label(cell_value, lang) if col.type == "choice" else cell_value
                    column = get_column_letter(LABEL_COL + ids.index(col_id))
                    out[f"{column}{layout[row_key(f.id, n)]}"] = typed
        elif f.type in ("choice", "yesno") and isinstance(value, str):
            out[f"{answer_col}{layout[f.id]}"] = f.choice_label(value, lang)
        else:
            out[f"{answer_col}{layout[f.id]}"] = value
    return out


def fill(data: bytes, form: FormDef, answers: Mapping[str, Any], lang: Language) -> bytes:
    """The workbook ``data`` with ``answers`` typed into its answer sheet, saved by openpyxl."""
    wb = openpyxl.load_workbook(BytesIO(data))
    ws = wb[SHEET_NAMES[lang][1]]
    for coordinate, value in cells(form, answers, lang).items():
        ws[coordinate] = value
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


#: what the units say about how they are doing (their own words, `hvordan_har_vi_det`)
HOW_WE_ARE = (
    "Mange savner de uformelle møtene på gangen. Hjemmekontor fungerer faglig, men noen føler seg alene.",
    "Travel høst med digital undervisning. Vi har fått til faste digitale lunsjer som folk setter pris på.",
    "Stipendiatene merker mest: lab-tid er begrenset og veiledningen blir mer sporadisk.",
    "De fleste har det greit, men arbeidsmengden har økt, og grensen mellom jobb og fritid er blitt utydelig.",
    "Vi har blitt flinkere til å dele informasjon, men nyansatte har hatt en tung start uten å møte kolleger.",
)


def valid_answers(variant: int, signed_on: dt.date, representative: str) -> dict[str, Any]:
    """A complete, valid answer set; ``variant`` varies the numbers, the choices and the flags,
    a few of each kind, as a campaign's units would (``representative``: the roster's
    verneombud, already filled in on the form, so the leader leaves it be)."""
    forsvarlig = "yes" if variant % 3 else "unsure"
    ephorte = "in_progress" if variant % 5 == 3 else "no" if variant % 10 == 7 else "yes"
    answers: dict[str, Any] = {
        "resultatrapport_gjennomgatt": {2: "planned", 4: "no"}.get(variant % 7, "yes"),
        "forlop": ("ingen_mote_var", "avbrutt", "handlingsplan_var")[variant % 3],
        "antall_ansatte": 12 + 7 * variant % 60,
        "motedato": dt.date(2020, 10, 5) + dt.timedelta(days=variant),
        "moteform": ("digitalt", "fysisk", "grupper")[variant % 3] if variant % 5 else "digitalt",
        "antall_deltakere": 6 + variant % 9,
        "verneombud_involvert": "no" if variant % 9 == 4 else "yes",
        "losam_involvert": "no" if variant % 6 == 5 else "yes" if variant % 2 == 0 else "not_relevant",
        "hvordan_har_vi_det": HOW_WE_ARE[variant % len(HOW_WE_ARE)],
        "handlingsplan_ephorte": ephorte,
        "tiltak": [
            {
                "beskrivelse": "Faste digitale møteplasser",
                "tema": "sosialt_fellesskap",
                "status": "nytt",
                "ansvarlig": "Leder",
                "frist": dt.date(2021, 3, 1),
            }
        ],
        "pandemi_pavirkning": 1 + variant % 5,
        "prosess_vurdering": 2 + variant % 4,
        "risikovurdert": "no" if variant % 8 == 5 else "in_progress" if variant % 4 == 2 else "yes",
        "ledermote_agenda": "no" if variant % 7 == 5 else "yes",
        "fullt_forsvarlig": forsvarlig,
        "hjelp_onsket": ("ingen",) if variant % 2 else ("koordinator",),
        "bekreftet": "yes",
        "bekreftet_dato": signed_on,
    }
    if not representative:  # nothing prefilled: the leader types the name
        answers["verneombud_navn"] = "Verneombudet"
    if ephorte == "yes":
        answers["saksnummer"] = f"2020/{10000 + 37 * variant}"
    if answers["forlop"] == "ingen_mote_var":  # the side-6 track plans the autumn with the verneombud
        answers["planlagt_med_verneombud"] = "no" if variant % 9 == 6 else "yes"
    if forsvarlig != "yes":
        answers["forsvarlig_beskrivelse"] = "Høy arbeidsbelastning over tid."
    return answers


def with_mistakes(answers: Mapping[str, Any]) -> dict[str, Any]:
    """Typical mistakes: an empty required field, text in a number, a case number left out
    where the tiltaksplan is in ePhorte."""
    wrong = dict(answers)
    wrong.pop("antall_ansatte", None)
    wrong["antall_deltakere"] = "ca. ti"
    wrong["handlingsplan_ephorte"] = "yes"
    wrong.pop("saksnummer", None)
    return wrong
