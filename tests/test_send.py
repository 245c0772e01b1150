"""`skjemapost send` end to end: the outbox, the real STARTTLS+AUTH relay, real Dovecot mailboxes."""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections import Counter

import pytest
from projects import ROOT, SECRET, Project, mail_project

from service.forms.definition import load_form
from service.forms.read import read_form
from service.mail import tokens

pytestmark = pytest.mark.servers
FORM = load_form(ROOT / "forms/oppsummering-og-evaluering.toml")


def inbox(world, address: str) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in world.messages(address)]


def outbox_status(p: Project) -> Counter[str]:
    return Counter(dict(p.query("select status, count(*) from outbox group by status")))


def test_fifty_units_each_get_exactly_their_own_invitation(tmp_path, mail_world):
    """50 invitations, each to the right leader, with that unit's form, reference and language."""
    p = mail_project(tmp_path, mail_world, 50)
    result = p.cli("send")
    assert result.exit_code == 0, result.output
    assert "sent 50, failed 0" in result.output
    secret = SECRET.encode()
    for unit in p.units:
        (msg,) = inbox(mail_world, unit.leader_email)
        ref = tokens.reference(secret, "aml-2020", unit.code)
        assert f"[ref {ref}]" in msg["Subject"]
        (att,) = list(msg.iter_attachments())
        reading = read_form(att.get_content(), FORM)
        assert tokens.read_stamp(secret, reading.stamp).unit_code == unit.code
        assert reading.reference == ref
        text = msg.get_body(("plain",)).get_content()
        greeting = "Dear " if unit.language == "en" else "Hei "
        assert text.startswith(greeting + unit.leader_name)
        assert msg["To"].addresses[0].addr_spec == unit.leader_email
        assert "Auto-Submitted" not in msg  # outreach wants out-of-office replies back
    again = p.cli("send")
    assert "sent 0, failed 0" in again.output and "skipped 50 already invited" in again.output
    assert all(len(mail_world.messages(u.leader_email)) == 1 for u in p.units)


def test_dry_run_sends_nothing(tmp_path, mail_world):
    """send --dry-run lists what would go and leaves the outbox empty."""
    p = mail_project(tmp_path, mail_world, 3)
    out = p.cli("send", "--dry-run").output
    assert out.count("would queue  invitation") == 3 and "nothing was sent" in out
    assert outbox_status(p) == Counter()
    assert all(mail_world.messages(u.leader_email) == [] for u in p.units)


def test_invalid_address_fails_its_row_and_the_rest_are_sent(tmp_path, mail_world):
    """A leader address the server refuses: that row fails with the reason; the others go out."""
    p = mail_project(tmp_path, mail_world, 4)
    units = list(p.units)
    units[1] = units[1].__class__(**{**units[1].__dict__, "leader_email": "no-such-leader@example.test"})
    p.write_roster(units)
    p.cli("roster", "import")
    result = p.cli("send")
    assert result.exit_code == 1
    assert "sent 3, failed 1" in result.output
    assert f"aml-2020:{units[1].code}:invitation" in result.output and "550" in result.output
    assert outbox_status(p) == Counter({"sent": 3, "failed": 1})


def test_a_refused_leader_fails_the_mail_though_the_verneombud_copy_went(tmp_path, mail_world):
    """The leader refused at RCPT, the copied verneombud accepted: the server takes the message
    for the copy, but the mail failed for the one it is for; the leader's address is marked
    failing, so the unit is escalated rather than taken as reached."""
    p = mail_project(tmp_path, mail_world, 3)
    units = list(p.units)
    i = next(n for n, u in enumerate(units) if u.verneombud_email)
    units[i] = units[i].__class__(**{**units[i].__dict__, "leader_email": "no-such-leader@example.test"})
    p.write_roster(units)
    p.cli("roster", "import")
    before = len(mail_world.messages(units[i].verneombud_email))  # the mail world is shared
    result = p.cli("send")
    assert result.exit_code == 1 and "sent 2, failed 1" in result.output
    assert len(mail_world.messages(units[i].verneombud_email)) == before + 1  # the copy went
    assert p.query("select address from address_failures") == [("no-such-leader@example.test",)]
    states = {u["code"]: u["state"] for u in json.loads(p.cli("status", "--units", "--json").output)}
    assert states[units[i].code] == "address-failing"


def test_wrong_password_is_a_clear_error_and_the_queue_stays(tmp_path, mail_world):
    """A wrong SMTP password: names server and user, not the password; a later send goes on."""
    p = mail_project(tmp_path, mail_world, 3, password="wrong-secret-pw")
    result = p.cli("send")
    assert result.exit_code == 3
    assert f"{mail_world.host}:{mail_world.smtp_port}" in result.output and p.service in result.output
    assert "wrong-secret-pw" not in result.output
    assert outbox_status(p) == Counter({"queued": 3})
    p.env["SKJEMAPOST_SMTP_PASSWORD"] = mail_world.password(p.service)
    assert "sent 3, failed 0" in p.cli("send").output


def test_server_down_is_a_clear_error_and_a_later_send_goes_on(tmp_path, mail_world):
    """SMTP unreachable: a clear error, the queue intact; once it is back, send finishes."""
    from harness.mailservers import free_ports

    p = mail_project(tmp_path, mail_world, 3)
    text = p.config.read_text()
    p.config.write_text(text.replace(f"port = {mail_world.smtp_port}", f"port = {free_ports(1)[0]}"))
    result = p.cli("send")
    assert result.exit_code == 3 and "cannot connect to the SMTP server" in result.output
    assert outbox_status(p) == Counter({"queued": 3})
    p.config.write_text(text)
    assert "sent 3, failed 0" in p.cli("send").output


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    """Poll until ``condition()`` holds (an event, not a time); fail after ``timeout``."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("sent_folder", ["Sent", ""], ids=["with-sent-check", "without-check"])
def test_sigkill_in_flight_then_rerun(tmp_path, mail_world, sent_folder, db_url):
    """SIGKILL with one message delivered but unacknowledged, then rerun (on SQLite and on
    PostgreSQL): every unit gets its invitation; with the Sent check no duplicate at all,
    without it only the one in flight."""
    p = mail_project(tmp_path, mail_world, 30, sent_folder=sent_folder, max_connections=1)
    p.use_database(db_url)
    victim = p.units[12]
    mail_world.smtp_hold(30, to=victim.leader_email)
    proc = p.popen("send")
    wait_for(
        lambda: any(
            e.get("event") == "held" and victim.leader_email in e["rcpt_tos"]
            for e in mail_world.smtp_journal()
        ),
        "the held message",
    )
    proc.kill()
    proc.wait(10)
    before = outbox_status(p)
    assert before["sending"] == 1 and before["queued"] > 0 and before["sent"] > 0, before
    result = p.cli("send")
    assert result.exit_code == 0, result.output
    counts = {u.code: len(mail_world.messages(u.leader_email)) for u in p.units}
    assert all(n >= 1 for n in counts.values()), counts
    if sent_folder:
        assert set(counts.values()) == {1}
        assert "1 found already sent" in result.output
        assert len(mail_world.messages(p.service, "Sent")) == 30  # every copy filed
        assert mail_world.messages(p.service) == []
    else:
        assert counts[victim.code] == 2 and sum(counts.values()) == 31
    assert outbox_status(p) == Counter({"sent": 30})
