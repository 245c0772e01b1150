"""Never answer a machine: each part of the one rule, and what it must not turn away."""

from __future__ import annotations

import pytest

from service.mail.answerable import answer_address, refusal
from service.mail.classifier import Classification, classify
from service.mail.parser import parse
from service.models import MessageKind

FORM = (
    '--b\nContent-Type: text/plain\n\nVedlagt.\n--b\nContent-Type: application/vnd.ms-excel; name="s.xlsx"'
    "\n\nPK\n--b--\n"
)


def reply(extra: str = "", sender: str = "Kari <kari@example.edu>", body: str = FORM) -> bytes:
    """A leader's reply carrying the form, with ``extra`` header lines."""
    head = (
        f"From: {sender}\nTo: hms@example.edu\nSubject: SV: Skjema\nMessage-ID: <r1@example.edu>\n{extra}"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"'
    )
    return (head.strip("\n") + "\n\n" + body).replace("\n", "\r\n").encode()


def why(raw: bytes, sent: int = 0, cap: int = 5, *, as_person: bool = False) -> str | None:
    """The rule that refuses an answer to ``raw``, None when none does. ``as_person`` hands the
    rule a person's classification whatever the classifier says, to test the rule's own checks."""
    mail = parse(raw)
    c = Classification(MessageKind.SUBMISSION, "a test's verdict") if as_person else classify(mail)
    found = refusal(mail, c, sent_last_hour=lambda address: sent, per_hour=cap)
    return found.rule if found else None


def test_a_persons_reply_may_be_answered_at_its_reply_to():
    """Nothing in a leader's reply refuses an answer; it goes to Reply-To when there is one."""
    assert why(reply()) is None
    assert answer_address(parse(reply("Reply-To: kari.privat@example.org\n"))) == "kari.privat@example.org"


def test_a_machines_mail_is_never_answered():
    """Every machine kind of the classifier is refused, before anything else is asked."""
    asked: list[str] = []
    mail = parse(
        reply("Auto-Submitted: auto-replied\n", body="--b\nContent-Type: text/plain\n\nBorte\n--b--\n")
    )
    found = refusal(mail, classify(mail), sent_last_hour=lambda a: asked.append(a) or 0, per_hour=5)
    assert found is not None and found.rule == "machine" and asked == []


@pytest.mark.parametrize(
    ("extra", "sender", "rule"),
    [
        ("", "no-reply@example.edu", "daemon"),
        ("", "MAILER-DAEMON@mx.example.org", "daemon"),
        ("Reply-To: noreply@example.edu\n", "Kari <kari@example.edu>", "daemon"),
        ("Reply-To: post_master@example.edu\n", "Kari <kari@example.edu>", "daemon"),
        ("Return-Path: <>\n", "Kari <kari@example.edu>", "null-sender"),
        ("Auto-Submitted: auto-generated\n", "Kari <kari@example.edu>", "auto-submitted"),
        ("List-Id: <ansatte.lists.example.edu>\n", "Kari <kari@example.edu>", "list"),
        ("Precedence: list\n", "Kari <kari@example.edu>", "list"),
    ],
)
def test_each_sign_of_a_machine_refuses_an_answer(extra, sender, rule):
    """A daemon or no-reply address (From or Reply-To), an empty envelope sender, Auto-Submitted
    other than "no", a list: no answer, even when the mail carries a form, and even when the
    classifier were to call it a person's."""
    assert why(reply(extra, sender), as_person=True) == rule
    assert why(reply(extra, sender)) is not None


def test_a_mail_returning_our_own_mail_is_never_answered():
    """A copy of our own mail (our Message-ID mark) inside a message/rfc822 part, or its headers
    quoted in the text: whoever sends it, no answer."""
    inner = "From: hms@example.edu\nTo: kari@example.edu\nMessage-ID: <i1.skjemapost@example.edu>\n\nHei\n"
    attached = FORM.replace("--b--\n", f"--b\nContent-Type: message/rfc822\n\n{inner}--b--\n")
    assert why(reply(body=attached)) == "returned-copy"
    quoted = FORM.replace("Vedlagt.", f"Vedlagt.\n\n----- Original message -----\n{inner}")
    assert why(reply(body=quoted)) == "returned-copy"
    someone_elses = attached.replace("i1.skjemapost@example.edu", "i1@mail.example.edu")
    assert why(reply(body=someone_elses)) is None


def test_the_hourly_cap_is_the_last_word():
    """An address that had its mails this hour gets no more; one short of the cap gets one."""
    assert why(reply(), sent=5, cap=5) == "cap"
    assert why(reply(), sent=4, cap=5) is None


@pytest.mark.parametrize("precedence", ["bulk", "junk"])
def test_precedence_bulk_or_junk_alone_does_not_refuse_a_leaders_form(precedence):
    """Some clients and gateways stamp people's mail bulk or junk: a leader's reply with the form
    still gets its receipt."""
    assert why(reply(f"Precedence: {precedence}\n")) is None


def test_auto_submitted_no_with_a_comment_is_a_person():
    """ "Auto-Submitted: no (sent by hand)" is no."""
    assert why(reply("Auto-Submitted: no (sent by hand)\n")) is None
