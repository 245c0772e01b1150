"""`skjemapost demo`: the whole campaign against the embedded servers, and the servers themselves.

The demo runs once per module, in-process through the CLI (a spy keeps the ``DemoResult`` the
command got), and each test checks one promise of it against its printed output, its folder and
its database.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import select
import smtplib
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from email.message import EmailMessage
from http.cookiejar import CookieJar

import openpyxl
import pytest
from click.testing import CliRunner
from imap_tools import AND, MailBoxUnencrypted

from service.app.setup import Setup
from service.app.wiring import App
from service.cli.main import cli
from service.config import settings as config_mod
from service.demo import campaign as demo
from service.demo.servers import DemoServers
from service.mail.classifier import classify
from service.mail.parser import parse


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """`skjemapost demo --dir TMP`, run once: (CLI result, DemoResult, App on the demo's DB)."""
    folder = tmp_path_factory.mktemp("demo") / "demo"
    kept = []

    def spy(*args, **kwargs):
        kept.append(real(*args, **kwargs))
        return kept[-1]

    real = demo.run_demo
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "run_demo", spy)  # cli_demo imports it when the command runs
        out = CliRunner().invoke(cli, ["demo", "--dir", str(folder)])
    assert out.exit_code == 0, out.output + repr(out.exception)
    result = kept[0]
    app = App(config_mod.load(folder / "skjemapost.toml", result.environ))
    yield out, result, app
    app.close()


def went_out(app):
    """Every outbox row that was sent (a bounced one was sent, then bounced)."""
    return app.store.outbox_rows(app.campaign_id, ["sent", "bounced"])


def printed_status(output: str) -> dict[str, tuple[int, ...]]:
    """The rows of the status table the demo printed: faculty -> (units, submitted, valid, missing)."""
    rows = re.findall(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+%$", output, re.M)
    return {r[0]: tuple(int(n) for n in r[1:]) for r in rows}


def test_the_demo_exits_0_and_says_where_everything_is(ran):
    """One line per simulated day, then the workbook, the .eml folder and the loopback note."""
    out, result, _ = ran
    days = re.findall(r"^\w{3} \d\d\.\d\d\.2020  ", out.output, re.M)
    assert len(days) == 30  # Mon 23.11 to the escalation on Tue 22.12
    first = next(ln for ln in out.output.splitlines() if ln.startswith("Mon 23.11.2020"))
    assert "20 invitations sent" in first and "1 bounce" in first and "1 out-of-office" in first
    # the two silent units, the bounced one (its address fails) and the form never corrected
    assert re.search(r"^Tue 22\.12\.2020  valid 16/20  4 escalations", out.output, re.M)
    assert f"workbook:   {result.workbook}" in out.output and result.workbook.is_file()
    assert f"{result.eml_dir}/ ({result.sent} .eml files" in out.output
    assert "no mail left the machine" in out.output
    assert re.search(r"Done in \d+\.\d s", out.output)


def test_the_workbook_holds_the_numbers_the_demo_printed(ran):
    """Oversikt in the workbook = the printed status table = App.status() of the demo's database."""
    out, result, app = ran
    printed = printed_status(out.output)
    stored = {p.faculty: (p.units, p.submitted, p.valid, p.missing) for p in Setup(app).status()}
    book = openpyxl.load_workbook(result.workbook)
    overview = {
        row[0]: tuple(row[1:5]) for row in book["Oversikt"].iter_rows(min_row=2, values_only=True) if row[0]
    }
    totals = overview.pop("Totalt")
    assert stored == {f: overview[f] for f in stored} == {f: printed[f] for f in stored}
    assert totals == printed["total"] == (20, 17, 16, 4)
    answers = [row for row in book["Svar"].iter_rows(min_row=2, values_only=True) if row[0]]
    assert len(answers) == 20
    assert sum(1 for row in answers if row[5] == "levert") == printed["total"][2]


def test_every_message_that_went_out_is_an_eml_file(ran):
    """The .eml folder holds one file per sent outbox row, the same Message-IDs, nothing else."""
    _, result, app = ran
    rows = went_out(app)
    assert not app.store.outbox_rows(app.campaign_id, ["queued", "sending", "failed"])
    files = sorted(result.eml_dir.glob("*.eml"))
    ids = sorted(parsed(f.read_bytes())["Message-ID"] for f in files)
    assert len(files) == len(rows) == result.sent
    assert ids == sorted(r.message_id for r in rows)


def test_the_out_of_office_reply_gets_no_answer(ran):
    """The away leader's autoreply is noted, never answered: they get outreach, then one receipt
    for the form they send when back."""
    _, _, app = ran
    away = app.store.unit(app.campaign_id, demo.AWAY[0])
    kinds = [r.kind for r in went_out(app) if r.unit_code == away.code and r.kind.startswith("leader-")]
    assert kinds == ["leader-invitation", "leader-reminder-before", "leader-receipt"]
    raws = [p.read_bytes() for p in (app.config.storage.data_dir / "raw").rglob("*") if p.is_file()]
    auto = [
        m
        for m in map(parsed, raws)
        if m["Auto-Submitted"] == "auto-replied" and away.leader_email in str(m["From"])
    ]
    assert len(auto) == 1
    answered = [r for r in went_out(app) if auto[0]["Message-ID"] in (parsed(r.payload)["In-Reply-To"] or "")]
    assert answered == []


def test_the_bounce_shows_in_status_units(ran):
    """The unit whose leader address does not exist shows the 5.1.1 bounce, and got no reminders."""
    _, result, app = ran
    out = CliRunner().invoke(
        cli, ["--config", str(result.folder / "skjemapost.toml"), "status", "--units"], env=result.environ
    )
    line = next(ln for ln in out.output.splitlines() if ln.startswith(demo.BOUNCES))
    assert "bjorn.aesoy@example.edu: 550 5.1.1" in line
    rows = [(r.kind, r.status) for r in went_out(app) if r.unit_code == demo.BOUNCES]
    # nothing more to the leader; the superior leader and coordinator are told on the escalation day
    assert rows == [("leader-invitation", "bounced"), ("escalation", "sent")]


def test_corrections_go_to_the_forms_with_mistakes(ran):
    """Each form with mistakes got a correction; those fixed later got a receipt after it."""
    _, _, app = ran
    rows = went_out(app)
    corrected = {r.unit_code for r in rows if r.kind == "leader-correction"}
    assert corrected == {code for _, code, what in demo.REPLIES if what == "mistakes"}
    for code in corrected:
        answers = ("leader-correction", "leader-receipt")
        kinds = [r.kind for r in rows if r.unit_code == code and r.kind in answers]
        fixed = any(c == code and w == "valid" for _, c, w in demo.REPLIES)
        assert kinds == (["leader-correction", "leader-receipt"] if fixed else ["leader-correction"]), code


def test_the_silent_units_are_escalated(ran):
    """Units that never reply get every reminder, the one after the deadline, then the escalation."""
    _, _, app = ran
    rows = went_out(app)
    for code in demo.SILENT:
        assert [r.kind for r in rows if r.unit_code == code] == [
            "leader-invitation",
            "leader-reminder-before",
            "leader-reminder-before",
            "leader-reminder-before",
            "leader-reminder-after",
            "escalation",
        ], code


def test_the_summary_shows_each_state_and_agrees_with_status_and_the_workbook(ran):
    """The demo's "where each unit stands" lines = `status --units --json` = the «Mangler» sheet."""
    out, result, _ = ran
    printed: dict[str, str] = {}
    for stage, codes in re.findall(
        r"^  ([a-z-]+) \(\d+\): (.+)$", block(out.output, "Where each unit"), re.M
    ):
        if not stage.endswith("notice"):
            printed |= {code: stage for code in codes.split(", ")}
    assert printed[demo.BOUNCES] == "address-failing"
    assert printed["HF-IMU"] == "needs-correction"  # sent with mistakes, never fixed
    assert {printed[c] for c in demo.SILENT} == {"invited"}
    status = CliRunner().invoke(
        cli,
        [
            "--config",
            str(result.folder / "skjemapost.toml"),
            "--as-of",
            "2020-12-22T12:00",
            "status",
            "--units",
            "--json",
        ],
        env=result.environ,
    )
    assert {row["code"]: row["state"] for row in json.loads(status.output)} == printed
    book = openpyxl.load_workbook(result.workbook, read_only=True)
    rows = list(book["Mangler"].iter_rows(values_only=True))
    words = {
        "address-failing": "adresse virker ikke",
        "needs-correction": "må rettes",
        "invited": "ikke sendt",
    }
    status_col = list(rows[0]).index("Status")
    assert {r[0]: r[status_col] for r in rows[1:] if r[0]} == {
        c: words[s] for c, s in printed.items() if s != "valid"
    }
    assert "challenges-notice" in out.output and "help-notice" in out.output


def block(output: str, starts: str) -> str:
    """The summary's lines from the one that starts with ``starts`` to the next unindented one."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(starts))
    end = next((i for i in range(first + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return "\n".join(lines[first + 1 : end])


def status_units(result) -> list[dict]:
    out = CliRunner().invoke(
        cli,
        [
            "--config",
            str(result.folder / "skjemapost.toml"),
            "--as-of",
            "2020-12-22T12:00",
            "status",
            "--units",
            "--json",
        ],
        env=result.environ,
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


# the summary's groups, as the co-signature's stages say them
GROUPS = {"confirmed": {"confirmed"}, "disputed": {"disputed"}, "did not answer": {"pending"}}


def test_the_summary_says_who_confirmed_who_disputed_and_who_did_not_answer(ran):
    """Every unit with a valid form is in one of the summary's co-signature groups, as
    `status --units --json` and the workbook's «Svar» have it; the disputing verneombud's words
    are printed as they wrote them; the silent one's unit got one reminder."""
    out, result, _ = ran
    printed: dict[str, str] = {}
    for group, listed in re.findall(
        r"^  ([a-z ]+) \(\d+\): (.+)$", block(out.output, "The verneombud"), re.M
    ):
        printed |= dict.fromkeys(re.findall(r"\b[A-Z]{2}-[A-Z]{3}\b", listed), group)
    status = {row["code"]: row for row in status_units(result)}
    valid = {code for code, row in status.items() if row["valid"]}
    assert set(printed) == valid
    for code, group in printed.items():
        stage = status[code]["cosign"]["stage"]
        assert stage in GROUPS.get(group, {"not-asked", "no-address"}), (code, group, stage)
    assert printed[demo.DISPUTES[0]] == "disputed" and printed[demo.NEVER_ANSWERS] == "did not answer"
    assert printed[demo.NO_VERNEOMBUD] == "not asked"
    assert f"{demo.NO_VERNEOMBUD} (no verneombud address in the roster)" in out.output
    assert {c for c, g in printed.items() if g == "confirmed"} == valid - {
        demo.DISPUTES[0],
        demo.NEVER_ANSWERS,
        demo.NO_VERNEOMBUD,
    }
    words = status[demo.DISPUTES[0]]["cosign"]["words"]
    assert " ".join(words.split()) == demo.DISPUTES[1]
    assert f"{demo.DISPUTES[0]} (randi.holm@example.edu): «{demo.DISPUTES[1]}»" in out.output
    assert status[demo.NEVER_ANSWERS]["cosign"]["reminded_at"].startswith("2020-12-18")

    book = openpyxl.load_workbook(result.workbook, read_only=True)
    rows = list(book["Svar"].iter_rows(values_only=True))
    head = list(rows[0])
    i, j = head.index("Verneombudets bekreftelse"), head.index("Verneombudets kommentar")
    svar = {r[0]: (r[i], r[j]) for r in rows[1:] if r[0] in valid}
    word = {"confirmed": "bekreftet", "disputed": "har kommentar", "did not answer": "venter på svar"}
    assert {c: v[0] for c, v in svar.items()} == {
        c: word.get(g, "ikke spurt: mangler adresse") for c, g in printed.items()
    }
    assert svar[demo.DISPUTES[0]][1] == words
    assert {c for c, v in svar.items() if v[1]} == {demo.DISPUTES[0]}


def test_status_units_shows_each_units_cosignature_as_its_json_does(ran):
    """The text table's co-signature column says what `status --units --json` says."""
    _, result, _ = ran
    out = CliRunner().invoke(
        cli,
        [
            "--config",
            str(result.folder / "skjemapost.toml"),
            "--as-of",
            "2020-12-22T12:00",
            "status",
            "--units",
        ],
        env=result.environ,
    )
    lines = out.output.splitlines()
    column = lines[1].index("cosign")
    shown = {ln.split()[0]: ln[column:].split()[0] for ln in lines[2:]}
    assert shown == {row["code"]: row["cosign"]["stage"] for row in status_units(result)}
    assert shown[demo.DISPUTES[0]] == "disputed" and shown[demo.NO_VERNEOMBUD] == "no-address"


def test_each_verneombud_got_the_mails_their_answer_calls_for(ran):
    """One request per unit with a valid form (none without an address), then the
    acknowledgement of their answer; the silent verneombud one reminder and nothing else; the
    disputing one's leader and coordinator told once; no verneombud got anything twice."""
    _, result, app = ran
    rows = went_out(app)
    units = {u.code: u for u in app.store.units(app.campaign_id)}
    for code in result.cosign:
        to_vo = [r.kind for r in rows if r.unit_code == code and r.kind.startswith("verneombud-")]
        if code == demo.NO_VERNEOMBUD:
            assert to_vo == [] and units[code].verneombud_email == "", code
        elif code == demo.NEVER_ANSWERS:
            assert to_vo == ["verneombud-request", "verneombud-reminder"], code
        else:
            assert to_vo == ["verneombud-request", "verneombud-ack"], code
            (ack,) = [r for r in rows if r.unit_code == code and r.kind == "verneombud-ack"]
            assert ack.recipients == (units[code].verneombud_email,), code
    comment = [
        (r.kind, r.recipients)
        for r in rows
        if r.kind in ("leader-cosign-comment", "coordinator-cosign-notice")
    ]
    nv = units[demo.DISPUTES[0]]
    assert sorted(comment) == [
        ("coordinator-cosign-notice", ("ola.hansen@example.edu",)),
        ("leader-cosign-comment", (nv.leader_email,)),
    ]
    ids = [r.message_id for r in rows]
    assert len(ids) == len(set(ids))


def test_the_service_inbox_is_empty_at_the_end(ran):
    """Every message that reached the service's INBOX was moved to its folder."""
    _, result, app = ran
    assert result.mailbox["INBOX"] == 0
    folders = app.config.imap.folders
    assert result.mailbox[folders.processed] >= 20 and result.mailbox[folders.ignored] == 1  # the autoreply


def test_a_folder_that_is_not_a_demo_is_never_replaced(tmp_path):
    """--dir pointing at someone's files stops with a clear error and touches nothing."""
    (tmp_path / "thesis.tex").write_text("precious")
    out = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert out.exit_code == 2 and "is not a skjemapost demo folder" in out.output
    assert (tmp_path / "thesis.tex").read_text() == "precious"


# -- the embedded servers ---------------------------------------------------------------------


@pytest.fixture
def world(tmp_path):
    users = {
        "service@example.edu": "service-pw",
        "leader@example.edu": "leader-pw",
        "away@example.edu": "away-pw",
    }
    with DemoServers(users, tmp_path / "eml", away={"away@example.edu": "Away until Monday."}) as w:
        yield w


def mail(to: str, subject: str = "Invitation") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Service <service@example.edu>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<0001.skjemapost@example.edu>"
    msg.set_content("Please fill in the form.")
    msg.add_attachment(
        b"PK\x03\x04 not really a form", maintype="application", subtype="octet-stream", filename="form.xlsx"
    )
    return msg


def test_smtp_delivers_into_the_imap_inbox_and_saves_the_eml(world):
    """A message sent over SMTP is fetched over IMAP (imap-tools) with its attachment, and saved."""
    with smtplib.SMTP("127.0.0.1", world.smtp_port) as smtp:
        smtp.send_message(mail("leader@example.edu"), from_addr="service@example.edu")
    with MailBoxUnencrypted("127.0.0.1", world.imap_port).login("leader@example.edu", "leader-pw") as box:
        (got,) = list(box.fetch(AND(all=True), mark_seen=False))
        box.folder.create("Processed")
        box.move(got.uid, "Processed")
        assert box.uids() == []
    assert got.subject == "Invitation" and got.attachments[0].payload == b"PK\x03\x04 not really a form"
    assert [p.name for p in world.saved] == ["0001-leader@example.edu.eml"]
    assert parsed(world.saved[0].read_bytes())["Subject"] == "Invitation"
    assert len(world.messages("leader@example.edu", "Processed")) == 1


def test_an_unknown_recipient_bounces_to_the_envelope_sender(world):
    """The known recipient gets the mail; the sender gets a DSN the classifier reads as a bounce
    of the unknown one, about our Message-ID."""
    with smtplib.SMTP("127.0.0.1", world.smtp_port) as smtp:
        smtp.send_message(mail("leader@example.edu, gone@example.edu"), from_addr="service@example.edu")
    assert len(world.messages("leader@example.edu")) == 1
    (dsn,) = world.messages("service@example.edu")
    c = classify(parse(dsn))
    assert c.kind == "bounce" and c.failed_recipients == ("gone@example.edu",)
    assert c.original_message_id == "<0001.skjemapost@example.edu>" and c.status == ("5.1.1",)
    assert world.bounced == ["gone@example.edu"]


def test_an_away_user_answers_once_per_sender_and_never_a_machine(world):
    """The autoresponder answers the first mail from a sender, not the second, not a bounce."""
    with smtplib.SMTP("127.0.0.1", world.smtp_port) as smtp:
        smtp.send_message(mail("away@example.edu"), from_addr="service@example.edu")
        smtp.send_message(mail("away@example.edu", "Reminder"), from_addr="service@example.edu")
    (auto,) = world.messages("service@example.edu")
    assert classify(parse(auto)).kind == "auto-reply"
    assert parsed(auto)["Subject"] == "Automatic reply: Invitation"
    assert len(world.messages("away@example.edu")) == 2


def test_deliver_refuses_an_unknown_user(world):
    """The MX path says False for an address it does not have (and saves nothing as sent)."""
    assert world.deliver("x@example.org", "nobody@example.edu", b"Subject: hi\n\nhello\n") is False
    assert world.deliver("x@example.org", "leader@example.edu", b"Subject: hi\n\nhello\n") is True
    assert world.saved == []


def test_stop_closes_the_ports(tmp_path):
    """After stop() nothing listens on the servers' ports any more."""
    servers = DemoServers({"a@example.edu": "pw"}, tmp_path).start()
    port = servers.smtp_port
    servers.stop()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)


# -- --serve -------------------------------------------------------------------------------------


def test_serve_keeps_the_web_page_up_with_the_printed_logins(tmp_path):
    """`demo --serve`: after the demo, the printed HR login opens the dashboard with its numbers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "demo",
            "--dir",
            str(tmp_path / "d"),
            "--serve",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while not any(ln.startswith("  hf ") for ln in lines) and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
        output = "".join(lines)
        password = re.search(r"^  hr\s+(\S+)\s+\(hr\)$", output, re.M)
        assert password, output
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        page = ""
        while time.monotonic() < deadline:  # uvicorn binds just after the logins are printed
            try:
                page = opener.open(f"{base}/login", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf, page
        form = urllib.parse.urlencode({"csrf": csrf.group(1), "name": "hr", "password": password.group(1)})
        dashboard = opener.open(f"{base}/login", data=form.encode(), timeout=10).read().decode()
        assert "IE-IEL" in dashboard and "bjorn.aesoy@example.edu" in dashboard
    finally:
        proc.terminate()
        proc.wait(30)


def test_only_the_given_users_can_log_in(world):
    """pymap's built-in demo user (an empty name) is gone: an empty login is refused."""
    import imaplib

    client = imaplib.IMAP4("127.0.0.1", world.imap_port)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            client.login('""', "")  # imaplib quotes the password, not the user name
    finally:
        client.shutdown()
