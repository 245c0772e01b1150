"""Proofs that tests/harness/mailservers.py gives real, working IMAP / SMTP / LMTP servers."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import ssl
import uuid
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import aiosmtplib
import openpyxl
import pytest
from harness import mailservers
from harness.mailservers import MailWorld, MailWorldError, _session_pids, port_open
from imap_tools import AND, MailBox, MailboxLoginError, MailBoxStartTls

pytestmark = pytest.mark.servers

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def make_message(
    to: str | list[str],
    subject: str | None = None,
    sender: str = "service@example.test",
    attachment: bytes | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject or f"test {uuid.uuid4().hex}"
    msg.set_content("Hei,\nher er skjemaet.\n")
    if attachment is not None:
        maintype, subtype = XLSX.split("/")
        msg.add_attachment(attachment, maintype=maintype, subtype=subtype, filename="skjema.xlsx")
    return msg


def xlsx_bytes(value: str) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Skjema"
    ws["A1"] = "Enhet"
    ws["B1"] = value
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def send(world: MailWorld, msg: EmailMessage, user: str = "service@example.test", **kw):
    return asyncio.run(aiosmtplib.send(msg, **{**world.smtp_kwargs(user), **kw}))


def subjects(world: MailWorld, user: str, folder: str = "INBOX") -> list[str]:
    with world.mailbox(user, folder=folder) as mb:
        return [m.subject for m in mb.fetch(mark_seen=False)]


def data_events(world: MailWorld, rcpt: str) -> list[dict]:
    return [e for e in world.smtp_journal() if e["event"] == "data" and rcpt in e["rcpt_tos"]]


# -- IMAP ----------------------------------------------------------------------------------


def test_imap_append_fetch_leaves_message_unseen(mail_world):
    """A message appended over plain IMAP comes back intact and stays unseen after fetch."""
    user = mail_world.new_user("imap")
    msg = make_message(user, "append me")
    with mail_world.mailbox(user) as mb:
        assert mb.append(msg.as_bytes(policy=SMTP_POLICY), "INBOX")[0] == "OK"
        (uid,) = mb.uids()
        fetched = next(mb.fetch(AND(uid=uid), mark_seen=False))
        assert fetched.subject == "append me"
        assert fetched.text.startswith("Hei,")
        assert "\\Seen" not in fetched.flags
        assert mb.uids(AND(seen=False)) == [uid]
    assert len(mail_world.messages(user)) == 1
    with mail_world.mailbox(user) as mb:
        assert mb.uids(AND(seen=False)) == [uid]  # messages() did not mark it seen either


def test_imap_create_nested_folder_and_move(mail_world):
    """Skjemapost/Behandlet can be created and a message moved there out of INBOX."""
    user = mail_world.new_user("move")
    mail_world.deliver(make_message(user, "to be moved"), user)
    with mail_world.mailbox(user) as mb:
        mb.folder.create("Skjemapost/Behandlet")
        (uid,) = mb.uids()
        mb.move(uid, "Skjemapost/Behandlet")
        assert mb.uids() == []
    assert "Skjemapost/Behandlet" in mail_world.folders(user)
    assert subjects(mail_world, user, "Skjemapost/Behandlet") == ["to be moved"]
    assert mail_world.messages(user) == []


def test_imap_wrong_password_is_refused(mail_world):
    """A wrong IMAP password raises MailboxLoginError promptly (no auth penalty)."""
    mb = MailBox(mail_world.host, mail_world.imaps_port, ssl_context=mail_world.ssl_context())
    try:
        with pytest.raises(MailboxLoginError):
            mb.login("service@example.test", "wrong-pw")
    finally:
        mb.client.shutdown()


def test_imaps_implicit_tls_with_verified_certificate(mail_world):
    """IMAPS verifies the world's certificate by IP; an untrusting client is rejected."""
    ctx = mail_world.ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with MailBox(mail_world.host, mail_world.imaps_port, ssl_context=ctx).login(
        "leader1@example.test", mail_world.password("leader1@example.test")
    ) as mb:
        assert isinstance(mb.client.sock, ssl.SSLSocket)
        assert mb.client.sock.getpeercert()["subjectAltName"][-1] == ("IP Address", "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        MailBox(mail_world.host, mail_world.imaps_port, ssl_context=ssl.create_default_context())


def test_imap_starttls(mail_world):
    """STARTTLS on the plain IMAP port upgrades to a verified TLS session before login."""
    ctx = mail_world.ssl_context()
    with MailBoxStartTls(mail_world.host, mail_world.imap_port, ssl_context=ctx).login(
        "leader2@example.test", mail_world.password("leader2@example.test")
    ) as mb:
        assert isinstance(mb.client.sock, ssl.SSLSocket)
        assert mb.client.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert mb.folder.get() == "INBOX"


# -- SMTP relay ----------------------------------------------------------------------------


def test_smtp_send_xlsx_lands_in_dovecot_inbox(mail_world):
    """An .xlsx sent with aiosmtplib (STARTTLS, AUTH) reaches leader1's INBOX byte for byte."""
    payload = xlsx_bytes("Institutt for test")
    subject = f"Skjema {uuid.uuid4().hex}"
    msg = make_message("leader1@example.test", subject, attachment=payload)
    errors, reply = send(mail_world, msg)
    assert errors == {} and "accepted" in reply
    with mail_world.mailbox("leader1@example.test") as mb:
        (got,) = list(mb.fetch(AND(subject=subject), mark_seen=False))
        (att,) = got.attachments
        assert att.filename == "skjema.xlsx"
        assert att.content_type == XLSX
        assert att.payload == payload
        assert openpyxl.load_workbook(io.BytesIO(att.payload))["Skjema"]["B1"].value == ("Institutt for test")
    (event,) = [
        e
        for e in mail_world.smtp_journal()
        if e["event"] == "data"
        and e["rcpt_tos"] == ["leader1@example.test"]
        and e["reply"].startswith("250")
        and e["size"] >= len(payload)
    ]
    assert event["auth_user"] == "service@example.test"


def test_smtp_wrong_password_raises_authentication_error(mail_world):
    """AUTH with a wrong password raises aiosmtplib.SMTPAuthenticationError (535)."""
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as info:
        send(mail_world, make_message("leader1@example.test"), password="wrong-pw")
    assert info.value.code == 535


def test_smtp_requires_starttls_and_auth(mail_world):
    """Without STARTTLS AUTH is not offered, and without AUTH MAIL FROM is refused with 530."""
    msg = make_message("leader1@example.test")
    with pytest.raises(aiosmtplib.SMTPException, match="AUTH"):
        send(mail_world, msg, start_tls=False)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
        send(mail_world, msg, username=None, password=None)
    assert info.value.code == 530


def test_smtp_unknown_recipient_refused_known_delivered(mail_world):
    """An unknown recipient gets 550 at RCPT while the known one in the same send is delivered."""
    known = mail_world.new_user("known")
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.test"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        send(mail_world, make_message(unknown))
    assert [(e.recipient, e.code) for e in info.value.recipients] == [(unknown, 550)]

    errors, _ = send(mail_world, make_message([known, unknown], "half of it"))
    assert list(errors) == [unknown] and errors[unknown][0] == 550
    assert subjects(mail_world, known) == ["half of it"]


def test_add_users_while_running(mail_world):
    """Users added at run time can log in, receive over LMTP and SMTP, and send over SMTP."""
    late = f"late-{uuid.uuid4().hex[:8]}@example.test"
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        send(mail_world, make_message(late))
    assert mail_world.add_users([late, "service@example.test"]) == [late]
    mail_world.deliver(make_message(late, "via lmtp"), late)
    send(mail_world, make_message(late, "via smtp"))
    send(mail_world, make_message("leader2@example.test", sender=late), user=late)
    assert sorted(subjects(mail_world, late)) == ["via lmtp", "via smtp"]


# -- fault injection -----------------------------------------------------------------------


def test_fault_451_then_success_on_retry(mail_world):
    """An injected 451 at DATA fails the first send (nothing delivered); the retry is delivered."""
    rcpt = mail_world.new_user("retry")
    mail_world.smtp_fault(451, to=rcpt)
    msg = make_message(rcpt, "try twice")
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        send(mail_world, msg)
    assert info.value.code == 451
    assert mail_world.messages(rcpt) == []
    assert mail_world.smtp_faults() == []

    send(mail_world, msg)
    assert subjects(mail_world, rcpt) == ["try twice"]
    assert [e["reply"][:3] for e in data_events(mail_world, rcpt)] == ["451", "250"]


def test_fault_554_is_permanent_and_counted(mail_world):
    """count=2 makes two sends answer 554 with nothing delivered; the third is delivered."""
    rcpt = mail_world.new_user("perm")
    mail_world.smtp_fault(554, "5.7.1 Rejected by policy", count=2, to=rcpt)
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            send(mail_world, make_message(rcpt, "rejected"))
        assert info.value.code == 554 and "Rejected by policy" in info.value.message
    assert mail_world.messages(rcpt) == []
    send(mail_world, make_message(rcpt, "accepted"))
    assert subjects(mail_world, rcpt) == ["accepted"]


def test_fault_only_hits_its_recipient(mail_world):
    """A fault limited to one recipient leaves other transactions alone until that one comes."""
    target, other = mail_world.new_user("target"), mail_world.new_user("other")
    mail_world.smtp_fault(451, to=target)
    send(mail_world, make_message(other, "unaffected"))
    assert subjects(mail_world, other) == ["unaffected"]
    assert len(mail_world.smtp_faults()) == 1
    with pytest.raises(aiosmtplib.SMTPDataError):
        send(mail_world, make_message(target))
    assert mail_world.smtp_faults() == []


def test_fault_at_rcpt(mail_world):
    """A 452 injected at RCPT refuses that recipient only; the message reaches the others."""
    full, fine = mail_world.new_user("full"), mail_world.new_user("fine")
    mail_world.smtp_fault(452, "4.2.2 Mailbox full", stage="rcpt", to=full)
    errors, _ = send(mail_world, make_message([full, fine], "partial"))
    assert errors[full][0] == 452
    assert mail_world.messages(full) == []
    assert subjects(mail_world, fine) == ["partial"]


def test_fault_drop_connection(fresh_mail_world):
    """A dropped connection at DATA raises SMTPServerDisconnected; the next send works."""
    world = fresh_mail_world
    world.smtp_drop()
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        send(world, make_message("leader2@example.test", "dropped"))
    assert world.messages("leader2@example.test") == []
    send(world, make_message("leader2@example.test", "after the drop"))
    assert subjects(world, "leader2@example.test") == ["after the drop"]


# -- lifecycle -----------------------------------------------------------------------------


def test_fresh_world_is_isolated(fresh_mail_world, mail_world):
    """A fresh world has its own dir, ports and empty mailboxes, apart from the session one."""
    assert fresh_mail_world.dir != mail_world.dir
    assert fresh_mail_world.imap_port != mail_world.imap_port
    assert fresh_mail_world.smtp_port != mail_world.smtp_port
    assert fresh_mail_world.messages("leader1@example.test") == []
    assert oct(os.stat(fresh_mail_world.dir).st_mode & 0o777) == "0o755"


def test_stop_removes_processes_ports_and_dir():
    """stop() leaves no Dovecot or relay process, no listening port and no instance dir."""
    world = MailWorld(["a@example.test"]).start()
    ports = [world.imap_port, world.imaps_port, world.lmtp_port, world.smtp_port]
    sid, relay_pid, d = world._dovecot.pid, world._relay.pid, world.dir
    assert len(_session_pids(sid)) > 1
    world.stop()
    assert _session_pids(sid) == []
    assert not Path(f"/proc/{relay_pid}").exists()
    assert not d.exists()
    assert not any(port_open(p) for p in ports)


def test_start_failure_is_a_clear_error(monkeypatch):
    """A Dovecot that cannot start raises RuntimeError carrying its log, and cleans up."""
    monkeypatch.setattr(mailservers, "DOVECOT_CONF", mailservers.DOVECOT_CONF + "bogus_knob = 1\n")
    world = MailWorld()
    with pytest.raises(RuntimeError, match="bogus_knob") as info:
        world.start()
    assert isinstance(info.value, MailWorldError)
    assert not world.dir.exists()


def test_ports_are_loopback_only(mail_world):
    """Nothing the world opened answers on a non-loopback address."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent; just picks the outgoing address
        addr = s.getsockname()[0]
    finally:
        s.close()
    if addr.startswith("127."):
        pytest.skip("no non-loopback address on this machine")
    for port in (
        mail_world.imap_port,
        mail_world.imaps_port,
        mail_world.lmtp_port,
        mail_world.smtp_port,
    ):
        assert not port_open(port, addr)


def test_port_taken_between_probe_and_bind_is_retried(monkeypatch):
    """If a probed port is taken before Dovecot binds it, start() retries with new ports."""
    squatter = socket.create_server((mailservers.HOST, 0))
    taken = squatter.getsockname()[1]
    real_free_ports = mailservers.free_ports
    calls = []

    def first_one_taken(n):
        calls.append(n)
        ports = real_free_ports(n)
        return [taken, *ports[1:]] if len(calls) == 1 else ports

    monkeypatch.setattr(mailservers, "free_ports", first_one_taken)
    try:
        with MailWorld() as world:
            assert len(calls) == 2 and world.imap_port != taken
            with world.mailbox("service@example.test") as mb:
                assert mb.folder.get() == "INBOX"
    finally:
        squatter.close()


@pytest.mark.parametrize(
    ("ci", "dovecot", "outcome"),
    [
        ("true", None, pytest.fail.Exception),
        ("", None, pytest.skip.Exception),
        ("", "/usr/sbin/dovecot", pytest.fail.Exception),
    ],
)
def test_fixture_fails_in_ci_and_skips_only_without_dovecot(monkeypatch, ci, dovecot, outcome):
    """start_for_pytest: CI=true always fails; elsewhere only a missing dovecot binary skips."""
    monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(mailservers, "dovecot_binary", lambda: dovecot)

    def broken_start(self):
        raise MailWorldError("simulated start failure")

    if dovecot:
        monkeypatch.setattr(MailWorld, "start", broken_start)
    with pytest.raises(outcome):
        mailservers.start_for_pytest(["service@example.test"])
