"""`skjemapost compile`: the master workbook, built from a real store and read back with openpyxl."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from harness.filling import shipped_form, valid_answers
from harness.website import bounce  # the web page's seed writes the same rows
from harness.website import mail as queued
from projects import new_project

from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.forms.answers import raised_flags, to_json
from service.models import Decision, NewSubmission

EVIL = '=HYPERLINK("http://x","y")'
SHEETS = ["Oversikt", "Oppsummering", "Diagrammer", "Svar", "Tiltak", "Mangler", "Flagg", "Logg"]
T0 = dt.datetime(2020, 12, 1, 8, 30, tzinfo=dt.UTC)
FORM = shipped_form()


def label(field_id: str) -> str:
    """The column title of a field in Svar: its nb label (the form's wording may change)."""
    return FORM.field(field_id).label.nb


PROBLEMS = (
    {"cell": "Skjema!C14", "label": "Antall ansatte", "message": "«Antall ansatte» må være et helt tall."},
    {"cell": "Skjema!C20", "label": "Dato", "message": "Fyll inn datoen for oppfølgingsmøtet."},
)


def _submit(
    app: App,
    n: int,
    code: str,
    answers: dict[str, object],
    valid: bool,
    *,
    sender: str = "leader@example.test",
    file_name: str = "skjema.xlsx",
    problems: tuple[dict[str, str], ...] = (),
) -> None:
    at = T0 + dt.timedelta(hours=n)
    row = app.store.store_inbound(
        app.campaign_id,
        message_id=f"<m{n}@example.test>",
        folder="INBOX",
        uidvalidity=1,
        uid=n,
        received_at=at,
        sender=sender,
        subject="skjema",
        raw_path=f"raw/{n}.eml",
        sha256=f"{n:064x}",
        now=at,
    )
    flags = tuple(raised_flags(app.form, answers)) if valid else ()
    sub = NewSubmission(code, at, sender, valid, to_json(answers), problems, flags, file_name, f"{n:064d}")
    app.store.record_decision(
        app.campaign_id, row, Decision("submission", "receipt", "Behandlet", code, submissions=(sub,)), at
    )


def _remind(app: App, code: str, step: int, at: dt.datetime) -> None:
    """A reminder for ``code`` in the outbox, as the chase would have queued it at ``at``."""
    queued(app, code, "leader-reminder-before", f"reminder-before:{step}", at)


@pytest.fixture
def project(tmp_path: Path):
    """Six units over IE/NV/HF: two delivered (one twice, one with formula-like text), one invalid
    with two problems and a correction sent; IE-U003 invited, reminded twice and escalated; one
    bounce for NV-U004's leader, and a formula-like leader name."""
    p = new_project(tmp_path)
    p.units[5] = dataclasses.replace(p.units[5], leader_name=EVIL)
    p.write_roster()
    p.setup()
    app = App(config_mod.load(p.config, p.env))
    evil = {
        **valid_answers(1),
        "kommentarer": EVIL,
        "tiltak": [{**valid_answers(1)["tiltak"][0], "beskrivelse": EVIL}],
    }
    _submit(app, 1, "IE-U000", valid_answers(0), True)
    _submit(app, 2, "IE-U000", valid_answers(2), True)
    _submit(app, 3, "NV-U001", evil, True, sender="=cmd|' /C calc'!A0@example.test", file_name=EVIL)
    _submit(app, 4, "HF-U002", {"antall_ansatte": "mange"}, False, problems=PROBLEMS)
    queued(app, "HF-U002", "leader-correction", "correction:1", T0 + dt.timedelta(hours=4, minutes=5))
    queued(app, "IE-U003", "leader-invitation", "invitation", dt.datetime(2020, 11, 23, 8, 0, tzinfo=dt.UTC))
    _remind(app, "IE-U003", 1, dt.datetime(2020, 12, 2, 8, 0, tzinfo=dt.UTC))
    _remind(app, "IE-U003", 2, dt.datetime(2020, 12, 9, 23, 30, tzinfo=dt.UTC))  # 10 Dec in Oslo
    queued(app, "IE-U003", "escalation", "escalation", dt.datetime(2020, 12, 14, 8, 0, tzinfo=dt.UTC))
    bounce(app, 5, p.units[4].leader_email, "550 5.1.1 user unknown")
    app.close()
    return p


def _compile(p, tmp_path: Path, *args: str) -> openpyxl.Workbook:
    out = tmp_path / "out.xlsx"
    result = p.cli("compile", "-o", str(out), *args)
    assert result.exit_code == 0, result.output
    return openpyxl.load_workbook(out)


def _rows(ws) -> list[dict[str, object]]:
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in row), strict=False)) for row in ws.iter_rows(min_row=2)]


def test_the_sheets_and_one_row_per_active_unit_with_its_status(project, tmp_path):
    """The sheets exist in order and Svar has one row per active unit with levert/ugyldig/mangler."""
    wb = _compile(project, tmp_path)
    assert wb.sheetnames == SHEETS
    svar = {r["Enhetskode"]: r for r in _rows(wb["Svar"])}
    assert sorted(svar) == sorted(u.code for u in project.units)
    assert {c: r["Status"] for c, r in svar.items()} == {
        "IE-U000": "levert",
        "NV-U001": "levert",
        "HF-U002": "ugyldig",
        "IE-U003": "mangler",
        "NV-U004": "mangler",
        "HF-U005": "mangler",
    }
    assert svar["IE-U000"]["Versjoner"] == 2
    assert {r["Enhetskode"] for r in _rows(wb["Mangler"])} == {"HF-U002", "IE-U003", "NV-U004", "HF-U005"}
    assert len(_rows(wb["Logg"])) == 4
    assert wb["Svar"].freeze_panes == "A2" and wb["Svar"].auto_filter.ref
    assert all(c.font.b for c in wb["Svar"][1])


def test_answers_are_typed_in_form_order(project, tmp_path):
    """Numbers are numbers, dates dates, times local datetimes and choices their nb labels."""
    wb = _compile(project, tmp_path)
    ws = wb["Svar"]
    header = [c.value for c in ws[1]]
    assert header.index(label("antall_ansatte")) < header.index(label("motedato"))
    row = next(r for r in _rows(ws) if r["Enhetskode"] == "IE-U000")
    assert row[label("antall_ansatte")] == 12 and isinstance(row[label("antall_ansatte")], int)
    assert row[label("motedato")] == dt.datetime(2020, 11, 3)  # a date cell
    assert row["Mottatt"] == dt.datetime(2020, 12, 1, 11, 30)  # 10:30 UTC is 11:30 in Oslo
    assert row[label("verneombud_involvert")] == "Ja"
    assert row[f"{label('tiltak')} (antall)"] == 1
    tiltak = _rows(wb["Tiltak"])
    assert len(tiltak) == 2 and tiltak[0]["Enhetskode"] == "IE-U000"
    assert isinstance(next(iter(v for k, v in tiltak[0].items() if k and "rist" in k)), dt.datetime)


def test_svar_names_each_column_once_and_for_what_it_is(project, tmp_path):
    """Svar shows the roster's unit columns once (no form field that only repeats them), every
    title once, and no bare «Dato»: the confirmation's date says whose it is."""
    header = [c.value for c in _compile(project, tmp_path)["Svar"][1]]
    assert len(header) == len(set(header))
    assert header[:8] == [
        "Enhetskode", "Enhet", "Fakultet", "Leder", "Leders e-post", "Status", "Mottatt", "Versjoner",
    ]  # fmt: skip
    repeated = [
        f for f in FORM.fields() if f.source in ("unit.code", "unit.name", "unit.faculty", "unit.leader_name")
    ]
    assert repeated and not {f.label.nb for f in repeated} & set(header[8:])
    assert "Dato" not in header
    section = next(s for s in FORM.sections if any(f.id == "bekreftet_dato" for f in s.fields))
    date = label("bekreftet_dato")
    assert (date if " " in date else f"{date} ({section.title.nb.lower()})") in header


def test_leader_text_that_looks_like_a_formula_stays_text_everywhere(project, tmp_path):
    """=HYPERLINK(...) in an answer and a file name, and a sender starting with '=', stay strings."""
    wb = _compile(project, tmp_path)
    seen = set()
    for ws in wb:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    assert c.data_type == "s", (ws.title, c.coordinate, c.value)
                    seen.add(ws.title)
                if c.value == EVIL:
                    seen.add(f"{ws.title}:evil")
    assert {"Svar:evil", "Tiltak:evil", "Mangler:evil", "Logg:evil"} <= seen
    assert "=cmd|' /C calc'!A0@example.test" in {r["Avsender"] for r in _rows(wb["Logg"])}


def test_missing_lists_reminders_the_last_one_and_bounces(project, tmp_path):
    """Mangler: every unit without a valid form, with its coordinator, how many reminders it got
    and the local date of the last, every mail the leader got, the escalation, and the leader's
    failing address with what the server's refusal means."""
    wb = _compile(project, tmp_path)
    missing = {r["Enhetskode"]: r for r in _rows(wb["Mangler"])}
    ie = missing["IE-U003"]
    assert ie["Status"] == "ikke sendt"
    assert ie["Purringer sendt"] == 2
    assert ie["Siste purring"] == dt.datetime(2020, 12, 10)  # local date, a date cell
    assert ie["Koordinator(er)"] == "Koordinator IE <koord-ie@example.test>"
    assert ie["Sendt til leder"] == "23.11 invitasjon; 02.12 påminnelse; 10.12 påminnelse"
    assert ie["Eskalert"] == dt.datetime(2020, 12, 14)
    assert ie["Skjema mottatt"] is None and ie["Feil å rette"] is None and ie["Feilene"] is None
    assert ie["Feilende adresse"] is None and ie["Tilbake"] is None
    none = missing["HF-U005"]
    assert none["Status"] == "ikke invitert" and none["Sendt til leder"] is None
    assert none["Purringer sendt"] == 0 and none["Siste purring"] is None and none["Eskalert"] is None
    leader = project.units[4].leader_email
    nv = missing["NV-U004"]
    assert nv["Status"] == "adresse virker ikke"
    assert nv["Feilende adresse"] == f"{leader}: adressen finnes ikke (550 5.1.1 user unknown)"


def test_missing_shows_a_unit_with_only_an_invalid_form_as_to_be_corrected(project, tmp_path):
    """A unit whose only form has problems is «må rettes» with the day it came, how many problems
    are left and each with its cell, and the correction it was sent."""
    wb = _compile(project, tmp_path)
    hf = {r["Enhetskode"]: r for r in _rows(wb["Mangler"])}["HF-U002"]
    assert hf["Status"] == "må rettes"
    assert hf["Skjema mottatt"] == dt.datetime(2020, 12, 1)  # 12:30 UTC on 1 Dec, a date cell
    assert hf["Feil å rette"] == 2 and isinstance(hf["Feil å rette"], int)
    assert hf["Feilene"] == (
        "Skjema!C14: «Antall ansatte» må være et helt tall.; Skjema!C20: Fyll inn datoen for oppfølgingsmøtet."
    )
    assert hf["Sendt til leder"] == "01.12 retting"
    assert hf["Purringer sendt"] == 0


def test_log_says_what_was_wrong_with_each_invalid_version(project, tmp_path):
    """Logg gives every version; an invalid one carries its problems as the leader was told them,
    each with its cell; a valid one none."""
    log = _rows(_compile(project, tmp_path)["Logg"])
    hf = next(r for r in log if r["Enhetskode"] == "HF-U002")
    assert hf["Gyldig"] == "nei"
    assert hf["Feilene"] == "; ".join(f"{p['cell']}: {p['message']}" for p in PROBLEMS)
    assert all(r["Feilene"] is None for r in log if r["Gyldig"] == "ja")


def test_missing_shows_when_an_away_leader_is_back(project, tmp_path):
    """A leader whose out-of-office reply names the day they are back is «borte» until then, and
    Mangler says the day (read at a time before it)."""
    from service.app.operations import Operations
    from service.clock import FixedClock

    config = config_mod.load(project.config, project.env)
    app = App(config, FixedClock(dt.datetime(2020, 12, 8, 9, 0, tzinfo=dt.UTC)))
    try:
        leader = project.units[5].leader_email
        at = T0 + dt.timedelta(hours=9)
        row = app.store.store_inbound(
            app.campaign_id,
            message_id="<away@example.test>",
            folder="INBOX",
            uidvalidity=1,
            uid=9,
            received_at=at,
            sender=leader,
            subject="Fravær",
            raw_path="raw/9.eml",
            sha256=f"{9:064x}",
            now=at,
        )
        detail = {"address": leader, "returns_on": "2020-12-14"}
        decision = Decision("auto-reply", "auto-reply-noted", "Ignorert", "HF-U005", detail)
        app.store.record_decision(app.campaign_id, row, decision, at)
        path, _ = Operations(app).compile(tmp_path / "away.xlsx")
    finally:
        app.close()
    hf = {r["Enhetskode"]: r for r in _rows(openpyxl.load_workbook(path)["Mangler"])}["HF-U005"]
    assert hf["Status"] == "borte" and hf["Tilbake"] == dt.datetime(2020, 12, 14)


def test_flags_are_the_current_versions_flags_only(project, tmp_path):
    """Flagg lists the flags of each unit's current valid version, not of older or invalid ones:
    IE-U000's first version raised three flags, its current one only «hjelp ønsket»."""
    wb = _compile(project, tmp_path)
    flags = _rows(wb["Flagg"])
    help_asked = FORM.field("hjelp_onsket")
    assert [(r["Enhetskode"], r["Felt"], r["Svar"]) for r in flags] == [
        ("IE-U000", help_asked.label.nb, help_asked.choice_label("koordinator", "nb"))
    ]
    assert help_asked.flag is not None and flags[0]["Melding"] == help_asked.flag.message.nb


def test_overview_totals_match_status_json(project, tmp_path):
    """Oversikt's per-faculty and total counts are the ones `status --json` reports."""
    status = json.loads(project.cli("status", "--json").output)
    wb = _compile(project, tmp_path)
    rows = list(wb["Oversikt"].iter_rows(min_row=2, values_only=True))
    want = [*status["faculties"], status["total"]]
    got = [dict(zip(("faculty", "units", "submitted", "valid", "missing"), r[:5], strict=True)) for r in rows]
    assert got == [{**w, "faculty": "Totalt" if w["faculty"] == "total" else w["faculty"]} for w in want]
    assert rows[-1][5] == 33  # 2 of 6: a whole percent, rounded down
    with zipfile.ZipFile(tmp_path / "out.xlsx") as z:  # openpyxl drops charts on load
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())


def test_faculty_restricts_every_sheet(project, tmp_path):
    """--faculty IE leaves only IE units in every sheet."""
    wb = _compile(project, tmp_path, "--faculty", "IE")
    for name in SHEETS[3:]:
        for row in _rows(wb[name]):
            assert str(row["Enhetskode"]).startswith("IE-"), (name, row)
    assert [r[0] for r in wb["Oversikt"].iter_rows(min_row=2, values_only=True)] == ["IE", "Totalt"]
    headers = {r[0]: r for r in wb["Oppsummering"].iter_rows(values_only=True) if r and r[0] == "Svar"}
    assert headers["Svar"][1:] == ("IE", "Totalt", "Andel")  # one faculty's columns only
    assert project.cli("compile", "--faculty", "XX", "-o", str(tmp_path / "x.xlsx")).exit_code != 0


def test_default_output_under_data_dir(project, tmp_path):
    """Without -o the workbook lands in <data_dir>/compiled/<campaign>-YYYYMMDD-HHMM.xlsx."""
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    files = list((tmp_path / "data" / "compiled").glob("aml-2020-*.xlsx"))
    assert len(files) == 1 and len(files[0].stem) == len("aml-2020-20201201-0830")


@pytest.mark.libreoffice
def test_libreoffice_converts_the_workbook_to_pdf(project, tmp_path, lo_workdir):
    """LibreOffice headless opens the workbook and prints it to PDF without complaint."""
    _compile(project, tmp_path)
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
            str(tmp_path / "out.xlsx"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    pdf = lo_workdir / "out.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF"), done.stdout + done.stderr


def test_digest_carries_the_faculty_slice_of_the_workbook_when_configured(tmp_path):
    """mail.digest_workbook = true: each coordinator digest has an .xlsx with only its faculty."""
    import email
    import email.policy
    from io import BytesIO

    from service.app.operations import Operations

    p = new_project(tmp_path, mail={"digest_workbook": True})
    p.setup()
    monday = dt.datetime(2020, 12, 7, 12, 0, tzinfo=dt.UTC)  # a digest day while the campaign runs
    app = App(config_mod.load(p.config, p.env), FixedClock(monday))
    mails = [m for m in Operations(app).digests_due() if m.kind == "coordinator-digest"]
    assert {m.dedupe_key.split(":")[2] for m in mails} == {"IE", "NV", "HF"}
    for mail in mails:
        faculty = mail.dedupe_key.split(":")[2]
        msg = email.message_from_bytes(mail.payload, policy=email.policy.default)
        (att,) = list(msg.iter_attachments())
        assert att.get_filename().endswith(f"-{faculty}-" + att.get_filename().rsplit("-", 1)[1])
        wb = openpyxl.load_workbook(BytesIO(att.get_content()))
        codes = {row[0] for row in wb["Svar"].iter_rows(min_row=2, values_only=True) if row[0]}
        assert codes and all(code.startswith(faculty) for code in codes)
