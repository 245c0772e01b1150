"""The skjemapost command: help, init, check, roster import, form build/check, status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from projects import ROOT, new_project

from service.cli.main import cli


@pytest.fixture
def project(tmp_path):
    p = new_project(tmp_path)
    p.setup()
    return p


def test_help_lists_every_command_with_a_description():
    """`skjemapost --help` lists the commands, each with a one-line description."""
    out = CliRunner().invoke(cli, ["--help"]).output
    for command in (
        "init",
        "check",
        "roster",
        "form",
        "status",
        "send",
        "preview",
        "poll",
        "review",
        "remind",
        "digest",
        "simulate",
        "run",
        "compile",
        "serve",
        "user",
        "demo",
        "purge",
    ):
        line = next((ln for ln in out.splitlines() if ln.strip().startswith(command + " ")), "")
        assert len(line.split(None, 1)) == 2, f"{command} has no description in:\n{out}"


def test_every_command_help_has_an_example():
    """Each command's --help carries an example line."""
    for args in (
        ["init"],
        ["check"],
        ["roster", "import"],
        ["form", "build"],
        ["form", "check"],
        ["status"],
        ["send"],
        ["preview"],
        ["poll"],
        ["review"],
        ["remind"],
        ["digest"],
        ["simulate"],
        ["run"],
        ["compile"],
        ["serve"],
        ["user", "add"],
        ["user", "list"],
        ["user", "remove"],
        ["demo"],
        ["purge"],
    ):
        out = CliRunner().invoke(cli, [*args, "--help"]).output
        assert "Example" in out and "skjemapost " in out, args


def test_python_dash_m_service_is_the_same_command():
    """`python -m service --help` works like `skjemapost --help`."""
    out = subprocess.run(
        [sys.executable, "-m", "service", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "roster" in out and "status" in out


def test_config_with_three_mistakes_exits_2_naming_each_key(tmp_path):
    """A config with three mistakes: exit 2 and every key path in the message."""
    p = new_project(
        tmp_path,
        smtp={"host": "127.0.0.1", "port": 70000, "tls": "ssl"},
        mail={"from_address": "not an address"},
    )
    result = CliRunner().invoke(cli, ["--config", str(p.config), "status"], env=p.env)
    assert result.exit_code == 2
    for key in ("smtp.port", "smtp.tls", "mail.from_address"):
        assert key in result.output


def test_init_is_idempotent_and_status_counts_are_real(project):
    """init twice is fine; status --json reports every faculty with zero submissions."""
    assert "already up to date" in project.cli("init").output
    doc = json.loads(project.cli("status", "--json").output)
    assert doc["campaign"] == "aml-2020"
    assert {f["faculty"]: f["units"] for f in doc["faculties"]} == {"HF": 2, "IE": 2, "NV": 2}
    assert doc["total"] == {"faculty": "total", "units": 6, "submitted": 0, "valid": 0, "missing": 6}
    table = project.cli("status").output
    assert "total" in table and "IE" in table


def test_status_before_init_says_what_to_do(tmp_path):
    """status on a database never set up: a clear 'run skjemapost init', exit 1."""
    p = new_project(tmp_path)
    result = p.cli("status")
    assert result.exit_code == 1 and "skjemapost init" in result.output


def test_bad_roster_is_rejected_whole_with_rows_and_columns(project):
    """A roster with bad rows: each row and column reported, exit 2, nothing imported."""
    bad = project.dir / "bad.csv"
    bad.write_text(
        "unit_code;unit_name;faculty;leader_name;leader_email;language\n"
        "Z-1;Ny enhet;IE;Ny;ny@example.test;nb\n"
        "Z-2;Feil;IE;Feil;feil@;nb\n"
        "Z-3;Feil språk;IE;Feil;f@example.test;sv\n",
        encoding="utf-8",
    )
    result = project.cli("roster", "import", str(bad))
    assert result.exit_code == 2
    assert "row 3, column E «leader_email»" in result.output
    assert "row 4, column F «language»" in result.output
    listed = project.cli("roster", "list").output
    assert "Z-1" not in listed and len(listed.strip().splitlines()) == 6


def test_reimport_reports_added_changed_removed(project):
    """A re-import names what was added, changed and removed; removed units stay listed with --all."""
    units = list(project.units)
    gone = units.pop()
    units[0] = units[0].__class__(**{**units[0].__dict__, "leader_email": "new.leader@example.test"})
    project.write_roster(units)
    out = project.cli("roster", "import").output
    assert f"removed (deactivated) (1): {gone.code}" in out
    assert f"changed {units[0].code}: leader_email" in out
    assert gone.code not in project.cli("roster", "list").output
    assert gone.code in project.cli("roster", "list", "--all").output


def test_form_build_for_a_unit(project, tmp_path):
    """form build writes the unit's workbook with its code filled in and the sheet protected."""
    unit = project.units[2]
    out = tmp_path / "f.xlsx"
    result = project.cli("form", "build", "--unit", unit.code, "-o", str(out))
    assert result.exit_code == 0, result.output
    wb = openpyxl.load_workbook(out)
    values = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert unit.code in values and unit.name in values


def test_form_build_for_unknown_unit_says_so(project, tmp_path):
    """form build --unit NOPE: 'unknown unit', non-zero exit, no file."""
    result = project.cli("form", "build", "--unit", "NOPE", "-o", str(tmp_path / "x.xlsx"))
    assert result.exit_code != 0 and "unknown unit 'NOPE'" in result.output
    assert not (tmp_path / "x.xlsx").exists()


def test_form_build_all_writes_one_file_per_active_unit(project, tmp_path):
    """form build --all writes every active unit's form into the folder."""
    result = project.cli("form", "build", "--all", "-o", str(tmp_path / "forms"))
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (tmp_path / "forms").iterdir()) == sorted(u.code for u in project.units)


def test_form_check_reports_unit_and_every_problem(project, tmp_path):
    """form check on an empty form: the unit is recognised by its stamp and the problems listed."""
    unit = project.units[0]
    path = tmp_path / "blank.xlsx"
    project.cli("form", "build", "--unit", unit.code, "-o", str(path))
    result = project.cli("form", "check", str(path), "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["unit"] == unit.code and doc["matched_by"] == "hidden stamp"
    assert doc["valid"] is False and doc["problems"]
    assert all(p["cell"] for p in doc["problems"])


def test_check_reports_the_missing_secret(tmp_path):
    """check without the token secret in the environment names the variable and exits 2."""
    p = new_project(tmp_path)
    p.env = {}
    result = p.cli("check")
    assert result.exit_code == 2 and "SKJEMAPOST_SECRET" in result.output


def test_check_asks_for_a_strong_token_secret(tmp_path):
    """`change-me` would let anyone forge a unit's reference: check names the variable, says how
    long it is and how to make a good one, and exits 2."""
    p = new_project(tmp_path)
    p.env = {"SKJEMAPOST_SECRET": "change-me"}
    result = p.cli("check")
    assert result.exit_code == 2
    assert "SKJEMAPOST_SECRET: only 9 characters; use at least 16" in result.output
    assert "secrets.token_urlsafe(32)" in result.output


def test_check_passes_on_a_good_setup(project):
    """check on a set-up project says what it found and 'all good'."""
    result = project.cli("check")
    assert result.exit_code == 0, result.output
    assert "6 units in 3 faculties" in result.output and "all good" in result.output


def test_check_reports_the_web_page_users_and_their_problems(project):
    """The web page is optional: no users file is only a fact. With users, check lists them and
    names a coordinator of an unknown faculty and a missing session key."""
    from service.web.users import add_user

    result = project.cli("check")
    assert result.exit_code == 0 and "no users file" in result.output
    add_user(project.dir / "users.toml", "hr", "hr", None, "pw-1234567890")
    add_user(project.dir / "users.toml", "xx", "coordinator", "XX", "pw-1234567890")
    result = project.cli("check")
    assert result.exit_code == 2
    assert "2 user(s)" in result.output and "'xx' coordinates faculty 'XX'" in result.output
    assert "SKJEMAPOST_WEB_SECRET: environment variable is not set" in result.output
    project.env["SKJEMAPOST_WEB_SECRET"] = "s" * 20
    assert "SKJEMAPOST_WEB_SECRET" not in project.cli("check").output


def test_example_config_is_complete(tmp_path):
    """The shipped example config and roster pass `check` once init has run."""
    example = Path(ROOT / "config/skjemapost.example.toml").read_text()
    cfg = tmp_path / "config" / "skjemapost.toml"
    cfg.parent.mkdir()
    cfg.write_text(
        example.replace('roster = "roster.example.csv"', f'roster = "{ROOT}/config/roster.example.csv"')
        .replace('form = "../forms/', f'form = "{ROOT}/forms/')
        .replace('templates = "../templates/email"', f'templates = "{ROOT}/templates/email"')
    )
    env = {"SKJEMAPOST_SECRET": "x" * 32}
    assert CliRunner().invoke(cli, ["--config", str(cfg), "init"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["--config", str(cfg), "check"], env=env)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "kind",
    [
        "leader-invitation",
        "leader-reminder-before",
        "leader-reminder-after",
        "escalation",
        "leader-correction",
        "coordinator-digest",
        "hr-digest",
    ],
)
def test_preview_writes_eml_and_html_for_every_kind(project, tmp_path, kind):
    """preview KIND writes an .eml that parses and an .html with the unit's name; nothing is queued."""
    import email
    import email.policy

    unit = project.units[0]
    result = project.cli(
        "--as-of", "2020-12-09T10:00", "preview", kind, "--unit", unit.code, "-o", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    eml = next(tmp_path.glob("*.eml"))
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] and msg.get_body(("html",)) is not None
    html = next(tmp_path.glob("*.html")).read_text(encoding="utf-8")
    assert (unit.faculty if "digest" in kind else unit.name) in html
    assert json.loads(project.cli("status", "--json").output)["total"]["submitted"] == 0


def test_preview_of_a_receipt_needs_a_registered_form(project, tmp_path):
    """preview leader-receipt for a unit without a valid form says why, exit 2."""
    result = project.cli("preview", "leader-receipt", "--unit", project.units[0].code, "-o", str(tmp_path))
    assert result.exit_code == 2 and "no valid form registered yet" in result.output


def test_as_of_that_is_not_a_time_names_the_format(project):
    """--as-of tomorrow: a clear error naming the accepted formats."""
    result = project.cli("--as-of", "tomorrow", "status")
    assert result.exit_code == 1 and "YYYY-MM-DD" in result.output


def test_check_reports_a_missing_template(project, tmp_path):
    """check with a templates folder lacking a file names the file, exit 2."""
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(Path(ROOT / "templates/email"), templates)
    (templates / "en" / "leader-receipt.txt").unlink()
    project.config.write_text(
        project.config.read_text().replace(
            f'templates = "{ROOT / "templates/email"}"', f'templates = "{templates}"'
        )
    )
    result = project.cli("check")
    assert result.exit_code == 2 and "en/leader-receipt.txt: missing" in result.output


def _filled_form(project, tmp_path, variant: int = 0) -> tuple[object, bytes]:
    """The first unit's own form, built by `form build` and filled with valid answers."""
    from harness.filling import fill, shipped_form, valid_answers

    unit = project.units[0]
    blank = tmp_path / "blank.xlsx"
    assert project.cli("form", "build", "--unit", unit.code, "-o", str(blank)).exit_code == 0
    return unit, fill(blank.read_bytes(), shipped_form(), valid_answers(variant), unit.language)


def _check(project, path: Path) -> tuple[int, dict]:
    """`form check PATH --json`: the exit code and the document, which must be all of stdout."""
    result = CliRunner().invoke(
        cli, ["--config", str(project.config), "form", "check", str(path), "--json"], env=project.env
    )
    return result.exit_code, json.loads(result.stdout)


def test_form_check_json_names_what_is_wrong_with_a_file_that_is_not_a_readable_form(project, tmp_path):
    """--json prints a JSON document for every outcome: an .xlsb, a PDF and a form of another
    workbook each get a named error code and the advice the sender would get, and exit 1."""
    from test_intake import xlsb

    cases = {
        "skjema.xlsb": (xlsb(), "xlsb", ".xlsb"),
        "skjema.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 8, "not_spreadsheet", "PDF"),
        "annet.xlsx": (_other_workbook(), "wrong_form", "not the form"),
    }
    for name, (data, code, said) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        exit_code, doc = _check(project, path)
        assert exit_code == 1, name
        assert doc["error"]["code"] == code and said in doc["error"]["message"], doc
        assert doc["valid"] is False and doc["unit"] is None and doc["answers"] == {}
    text = project.cli("form", "check", str(tmp_path / "skjema.xlsb"))
    assert text.exit_code == 1 and "not readable as the form (xlsb)" in text.output


def _other_workbook() -> bytes:
    """A readable .xlsx that is not our form."""
    from io import BytesIO

    wb = openpyxl.Workbook()
    wb.active["A1"] = "Budsjett 2021"
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def test_form_check_converts_an_ods_as_poll_does(project, tmp_path, lo_workdir):
    """A filled form saved as .ods by LibreOffice: `form check` converts it like `poll` and finds
    the same unit and answers as in the .xlsx it came from."""
    from test_intake import save_as

    unit, data = _filled_form(project, tmp_path)
    (tmp_path / "skjema.xlsx").write_bytes(data)
    (tmp_path / "skjema.ods").write_bytes(save_as(data, "ods"))
    exit_xlsx, as_xlsx = _check(project, tmp_path / "skjema.xlsx")
    exit_ods, as_ods = _check(project, tmp_path / "skjema.ods")
    assert (as_xlsx["format"], as_xlsx["converted"]) == ("xlsx", False)
    assert (as_ods["format"], as_ods["converted"], as_ods["error"]) == ("ods", True, None), as_ods
    assert as_ods["unit"] == unit.code and as_ods["answers"]
    same = ("unit", "matched_by", "reference", "stamp_found", "answers", "problems", "valid")
    assert exit_ods == exit_xlsx and {k: as_ods[k] for k in same} == {k: as_xlsx[k] for k in same}


@pytest.mark.servers
@pytest.mark.parametrize("rerun", ["remind", "run-cycle"])
def test_after_an_interrupted_remind_the_next_one_counts_what_it_sent(tmp_path, mail_world, rerun):
    """`remind` killed mid-send (one reminder held by the server, delivered but unanswered) leaves
    the rest queued. The next `remind` sends them first and says so: what the earlier run left,
    the one found already sent after the interruption, and in all what went out, never a bare
    "sent 0". `run`'s cycle log counts the same. Every leader gets one reminder."""
    import datetime as dt

    from projects import mail_project
    from test_send import outbox_status, wait_for

    from service.app.operations import Operations
    from service.app.wiring import App
    from service.clock import FixedClock
    from service.config import settings as config_mod
    from service.jobs.poll import StopFlag

    p = mail_project(tmp_path, mail_world, 30, sent_folder="Sent", max_connections=1)
    assert p.cli("--as-of", "2020-11-23T09:00", "send").exit_code == 0
    victim = p.units[12]
    mail_world.smtp_hold(30, to=victim.leader_email)
    proc = p.popen("--as-of", "2020-12-02T10:00", "remind")
    wait_for(
        lambda: (
            proc.poll() is not None
            or any(
                e.get("event") == "held" and victim.leader_email in e["rcpt_tos"]
                for e in mail_world.smtp_journal()
            )
        ),
        "the held reminder",
    )
    proc.kill()
    proc.wait(10)
    before = outbox_status(p)
    left = before["queued"]
    assert before["sending"] == 1 and left > 0, before
    digests = 0
    if rerun == "remind":
        out = p.cli("--as-of", "2020-12-02T10:00", "remind").output
        assert f"left in the queue by an earlier run: sent {left}, failed 0" in out, out
        assert "after an interruption: 1 found already sent, 0 sent again" in out
        assert "0 due, 0 queued, sent 0, failed 0" in out  # this run's own reminders: none new
        assert f"in all: sent {left}, failed 0, deferred 0" in out
    else:
        app = App(config_mod.load(p.config, p.env), FixedClock(dt.datetime(2020, 12, 2, 9, 0, tzinfo=dt.UTC)))
        result = Operations(app).cycle(StopFlag())
        app.close()
        digests = result.get("digests", 0)  # the cycle's own, when it is their day: counted too
        assert (result["sent"], result["sent_left_over"], result["failed"]) == (left + digests, left, 0), (
            result
        )
        assert (result["found_already_sent"], result["sent_again"]) == (1, 0), result
    assert outbox_status(p) == Counter({"sent": 60 + (digests if rerun == "run-cycle" else 0)})
    assert {u.code: len(mail_world.messages(u.leader_email)) for u in p.units} == {u.code: 2 for u in p.units}
