"""The classifier: exact signals first, heuristics second; machines are never answered."""

from __future__ import annotations

import datetime as dt

import pytest

from service.mail.classifier import KINDS, Classification, classify, is_machine, is_spreadsheet
from service.mail.parser import AttachmentFile, parse
from service.mail.returndate import return_date
from service.mail.tokens import reference

D = dt.date
REF = reference(b"test", "aml-2020", "IE-IDI")


def msg(head: str, body: str = "hello\n") -> bytes:
    return (head.strip("\n") + "\n\n" + body).replace("\n", "\r\n").encode()


def dsn(*recipients: str, extra_head: str = "") -> bytes:
    blocks = "\n\n".join(recipients)
    return msg(
        "From: MAILER-DAEMON@mx.example.edu\nTo: hms@example.edu\nSubject: Delivery report\n"
        f"{extra_head}MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
        "--r\nContent-Type: text/plain\n\nreport\n--r\nContent-Type: message/delivery-status\n\n"
        f"Reporting-MTA: dns; mx.example.edu\n\n{blocks}\n--r\nContent-Type: text/rfc822-headers\n\n"
        "From: hms@example.edu\nMessage-ID: <abc.skjemapost@example.edu>\n--r--\n",
    )


def rcpt(addr: str, action: str, status: str, diag: str = "") -> str:
    out = f"Final-Recipient: rfc822; {addr}\nAction: {action}\nStatus: {status}"
    return out + (f"\nDiagnostic-Code: smtp; {diag}" if diag else "")


def classified(raw: bytes) -> Classification:
    return classify(parse(raw))


# ---- bounces and delays --------------------------------------------------------------------------


def test_a_delayed_dsn_is_a_delay_not_a_failure():
    """Action: delayed gives kind "delay" with delayed=True: a machine, but not a bounce."""
    c = classified(dsn(rcpt("Kari@Example.edu", "delayed", "4.4.1", "connect timed out")))
    assert (c.kind, c.delayed, c.failed_recipients) == ("delay", True, ("kari@example.edu",))
    assert c.status == ("4.4.1",)
    assert is_machine(c) and c.original_message_id == "<abc.skjemapost@example.edu>"


def test_a_failed_dsn_is_a_bounce_with_its_facts():
    """Action: failed gives a bounce with recipient, status, diagnostic and our original Message-ID."""
    c = classified(
        dsn(
            rcpt("ola@example.edu", "failed", "5.1.1", "550 5.1.1 User unknown"),
            rcpt("kari@example.edu", "delayed", "4.4.1"),
        )
    )
    assert (c.kind, c.delayed) == ("bounce", False)
    assert c.failed_recipients == ("ola@example.edu",) and c.status == ("5.1.1",)
    assert c.diagnostic == "550 5.1.1 User unknown" and c.report_type == "delivery-status"
    assert c.reason.startswith("DSN")


def test_a_dsn_without_action_falls_back_to_the_status_class():
    """No Action field: a 5.x.x status is a failure, a 4.x.x one a delay."""
    assert classified(dsn("Final-Recipient: rfc822; a@x.no\nStatus: 5.2.2")).kind == "bounce"
    assert classified(dsn("Final-Recipient: rfc822; a@x.no\nStatus: 4.2.2")).kind == "delay"


def test_a_success_dsn_is_a_report_not_a_bounce():
    """Action: delivered (a requested success notice) is a report."""
    c = classified(dsn(rcpt("ola@example.edu", "delivered", "2.0.0")))
    assert (c.kind, c.failed_recipients) == ("report", ())


def test_a_bounce_carrying_auto_submitted_is_still_a_bounce():
    """Bounces often carry Auto-Submitted too; the DSN decides first."""
    c = classified(
        dsn(rcpt("ola@example.edu", "failed", "5.1.1"), extra_head="Auto-Submitted: auto-replied\n")
    )
    assert c.kind == "bounce"


def test_a_postfix_text_bounce_names_the_failed_address_not_ours():
    """A plain-text bounce: the address from "<x>: host … said: 550 …", never the sender's own,
    nor another one our returned mail went to."""
    c = classified(
        msg(
            "From: MAILER-DAEMON@smtp.example.edu (Mail Delivery System)\nTo: hms@example.edu\n"
            "Subject: Undelivered Mail Returned to Sender\nAuto-Submitted: auto-replied",
            "This is the mail system.\n\n<per@example.edu>: host mx.example.edu[192.0.2.1] said: 550 5.1.1\n"
            "    <per@example.edu>: Recipient address rejected (in reply to RCPT TO command)\n\n"
            "--- Below this line is a copy of the message.\n\nFrom: hms@example.edu\nTo: <other@example.edu>\n"
            "Cc: per@example.edu\n"
            "Message-ID: <x1.skjemapost@example.edu>\n",
        )
    )
    assert (c.kind, c.failed_recipients, c.status) == ("bounce", ("per@example.edu",), ("5.1.1",))
    assert c.original_message_id == "<x1.skjemapost@example.edu>"
    assert c.diagnostic.startswith("550 5.1.1")


def test_an_exchange_text_bounce_in_english_and_a_norwegian_subject():
    """Exchange's "Delivery has failed to these recipients" text and "Ikke levert:" subjects bounce."""
    c = classified(
        msg(
            "From: postmaster@example.edu\nTo: hms@example.edu\nSubject: Ikke levert: Skjema",
            "Delivery has failed to these recipients or groups:\n\n"
            "Kari Nordmann (kari@example.edu)\n"
            "The email address you entered couldn't be found.\n",
        )
    )
    assert (c.kind, c.failed_recipients) == ("bounce", ("kari@example.edu",))


def test_a_text_delay_notice_is_a_delay():
    """ "Delivery Status Notification (Delay)" in plain text is a delay, not a bounce."""
    c = classified(
        msg(
            "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>\nTo: hms@example.edu\n"
            "Subject: Delivery Status Notification (Delay)",
            "Delivery incomplete. There was a temporary problem delivering your message to "
            "kari@example.edu. Gmail will retry for 46 more hours.\n",
        )
    )
    assert (c.kind, c.delayed) == ("delay", True)


def test_a_person_forwarding_a_dsn_is_still_a_bounce():
    """A DSN inside a forwarded message (message/rfc822) is found and reported as a bounce."""
    inner = dsn(rcpt("ola@example.edu", "failed", "5.2.2")).decode().replace("\r\n", "\n")
    c = classified(
        msg(
            "From: Kari <kari@example.edu>\nSubject: VS: Ikke levert\nMIME-Version: 1.0\n"
            'Content-Type: multipart/mixed; boundary="o"',
            "--o\nContent-Type: text/plain\n\nSe under\n"
            f"--o\nContent-Type: message/rfc822\n\n{inner}\n--o--\n",
        )
    )
    assert (c.kind, c.failed_recipients) == ("bounce", ("ola@example.edu",))
    assert "forwarded" in c.reason and c.original_message_id == "<abc.skjemapost@example.edu>"


# ---- auto-replies and return dates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "anchor", "expected"),
    [
        ("Jeg er tilbake 4. januar.", D(2020, 12, 18), D(2021, 1, 4)),
        ("Jeg er på ferie og er tilbake på kontoret mandag 4. januar.", D(2020, 12, 18), D(2021, 1, 4)),
        ("Jeg er tilbake fra og med 4.1.", D(2020, 12, 21), D(2021, 1, 4)),
        ("Fra og med 4. januar er jeg tilbake på kontoret.", D(2020, 12, 21), D(2021, 1, 4)),
        ("Jeg er fraværende til og med 3. januar.", D(2020, 12, 21), D(2021, 1, 4)),
        ("Fraværende fra 18. desember til og med 3. jan.", D(2020, 12, 18), D(2021, 1, 4)),
        ("Jeg er tilbake i jobb 04.01.2021", D(2020, 12, 21), D(2021, 1, 4)),
        ("I will be back on 4 January 2021.", D(2020, 12, 21), D(2021, 1, 4)),
        ("I am out of the office until Monday, January 4th.", D(2020, 12, 21), D(2021, 1, 4)),
        ("I am on annual leave, returning 04.01.2021.", D(2020, 12, 19), D(2021, 1, 4)),
        ("Away through 3 January, back 4 January.", D(2020, 12, 19), D(2021, 1, 4)),
        ("I am away from 21 December with no access to e-mail.", D(2020, 12, 19), None),
        ("Jeg har ferie. Svarfristen er 16. desember.", D(2020, 12, 10), None),
        ("I was back on 2 November.", D(2020, 12, 10), None),
        ("Jeg er tilbake 4. januar.", None, None),
        ("Back on 2021-01-04.", None, D(2021, 1, 4)),
    ],
)
def test_return_dates_in_norwegian_and_english(text, anchor, expected):
    """The first day back is read next to a return cue; an inclusive end date counts the day after."""
    assert return_date(text, anchor) == expected


def test_auto_submitted_decides_and_the_return_date_comes_along():
    """Auto-Submitted: auto-replied is an auto-reply; the date is read with the mail's year."""
    c = classified(
        msg(
            "From: kari@example.edu\nSubject: Ferie\nAuto-Submitted: auto-replied\n"
            "Date: Fri, 18 Dec 2020 16:05:00 +0100",
            "Jeg er tilbake 4. januar.\n",
        )
    )
    assert (c.kind, c.returns_on) == ("auto-reply", D(2021, 1, 4))
    assert c.reason == "header Auto-Submitted: auto-replied"
    assert is_machine(c)


def test_auto_submitted_no_is_a_person():
    """Auto-Submitted: no is what people's mail may carry: not an auto-reply."""
    assert classified(msg("From: kari@example.edu\nSubject: Hei\nAuto-Submitted: no")).kind == "question"


@pytest.mark.parametrize(
    "header",
    [
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: auto_reply",
        "X-Auto-Response-Suppress: All",
        "X-MS-Exchange-Inbox-Rules-Loop: kari@example.edu",
    ],
)
def test_auto_reply_headers(header):
    """Each auto-reply header alone makes a mail an auto-reply."""
    assert classified(msg(f"From: kari@example.edu\nSubject: Re: skjema\n{header}")).kind == "auto-reply"


@pytest.mark.parametrize(
    "subject",
    [
        "Automatisk svar: Skjema",
        "Autosvar: Skjema",
        "Fraværende: Skjema",
        "Fravær: Skjema",
        "Out of Office: Skjema",
        "Automatic reply: Skjema",
        "Auto: Skjema",
        "Abwesenheitsnotiz: Skjema",
        "Out of office reply: x",
    ],
)
def test_auto_reply_subject_prefixes(subject):
    """A Norwegian, English or German out-of-office subject prefix alone is enough."""
    c = classified(msg(f"From: kari@example.edu\nSubject: {subject}"))
    assert c.kind == "auto-reply" and c.reason.startswith("subject prefix")


# ---- reports, lists, our own mail ----------------------------------------------------------------


def report(report_type: str, part: str) -> bytes:
    return msg(
        f"From: x@example.net\nSubject: report\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        f'report-type={report_type}; boundary="r"',
        f"--r\nContent-Type: text/plain\n\nhuman text\n--r\n{part}\n--r--\n",
    )


def test_arf_and_mdn_are_reports_not_bounces():
    """A spam complaint (ARF) and a read receipt (MDN) are reports, never bounces."""
    arf = classified(
        report("feedback-report", "Content-Type: message/feedback-report\n\nFeedback-Type: abuse\n")
    )
    mdn = classified(
        report(
            "disposition-notification",
            "Content-Type: message/disposition-notification\n\n"
            "Original-Message-ID: <m1.skjemapost@example.edu>\nDisposition: automatic-action/"
            "MDN-sent-automatically; displayed\n",
        )
    )
    assert (arf.kind, arf.report_type) == ("report", "feedback-report")
    assert (mdn.kind, mdn.report_type, mdn.original_message_id) == (
        "report",
        "disposition-notification",
        "<m1.skjemapost@example.edu>",
    )


def test_outlook_read_receipt_by_subject_and_wording():
    """ "Lest:" with Outlook's "ble lest" wording is a read receipt; "Lest:" alone from a person is not."""
    head = "From: kari@example.edu\nSubject: Lest: Skjema"
    receipt = classified(msg(head, "Meldingen\n\nble lest 10.12.2020.\n"))
    person = classified(msg(head, "Jeg har lest skjemaet, spørsmål:\n"))
    assert (receipt.kind, receipt.report_type) == ("report", "disposition-notification")
    assert person.kind == "question"


def test_list_headers_make_a_list_mail_even_with_precedence_bulk():
    """List-Id (with Precedence: bulk, as lists send) gives "list"; Precedence: list alone too."""
    bulk = msg("From: a@b.c\nSubject: x\nList-Id: <l.example.edu>\nPrecedence: bulk")
    assert classified(bulk).kind == "list"
    assert classified(msg("From: a@b.c\nSubject: x\nPrecedence: list")).kind == "list"


def test_our_own_message_id_is_own_even_when_auto_submitted():
    """A Message-ID with .skjemapost@ is our own copy, whatever else it carries."""
    c = classified(
        msg(
            "From: hms@example.edu\nSubject: Kvittering\nAuto-Submitted: auto-generated\n"
            "Message-ID: <1f2e.skjemapost@example.edu>"
        )
    )
    assert (c.kind, c.original_message_id) == ("own", "<1f2e.skjemapost@example.edu>")


# ---- people --------------------------------------------------------------------------------------


def att(name: str, ctype: str = "application/octet-stream") -> AttachmentFile:
    return AttachmentFile(name, ctype, b"PK", "top")


@pytest.mark.parametrize(
    ("attachment", "sheet"),
    [
        (att("Skjema.XLSX"), True),
        (att("skjema.xlsm"), True),
        (att("skjema.xls"), True),
        (att("s.ods"), True),
        (att("s.csv", "text/plain"), True),
        (att("", "application/vnd.ms-excel"), True),
        (att("", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), True),
        (att("skjema.docx"), False),
        (att("skjema.pdf", "application/pdf"), False),
        (att(".xlsx"), False),
        (att("image001.png", "image/png"), False),
    ],
)
def test_spreadsheet_attachments_by_name_or_type(attachment, sheet):
    """A file is spreadsheet-ish by its extension or by a content type that says spreadsheet."""
    assert is_spreadsheet(attachment) is sheet


def test_submission_or_question():
    """A person with a spreadsheet attached is a candidate submission; without one, a question."""
    head = (
        "From: kari@example.edu\nSubject: Skjema\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"'
    )
    with_sheet = msg(
        head, "--b\n\nhei\n--b\nContent-Type: application/octet-stream; name=skjema.xlsx\n\nPK\n--b--\n"
    )
    with_doc = msg(head, "--b\n\nhei\n--b\nContent-Type: application/pdf; name=skjema.pdf\n\n%PDF\n--b--\n")
    assert classified(with_sheet).kind == "submission"
    assert classified(with_doc).kind == "question" and not is_machine(classified(with_doc))


def test_references_subject_first_then_body_without_word_noise():
    """Codes come subject first, then body, once each; 8-letter words and lower-case text are not codes."""
    other = reference(b"test", "aml-2020", "IE-ADM")
    c = classified(
        msg(
            f"From: kari@example.edu\nSubject: SV: Skjema [ref {other}]",
            f"Vedlagte skjema gjelder {REF} og {other}. Tilbakemelding? file name, Rettelse.\n",
        )
    )
    assert c.references == (other, REF)


def test_a_mistyped_code_in_code_shape_is_kept_for_the_typo_answer():
    """ABCD-EFGX with a broken check symbol is still a candidate when written like a code."""
    typo = REF[:-1] + ("0" if REF[-1] != "0" else "1")
    assert classified(msg(f"From: kari@example.edu\nSubject: Skjema [ref {typo}]")).references == (typo,)


def test_is_machine_for_every_kind():
    """Only submissions and questions come from people who get an answer."""
    machine = {k for k in KINDS if is_machine(Classification(k, ""))}
    assert machine == {"bounce", "delay", "auto-reply", "report", "list", "own"}


def test_x_auto_response_suppress_never_turns_away_a_form():
    """The weakest auto header: with a spreadsheet attached, the mail stays a submission."""
    head = (
        "From: kari@example.edu\nSubject: Skjema\nX-Auto-Response-Suppress: All\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"'
    )
    raw = msg(
        head, "--b\n\nhei\n--b\nContent-Type: application/octet-stream; name=skjema.xlsx\n\nPK\n--b--\n"
    )
    assert classified(raw).kind == "submission"


def test_precedence_bulk_alone_does_not_turn_away_a_reply_with_a_form():
    """Some gateways stamp people's mail "Precedence: bulk": with a form attached, it is still a
    submission; without one, and with no other sign of a person, still an auto-reply."""
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = "kari@example.edu"
    m["To"] = "skjema@example.edu"
    m["Subject"] = "SV: Skjema for IE-IDI"
    m["Precedence"] = "bulk"
    m.set_content("Her er skjemaet.")
    m.add_attachment(
        b"PK\x03\x04",
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="skjema.xlsx",
    )
    assert classified(m.as_bytes()).kind == "submission"
    assert (
        classified(msg("From: kari@example.edu\nSubject: Re: skjema\nPrecedence: bulk")).kind == "auto-reply"
    )


# ---- bounces that are not a clean DSN: the evidence decides -----------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Undeliverable: Skjema",
        "Ikke levert: Skjema",
        "Returnert e-post: Skjema",
        "Kan ikke leveres: Skjema",
        "Unzustellbar: Skjema",
        "Non remis : Skjema",
        "No se puede entregar: Skjema",
        "Non recapitabile: Skjema",
        "Onbestelbaar: Skjema",
        "Det gick inte att leverera: Skjema",
    ],
)
def test_a_failure_subject_in_any_common_language_is_a_bounce(subject):
    """A failure subject in Norwegian, German, French, Spanish, Italian, Dutch or Swedish bounces,
    from an address that says nothing."""
    c = classified(msg(f"From: Mail System <mail@mx.example.org>\nSubject: {subject}", "kari@example.edu\n"))
    assert c.kind == "bounce"


def test_a_reply_to_a_bounce_is_not_a_bounce():
    """A person passing a bounce on ("VS: Ikke levert: ...") writes a person's mail."""
    assert classified(msg("From: kari@example.edu\nSubject: VS: Ikke levert: Skjema")).kind == "question"


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example.org",
        "Mailer_Daemon@mx.example.org",
        "postmaster@example.org",
        "post_master@example.org",
        "Post-Master@example.org",
        "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@example.org>",
        "bounces+42@lists.example.org",
        "MAILER-DAEMON",
        "MAILER-DAEMON (Mail Delivery System)",
        "Mail Delivery Subsystem <MAILER-DAEMON>",
    ],
)
def test_a_delivery_daemon_in_any_shape_is_a_bounce_whatever_its_subject(sender):
    """A delivery daemon's mail is a bounce even under a "Re:" subject, also without a domain."""
    c = classified(
        msg(f"From: {sender}\nSubject: Re: Skjema", "<kari@example.edu>: host mx said: 550 5.1.1 no\n")
    )
    assert (c.kind, c.failed_recipients) == ("bounce", ("kari@example.edu",))


def returning(
    sender: str, text: str, *, to: str = "To: kari@example.edu", mid: str = "<i1.skjemapost@x.edu>"
) -> bytes:
    """A notice carrying a copy of mail with Message-ID ``mid`` (ours by default), form attached;
    ``to`` holds the copy's address (and delivery) header lines."""
    inner = (
        f"From: hms@x.edu\n{to}\nSubject: Skjema\nMessage-ID: {mid}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="i"\n\n--i\nContent-Type: text/plain\n\nHei\n'
        "--i\nContent-Type: application/vnd.ms-excel; name=skjema.xlsx\n\nPK\n--i--\n"
    )
    return msg(
        f"From: {sender}\nSubject: Re: Skjema\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
        'boundary="o"',
        f"--o\nContent-Type: text/plain\n\n{text}\n--o\nContent-Type: message/rfc822\n\n{inner}\n--o--\n",
    )


def test_our_mail_returned_by_a_no_reply_address_saying_it_failed_is_a_bounce():
    """A no-reply address returning our mail with words of failure: a bounce, and the address it
    marks is the one our returned mail went to."""
    c = classified(returning("no-reply@x.edu", "Meldingen ble ikke levert."))
    assert (c.kind, c.failed_recipients) == ("bounce", ("kari@example.edu",))
    assert c.original_message_id == "<i1.skjemapost@x.edu>"


def test_a_no_reply_address_that_reports_no_failure_is_an_auto_reply():
    """A no-reply acknowledgement is machine mail, an auto-reply, not a bounce: nothing failed.
    A delivery daemon's success notice is a report."""
    ack = classified(returning("noreply@x.edu", "Vi har mottatt henvendelsen din."))
    assert (ack.kind, ack.failed_recipients) == ("auto-reply", ())
    success = classified(
        msg("From: MAILER-DAEMON@mx.example.org\nSubject: Successful Mail Delivery Report", "delivered\n")
    )
    assert success.kind == "report"


def test_a_person_returning_our_mail_is_never_a_submission():
    """Our own invitation forwarded back as an attachment by a person carries our blank form: a
    question for a person, never a submission, whoever returns it."""
    c = classified(returning("Kari <kari@example.edu>", "Hva er dette?"))
    assert c.kind == "question"
    theirs = classified(returning("Kari <kari@example.edu>", "Her er skjemaet.", mid="<k1@example.edu>"))
    assert theirs.kind == "submission"


def test_a_system_in_sender_or_reply_to_does_not_make_a_persons_form_a_machine():
    """Only From says who wrote a mail: a person's form sent through a web form or scanner with a
    no-reply Sender is still a submission."""
    raw = with_form("From: Kari <kari@example.edu>\nSender: noreply@webforms.example.edu")
    assert classified(raw).kind == "submission"


def with_form(head: str) -> bytes:
    return msg(
        f'{head}\nSubject: Skjema\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nVedlagt\n--b\nContent-Type: application/vnd.ms-excel; "
        "name=skjema.xlsx\n\nPK\n--b--\n",
    )


def test_the_address_we_sent_to_is_marked_when_the_mail_failed_after_forwarding():
    """A leader's mail forwarded elsewhere fails there: the notice names the other address, our
    returned mail the one we sent to, which is the one that does not work for us."""
    c = classified(
        msg(
            "From: postmaster@labo.example.fr\nSubject: Non remis : Skjema",
            "La remise aux destinataires ou groupes suivants a échoué :\n\np.raman@labo.example.fr\n\n"
            "En-têtes de message d'origine :\n\nFrom: hms@example.edu\nTo: Priya <priya@example.edu>\n"
            "Message-ID: <p1.skjemapost@example.edu>\n",
        )
    )
    assert (c.kind, c.failed_recipients) == ("bounce", ("priya@example.edu",))
    assert "p.raman@labo.example.fr" in c.reason


def test_a_dsn_with_an_empty_status_part_is_a_bounce_by_its_headers():
    """An empty delivery-status part names nobody; X-Failed-Recipients, the daemon and the subject
    say what happened. The generic multipart/report rule does not win."""
    raw = msg(
        "From: Mail Delivery System <Mailer-Daemon@relay.example.edu>\nTo: hms@example.edu\n"
        "Subject: Mail delivery failed: returning message to sender\nX-Failed-Recipients: ola@example.edu\n"
        'MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary="r"',
        "--r\nContent-Type: text/plain\n\nA message that you sent could not be delivered.\n"
        "--r\nContent-Type: message/delivery-status\n\n\n--r--\n",
    )
    c = classified(raw)
    assert (c.kind, c.failed_recipients, c.report_type) == ("bounce", ("ola@example.edu",), "delivery-status")


def test_a_recipient_block_with_only_a_diagnostic_code_is_a_failed_recipient():
    """No Final-Recipient, Action or Status: the Diagnostic-Code's 550 and address decide."""
    c = classified(dsn("Diagnostic-Code: smtp; 550 5.1.1 <Ola@Example.edu>: Recipient address rejected"))
    assert (c.kind, c.failed_recipients, c.status) == ("bounce", ("ola@example.edu",), ("5.1.1",))


def test_a_multipart_report_with_no_evidence_of_failure_stays_a_report():
    """A delivery-status part naming nobody, from an address that says nothing, with no failure
    subject or header: a report, never a person's mail and never a bounce."""
    raw = msg(
        'From: reports@example.org\nSubject: report\nMIME-Version: 1.0\nContent-Type: multipart/report; boundary="r"',
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n--r--\n",
    )
    assert classified(raw).kind == "report"


def test_a_returned_copy_to_two_addresses_marks_the_mailbox_it_was_delivered_to():
    """Our invitation goes to the leader with the verneombud copied. A mailbox's own daemon that
    returns it (saying nothing of who) marks the mailbox the copy lay in (Delivered-To, or the
    mail store's Received "for <x>"); a copy that does not say marks nobody rather than guess."""
    inner = "To: Kari <kari@example.edu>\nCc: per@example.edu"
    delivered = classified(
        returning(
            "post_master@example.edu", "Postkassen er full.", to=f"Delivered-To: per@example.edu\n{inner}"
        )
    )
    assert (delivered.kind, delivered.failed_recipients) == ("bounce", ("per@example.edu",))
    received = classified(
        returning(
            "post_master@example.edu",
            "Postkassen er full.",
            to=f"Received: from mx by store with LMTP\n for <kari@example.edu>; Mon, 23 Nov 2020\n{inner}",
        )
    )
    assert received.failed_recipients == ("kari@example.edu",)
    unsaid = classified(returning("post_master@example.edu", "Postkassen er full.", to=inner))
    assert (unsaid.kind, unsaid.failed_recipients) == ("bounce", ())
    assert "no failed address found" in unsaid.reason
