"""Filling a built form the way a leader would, by field id, for tests and benchmarks.

``answers`` use the form's value ids (choices) and Python values; they are typed into the cells
as the labels a person picks from the dropdowns, in the form's language.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from service.demo.fill import cells, fill  # the package's own filler (the demo's leaders use it)
from service.forms.definition import load_form
from service.forms.model import SHEET_NAMES, FormDef
from service.models import Language

FORM_PATH = Path(__file__).resolve().parents[2] / "forms" / "oppsummering-og-evaluering.toml"
__all__ = [
    "answers_with_mistakes",
    "cells",
    "fill",
    "fill_in_libreoffice",
    "missing_libreoffice",
    "shipped_form",
    "valid_answers",
]


def shipped_form() -> FormDef:
    return load_form(FORM_PATH)


def valid_answers(variant: int = 0) -> dict[str, object]:
    """A complete, valid answer set; ``variant`` varies a few values (and which flags rise).

    Flags by variant: 1, 5 none; 2 help; 0 the verneombud contradiction, unsure and help (three);
    3 adds LOSAM not involved and the tiltaksplan in progress; 4 the result report not gone
    through and no tiltaksplan in ePhorte; 6 no risk assessment and the side-6 process not
    planned with the verneombud; 7 not on the leader meetings' agenda. Tests count on 0, 1, 2, 5.
    """
    step = variant % 7
    answers: dict[str, object] = {
        "resultatrapport_gjennomgatt": {4: "no", 6: "planned"}.get(step, "yes"),
        "forlop": ("ingen_mote_var", "avbrutt", "handlingsplan_var")[variant % 3],
        "antall_ansatte": 10 + variant,
        "motedato": dt.date(2020, 11, 3),
        "moteform": "digitalt",
        "antall_deltakere": 8 + variant % 5,
        "verneombud_navn": f"Verneombud Ås {variant}",
        "verneombud_involvert": "yes" if variant % 4 else "no",
        "losam_involvert": "no" if step == 3 else "not_relevant",
        "hvordan_har_vi_det": f"Enhet {variant}: travelt, men vi har det bra sammen.",
        "handlingsplan_ephorte": {3: "in_progress", 4: "no"}.get(step, "yes"),
        "tiltak": [
            {
                "beskrivelse": "Faste møteplasser",
                "tema": "sosialt_fellesskap",
                "status": "nytt",
                "ansvarlig": "Leder",
                "frist": dt.date(2021, 3, 1),
            }
        ],
        "pandemi_pavirkning": 1 + variant % 5,
        "prosess_vurdering": 3,
        "risikovurdert": "no" if step == 6 else "yes",
        "ledermote_agenda": "no" if variant % 8 == 7 else "yes",
        "fullt_forsvarlig": "yes" if variant % 3 else "unsure",
        "hjelp_onsket": ("ingen",) if variant % 2 else ("koordinator",),
        "bekreftet": "yes",
        "bekreftet_dato": dt.date(2020, 12, 10),
    }
    if answers["handlingsplan_ephorte"] == "yes":
        answers["saksnummer"] = f"2020/{10000 + variant}"
    if answers["forlop"] == "ingen_mote_var":  # the side-6 track: planned with the verneombud?
        answers["planlagt_med_verneombud"] = "no" if step == 6 else "yes"
    if answers["fullt_forsvarlig"] != "yes":
        answers["forsvarlig_beskrivelse"] = "Høy arbeidsbelastning."
    return answers


def answers_with_mistakes(variant: int = 0) -> dict[str, object]:
    """A set with typical mistakes: an empty required field, text in a number, a broken condition."""
    answers = valid_answers(variant)
    answers["handlingsplan_ephorte"] = "yes"  # so the case number left out is a mistake
    del answers["antall_ansatte"]
    answers["antall_deltakere"] = "mange"
    answers.pop("saksnummer", None)  # required when the plan is in ePhorte
    return answers


SYSTEM_PYTHON = "/usr/bin/python3"  # has LibreOffice's uno; the venv must not import it


def missing_libreoffice() -> str | None:
    import shutil
    import subprocess

    if shutil.which("soffice") is None:
        return "soffice is not installed (apt-get install libreoffice-calc-nogui python3-uno)"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, check=False)
    return None if probe.returncode == 0 else f"{SYSTEM_PYTHON} cannot import uno"


def fill_in_libreoffice(
    data: bytes, form: FormDef, answers: dict[str, object], lang: Language, workdir: Path
) -> bytes:
    """``answers`` typed as a person would in LibreOffice (tests/harness/lo_fill.py), saved as .xlsx."""
    import json
    import os
    import subprocess

    sheet = SHEET_NAMES[lang][1]

    def typed(v: object) -> str:
        return v.strftime("%d.%m.%Y") if isinstance(v, dt.date) else str(v)

    spec = {f"{sheet}!{k}": typed(v) for k, v in cells(form, answers, lang).items()}
    src, dst, spec_path = workdir / "form.xlsx", workdir / "filled.xlsx", workdir / "cells.json"
    src.write_bytes(data)
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [
            SYSTEM_PYTHON,
            str(Path(__file__).parent / "lo_fill.py"),
            str(src),
            str(dst),
            str(spec_path),
            str(workdir),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=dict(os.environ, LO_FILL_LOCALE="nb-NO" if lang == "nb" else "en-GB"),
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return dst.read_bytes()
