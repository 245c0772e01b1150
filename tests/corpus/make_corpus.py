"""(Re)build the sample-mail corpus: every tests/corpus/*.eml and its twin .json, byte for byte.

    .venv/bin/python tests/corpus/make_corpus.py

Each case below writes one message the way a real client or mail server writes it (see
clients.py and builders.py) and says, by hand, what the parser and classifier must find: the
twin .json is never copied from their output. The forms inside are real ones for units of
config/roster.example.csv. A rebuild changes a file only when the form, the roster or the mail
templates changed.

One message is not kept on disk: the 30 MB attachment. ``large_message()`` builds it for the test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import re
import zipfile
from collections.abc import Callable
from typing import Any

from builders import (
    CRLF,
    b64,
    billion_laughs,
    digest,
    docx,
    eightbit,
    encrypted_office_file,
    ew_b,
    ew_q,
    hexid,
    message,
    multipart,
    ods,
    old_xls,
    part,
    qp,
    replace_member,
    rfc2231,
    stable_zip,
    thread_index,
    upper_hex,
    zip_bomb,
)
from clients import (
    COORDINATORS,
    DOCX,
    FORMS,
    HERE,
    INVITED,
    ODS,
    OSLO,
    POSTFIX_BOUNCE,
    SERVICE,
    SERVICE_NAME,
    TITLE,
    UNITS,
    XLSM,
    XLSX,
    add_parts,
    apple,
    attachment_name,
    attachment_part,
    auto_reply,
    blank,
    crlf,
    csv_export,
    dsn_part,
    filled,
    gmail,
    inner_message,
    invitation,
    invite_id,
    mailbox,
    original_headers,
    outlook,
    outlook_attachment,
    plain_client,
    postfix,
    real_form,
    received_exchange,
    received_plain,
    ref,
    rfc_date,
    subject_of,
    thunderbird,
)

from service.mail.compose import Attachment, Envelope, Headers, Mailbox, compose
from service.mail.parser import synthetic_message_id
from service.mail.render import Rendered

# ---- the cases -------------------------------------------------------------------------------

Built = tuple[bytes, dict[str, Any]]
CASES: dict[str, Callable[[], Built]] = {}


def case(name: str) -> Callable[[Callable[[], Built]], Callable[[], Built]]:
    def register(fn: Callable[[], Built]) -> Callable[[], Built]:
        CASES[name] = fn
        return fn

    return register


def when(day: int, hour: int, minute: int = 0, month: int = 12) -> dt.datetime:
    return dt.datetime(2020, month, day, hour, minute, tzinfo=OSLO).astimezone(dt.UTC)


def att(filename: str, data: bytes, origin: str = "top", content_type: str | None = None) -> dict[str, Any]:
    sha = hashlib.sha256(data).hexdigest()
    out: dict[str, Any] = {"filename": filename, "origin": origin, "size": len(data), "sha256": sha}
    if content_type:
        out["content_type"] = content_type.lower()  # MIME types are case-insensitive; we compare lower
    if sha in FORMS:
        out["form_unit"] = FORMS[sha]  # a real form: its stamp names this unit
    return out


def expect(
    kind: str,
    frm: str,
    subject: str,
    *,
    attachments: list[dict[str, Any]] | None = None,
    references: list[str] | None = None,
    **more: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": kind,
        "from_address": frm,
        "subject": subject,
        "attachments": attachments or [],
        "references": references or [],
    }
    return out | more


# -- people sending the form --------------------------------------------------------------------


@case("outlook-reply-filled-nb")
def _() -> Built:
    code, day = "IE-IDI", when(10, 10, 14)
    name, data = attachment_name(code), filled(code)
    raw = outlook(
        code,
        day,
        "Hei,\n\nVedlagt er utfylt skjema for instituttet. Verneombudet har vært med.\n\n"
        "Med vennlig hilsen\nMarit Solberg\nInstituttleder",
        [(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "marit.solberg@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        from_name="Marit Solberg",
        in_reply_to=invite_id(code),
        text_contains=["Vedlagt er utfylt skjema", "Referanse:"],
        text_excludes=["MsoNormal"],
    )


@case("outlook-winmail-dat")
def _() -> Built:
    code, day = "IE-IIK", when(9, 14, 2)
    name, data = attachment_name(code), filled(code)
    raw = outlook(
        code,
        day,
        "Hei,\n\nHer er skjemaet vårt.\n\nHilsen Lars",
        [(name, data, XLSX)],
        winmail=True,
        html=False,
        charset="windows-1252",
    )
    return raw, expect(
        "submission",
        "lars.haugen@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, "winmail.dat", XLSX)],
        references=[ref(code)],
        text_contains=["Her er skjemaet vårt."],
    )


@case("gmail-reply-filled-en")
def _() -> Built:
    code, day = "IE-IES", when(7, 21, 40)
    name, data = attachment_name(code), filled(code)
    raw = gmail(
        code,
        day,
        "Dear HR,\n\nPlease find our completed form attached.\n\nBest regards,\nAnna",
        [(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "anna.kowalska@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        text_contains=["Please find our completed form attached."],
    )


@case("apple-mail-filled-with-mistakes")
def _() -> Built:
    code, day = "HF-ISL", when(11, 8, 31)
    name, data = attachment_name(code), filled(code, "mistakes")
    raw = apple(
        code,
        day,
        "Hei!\n\nHer kommer skjemaet. Usikker på datoformatet.\n\nØystein",
        [(name, data, XLSX)],
        signature="Øystein Kvam\nInstituttleder, Institutt for språk og litteratur",
    )
    return raw, expect(
        "submission",
        "oystein.kvam@example.edu",
        "Sv: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        from_name="Øystein Kvam",
        text_contains=["Usikker på datoformatet", "Instituttleder, Institutt for språk"],
    )


@case("thunderbird-rfc2231-continuations")
def _() -> Built:
    code, day = "IE-IEL", when(14, 13, 5)
    name = "Oppsummering og evaluering – Institutt for elkraftteknikk (Bjørn Æsøy, ferdig).xlsx"
    data = filled(code)
    raw = thunderbird(
        code,
        day,
        "Hei,\n\nSkjemaet er fylt ut sammen med Hilde Moe (verneombud).\n\nBjørn",
        [(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "bjorn.aesoy@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        from_name="Bjørn Å. Æsøy",
        text_contains=["Hilde Moe (verneombud)"],
    )


@case("ios-mail-reply")
def _() -> Built:
    code, day = "NV-IBI", when(15, 22, 47)
    name, data = attachment_name(code), filled(code)
    raw = apple(code, day, "Vedlagt.", [(name, data, XLSX)], iphone=True, signature="Sendt fra min iPhone")
    return raw, expect(
        "submission",
        "hakon.nilsen@example.edu",
        "Sv: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        text_contains=["Vedlagt.", "Sendt fra min iPhone"],
    )


@case("android-k9-reply")
def _() -> Built:
    code, day = "NV-IFY", when(12, 11, 18)
    name, data = attachment_name(code), filled(code)
    raw = thunderbird(
        code, day, "Hei, skjemaet for IFY ligger ved. Mvh Kjersti", [(name, data, XLSX)], k9=True
    )
    return raw, expect(
        "submission",
        "kjersti.lund@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        text_contains=["skjemaet for IFY ligger ved", "K-9 Mail"],
    )


@case("forwarded-form-as-attachment")
def _() -> Built:
    code, day = "HF-IKM", when(13, 9, 3)
    name, data = attachment_name(code), filled(code)
    inner = inner_message(
        code,
        ("Rune Hagen", "rune.hagen@example.edu"),
        when(12, 15, 40),
        "Hei Camilla,\n\nHer er skjemaet ferdig utfylt, som avtalt.\n\nRune",
        [(name, data, XLSX)],
    )
    rfc822 = part(
        [
            'Content-Type: message/rfc822; name="SV_ Oppsummering og evaluering.eml"',
            'Content-Disposition: attachment; filename="SV_ Oppsummering og evaluering.eml"',
        ],
        inner,
    )
    raw = thunderbird(
        code,
        day,
        "Hei,\n\nVideresender skjemaet som verneombudet fylte ut for oss.\n\nCamilla",
        [],
        subject="Fwd: SV: " + subject_of(code),
        inner=[rfc822],
    )
    return raw, expect(
        "submission",
        "camilla.vold@example.edu",
        "Fwd: SV: " + subject_of(code),
        attachments=[att(name, data, "forwarded", XLSX)],
        references=[ref(code)],
        forwarded_subjects=["SV: " + subject_of(code)],
        text_contains=["Videresender skjemaet"],
        text_excludes=["Her er skjemaet ferdig utfylt"],
    )


@case("forwarded-outlook-winmail")
def _() -> Built:
    code, day = "NV-IMT", when(14, 8, 12)
    name, data = attachment_name(code), filled(code)
    inner = outlook(
        code,
        when(11, 16, 0),
        "Hei Erik,\n\nSkjemaet, fylt ut.\n\nTone",
        [(name, data, XLSX)],
        frm=("Tone Ås", "tone.as@example.edu"),
        winmail=True,
        html=False,
        quote=False,
        subject="Skjema for IMT",
    )
    rfc822 = part(["Content-Type: message/rfc822", "Content-Disposition: attachment"], inner)
    raw = gmail(code, day, "Videresender fra verneombudet.", [], subject="Fwd: Skjema for IMT", quote=False)
    # Gmail's "forward as attachment": the message goes inside the outer multipart/mixed
    raw = add_parts(raw, [rfc822])
    return raw, expect(
        "submission",
        "erik.johansen@example.edu",
        "Fwd: Skjema for IMT",
        attachments=[att(name, data, "forwarded/winmail.dat", XLSX)],
        references=[],
        text_contains=["Videresender fra verneombudet."],
    )


@case("owa-html-only-reply")
def _() -> Built:
    code, day = "NV-IBT", when(16, 12, 30)
    name, data = attachment_name(code), filled(code)
    u = UNITS[code]
    html = (
        '<html><head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
        '<title>Svar</title>\r\n<style type="text/css" style="display:none;"> P {margin-top:0;'
        "margin-bottom:0;} .x_elementToProof {font-family: Calibri;}</style>\r\n</head>\r\n"
        '<body dir="ltr">\r\n<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: '
        '12pt;">'
        "Hei,</div>\r\n<div>Vedlagt er skjemaet for IBT. Tiltak&nbsp;2 er videref&oslash;rt fra i "
        "fjor.</div>"
        f'\r\n<div>Hilsen {u.leader_name}</div>\r\n<hr style="display:inline-block;width:98%">\r\n'
        f'<div id="divRplyFwdMsg" dir="ltr"><b>Fra:</b> {SERVICE_NAME} &lt;{SERVICE}&gt;<br>'
        f'<b>Emne:</b> {subject_of(code)}</div>\r\n<script>trackOpen("x")</script></body></html>\r\n'
    )
    key = upper_hex(20, "owa", code)
    headers = [
        *received_exchange(day, "DB7PR06MB5209"),
        f"From: {mailbox(u.leader_name, u.leader_email)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"Subject: {ew_b('SV: ' + subject_of(code), 'utf-8', 45)}",
        f"Thread-Topic: {ew_b('SV: ' + subject_of(code), 'utf-8', 45)}",
        f"Thread-Index: {thread_index(code, 'owa')}",
        f"Date: {rfc_date(day, dt.UTC)}",
        f"Message-ID: <DB7PR06MB5209{key}@DB7PR06MB5209.eurprd06.prod.outlook.com>",
        f"References: {invite_id(code)}",
        f"In-Reply-To: {invite_id(code)}",
        "Accept-Language: nb-NO, en-US",
        "Content-Language: nb-NO",
        "X-MS-Has-Attach: yes",
        "X-MS-TNEF-Correlator:",
        "MIME-Version: 1.0",
    ]
    parts = [
        part(
            ['Content-Type: text/html; charset="utf-8"', "Content-Transfer-Encoding: quoted-printable"],
            qp(html),
        ),
        outlook_attachment(name, data, XLSX, day),
    ]
    raw = message(headers, multipart("mixed", f"_004_DB7PR06MB5209{key}_", parts))
    return raw, expect(
        "submission",
        "ingvild.ronning@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSX)],
        references=[ref(code)],
        text_contains=["Vedlagt er skjemaet for IBT. Tiltak 2 er videreført fra i fjor."],
        text_excludes=["font-family", "trackOpen", "<div", "Svar\n"],
    )


@case("html-only-question")
def _() -> Built:
    code, day = "HF-IFR", when(2, 10, 0)
    u = UNITS[code]
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{font-family:Arial}</style>'
        '<script type="text/javascript">window.alert("x")</script></head><body>'
        "<p>Hei!</p><p>Vi har <b>to</b> verneombud p&aring; instituttet. Hvem av dem skal st&aring; "
        "i skjemaet?</p><ul><li>Nils Tangen</li><li>Siv Aune</li></ul><p>Mvh<br>Sigrid</p></body></html>"
    )
    headers = [
        received_plain(day, "mail.example.edu"),
        f"From: {mailbox(u.leader_name, u.leader_email)}",
        f"To: {SERVICE}",
        f"Subject: {ew_q('Sv: ' + subject_of(code), 'utf-8', 60)}",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{hexid(20, 'hq', code)}@webmail.example.edu>",
        f"In-Reply-To: {invite_id(code)}",
        "User-Agent: Roundcube Webmail/1.4.9",
        "MIME-Version: 1.0",
    ]
    raw = message(
        headers,
        part(
            ["Content-Type: text/html; charset=UTF-8", "Content-Transfer-Encoding: 8bit"],
            eightbit(html, "utf-8"),
        ),
    )
    return raw, expect(
        "question",
        "sigrid.brekke@example.edu",
        "Sv: " + subject_of(code),
        references=[ref(code)],
        text_contains=["Vi har to verneombud på instituttet.", "skjemaet?\n\nNils Tangen\nSiv Aune\n\nMvh"],
        text_excludes=["alert", "font-family"],
    )


# -- subjects, charsets and file names ------------------------------------------------------------


@case("subject-utf8-q-encoded")
def _() -> Built:
    code, day = "NV-IKJ", when(8, 15, 20)
    u = UNITS[code]
    name, data = attachment_name(code), filled(code)
    body = part(
        ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 7bit"],
        f"Hi,\r\n\r\nHere is the form for {code}. Reference {ref(code)}.\r\n\r\nMaria\r\n".encode(),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        "=?utf-8?q?SV=3A_Oppsummering_og_evaluering?=",
        body,
        mailer="X-Mailer: Microsoft Outlook 16.0",
        files=[attachment_part(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "maria.garcia@example.edu",
        "SV: Oppsummering og evaluering",
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("subject-iso-8859-1-q-question")
def _() -> Built:
    code, day = "NV-ADM", when(3, 9, 45)
    u = UNITS[code]
    subject = "SV: Skjema for Fakultetsadministrasjonen NV - spørsmål om frist"
    body = part(
        ['Content-Type: text/plain; charset="iso-8859-1"', "Content-Transfer-Encoding: quoted-printable"],
        qp(
            "Hei,\n\nKan vi få utsatt fristen til over nyttår? Vi har ikke hatt møtet ennå.\n\n"
            "Tor Eriksen\nFakultetsdirektør",
            "iso-8859-1",
        ),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        ew_q(subject, "iso-8859-1", 60),
        body,
        mailer="X-Mailer: Microsoft Outlook 14.0",
        in_reply_to=invite_id(code),
    )
    return raw, expect(
        "question",
        "tor.eriksen@example.edu",
        subject,
        text_contains=["Kan vi få utsatt fristen til over nyttår?", "Fakultetsdirektør"],
    )


@case("subject-iso-8859-1-b-encoded")
def _() -> Built:
    code, day = "IE-ITK", when(10, 19, 2)
    u = UNITS[code]
    subject = f"Utfylt skjema fra Thomas Berg, ønsker tilbakemelding [ref {ref(code)}]"
    name, data = attachment_name(code), filled(code)
    body = part(
        ['Content-Type: text/plain; charset="iso-8859-1"', "Content-Transfer-Encoding: 8bit"],
        eightbit("Hei,\n\nSkjemaet er vedlagt. Gi gjerne beskjed om noe mangler.\n\nThomas", "iso-8859-1"),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        ew_b(subject, "iso-8859-1", 60),
        body,
        mailer="User-Agent: Evolution 3.38.2",
        files=[attachment_part(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "thomas.berg@example.edu",
        subject,
        attachments=[att(name, data)],
        references=[ref(code)],
        text_contains=["Gi gjerne beskjed om noe mangler."],
    )


@case("outlook-2010-iso-8859-1-filename")
def _() -> Built:
    code, day = "NV-IKP", when(9, 10, 55)
    name, data = "Skjema NV-IKP (utfylt, høst 2020) - Wei Zhang.xlsx", filled(code)
    raw = outlook(
        code,
        day,
        "Hello,\n\nAttached is the completed form. I renamed the file, hope that's OK.\n\nWei",
        [(name, data, XLSX)],
        encode_filename=lambda n, cs: ew_q(n, "iso-8859-1", 200),
        quote=False,
        extra=("X-Mailer: Microsoft Outlook 14.0",),
    )
    return raw, expect(
        "submission",
        "wei.zhang@example.edu",
        "RE: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("body-windows-1252-question")
def _() -> Built:
    code, day = "HF-IHR", when(4, 14, 30)
    u = UNITS[code]
    text = (
        "Hello,\n\nI can’t open the form – Excel says “Protected View” and won’t let me type.\n"
        "Is there a version without protection? We budgeted €0 for new software…\n\nJames"
    )
    body = part(
        ['Content-Type: text/plain; charset="Windows-1252"', "Content-Transfer-Encoding: 8bit"],
        eightbit(text, "cp1252"),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        "RE: " + subject_of(code).replace("–", "-"),
        body,
        mailer="X-Mailer: Microsoft Office Outlook 12.0",
        in_reply_to=invite_id(code),
    )
    return raw, expect(
        "question",
        "james.oconnor@example.edu",
        "RE: " + subject_of(code).replace("–", "-"),
        references=[ref(code)],
        from_name="James O'Connor",
        text_contains=["I can’t open the form – Excel says “Protected View”", "€0", "software…"],
    )


@case("body-iso-8859-1-8bit")
def _() -> Built:
    code, day = "NV-IMT", when(11, 13, 13)
    u = UNITS[code]
    name, data = "Skjema IMT - utfylt på møtet i går.xlsx", filled(code)
    body = part(
        ['Content-Type: text/plain; charset="iso-8859-1"', "Content-Transfer-Encoding: 8bit"],
        eightbit(
            "Vedlagt følger skjemaet for Institutt for materialteknologi.\n\nHilsen Erik Johansen",
            "iso-8859-1",
        ),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        "Skjema IMT",
        body,
        mailer="X-Mailer: Microsoft Outlook Express 6.00.2900.5512",
        files=[attachment_part(name, data, XLSX, "q-iso")],
    )
    return raw, expect(
        "submission",
        "erik.johansen@example.edu",
        "Skjema IMT",
        attachments=[att(name, data)],
        text_contains=["Vedlagt følger skjemaet for Institutt for materialteknologi."],
    )


@case("body-unknown-charset")
def _() -> Built:
    code, day = "HF-ADM", when(1, 8, 5)
    u = UNITS[code]
    body = part(
        ['Content-Type: text/plain; charset="x-mac-nordic"', "Content-Transfer-Encoding: 8bit"],
        eightbit(
            "Hei! Hvem er koordinator på fakultetet? Jeg finner ikke navnet i e-posten.\n\nSigrid", "utf-8"
        ),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        "Koordinator?",
        body,
        mailer="X-Mailer: Postbox 7.0.40 (Macintosh/20201105)",
    )
    return raw, expect(
        "question",
        "sigrid.brekke@example.edu",
        "Koordinator?",
        text_contains=["Hvem er koordinator på fakultetet?"],
        defects_contain=["unknown charset 'x-mac-nordic'"],
    )


# -- who sent it, which reference, which form ------------------------------------------------------


@case("verneombud-sends-form")
def _() -> Built:
    code, day = "IE-ITK", when(15, 9, 50)
    u = UNITS[code]
    name, data = attachment_name(code), filled(code)
    raw = outlook(
        code,
        day,
        "Hei,\n\nThomas er på reise, så jeg sender skjemaet for ITK. Vi fylte det ut sammen.\n\n"
        "Eva Strand\nVerneombud, Institutt for teknisk kybernetikk",
        [(name, data, XLSX)],
        frm=(u.verneombud_name, u.verneombud_email),
        subject="VS: " + subject_of(code),
    )
    return raw, expect(
        "submission",
        "eva.strand@example.edu",
        "VS: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
        from_name="Eva Strand",
    )


@case("unknown-sender-valid-reference")
def _() -> Built:
    code, day = "IE-IMF", when(13, 20, 11)
    name, data = attachment_name(code), filled(code)
    raw = gmail(
        code,
        day,
        "Hi, sending from my private account as the university VPN is down. Priya",
        [(name, data, XLSX)],
        frm=("Priya R.", "priya.raman.home@gmail.com"),
    )
    return raw, expect(
        "submission",
        "priya.raman.home@gmail.com",
        "Re: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
        from_name="Priya R.",
    )


def tamper(reference: str) -> str:
    """The reference with its fifth symbol changed: a plausible typo or a forged code."""
    body = reference.replace("-", "")
    swapped = body[:4] + ("7" if body[4] != "7" else "8") + body[5:]
    return f"{swapped[:4]}-{swapped[4:]}"


@case("tampered-reference")
def _() -> Built:
    code, day = "HF-IMU", when(14, 16, 44)
    u = UNITS[code]
    name, data = attachment_name(code), filled(code)
    bad = tamper(ref(code))
    subject = f"Re: {TITLE} – form for {u.name} [ref {bad}]"
    body = part(
        ["Content-Type: text/plain; charset=UTF-8; format=flowed", "Content-Transfer-Encoding: 7bit"],
        f"Here it is. Ref {bad}.\r\n\r\nElena\r\n".encode(),
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        ew_q(subject, "UTF-8", 60),
        body,
        mailer="User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:78.0) Gecko/20100101 Thunderbird/78.5.0",
        files=[attachment_part(name, data, XLSX)],
    )
    return raw, expect(
        "submission", "elena.rossi@example.edu", subject, attachments=[att(name, data)], references=[bad]
    )


@case("wrong-units-form")
def _() -> Built:
    code, other, day = "NV-IBT", "NV-IBI", when(15, 10, 10)
    name, data = attachment_name(other), filled(other)
    raw = outlook(code, day, "Hei, her er skjemaet vårt.\n\nIngvild", [(name, data, XLSX)])
    return raw, expect(
        "submission",
        "ingvild.ronning@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("empty-reply")
def _() -> Built:
    code, day = "HF-IFR", when(9, 7, 58)
    raw = outlook(code, day, "", [], quote=False, html=False)
    return raw, expect(
        "question", "sigrid.brekke@example.edu", "SV: " + subject_of(code), references=[ref(code)], text=""
    )


@case("form-every-field-empty")
def _() -> Built:
    code, day = "HF-IHR", when(16, 23, 55)
    name, data = attachment_name(code), filled(code, "empty")
    raw = outlook(code, day, "Form attached.", [(name, data, XLSX)])
    return raw, expect(
        "submission",
        "james.oconnor@example.edu",
        "RE: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("two-forms-two-units")
def _() -> Built:
    day = when(11, 15, 36)
    a, b = "IE-IDI", "IE-ADM"
    files = [(attachment_name(a), filled(a), XLSX), (attachment_name(b), filled(b), XLSX)]
    raw = outlook(
        a,
        day,
        f"Hei,\n\nVedlagt er skjemaene for begge enhetene mine: IDI og fakultetsadministrasjonen "
        f"(ref {ref(b)}).\n\nMarit",
        files,
    )
    return raw, expect(
        "submission",
        "marit.solberg@example.edu",
        "SV: " + subject_of(a),
        attachments=[att(n, d) for n, d, _ in files],
        references=[ref(a), ref(b)],
    )


# -- files that are not the form, or not a healthy one -------------------------------------------


@case("docx-instead-of-form")
def _() -> Built:
    code, day = "NV-IKJ", when(10, 11, 11)
    name = "Summary and evaluation NV-IKJ.docx"
    data = docx(
        [
            "Summary and evaluation 2020 – Department of Chemistry",
            "We held an online follow-up meeting on 3 November with 41 participants.",
            "Measures: weekly online coffee; review of lab schedules.",
        ]
    )
    raw = gmail(code, day, "Hi, I wrote our answers in Word, hope that works.", [(name, data, DOCX)])
    return raw, expect(
        "question",
        "maria.garcia@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(name, data, content_type=DOCX)],
        references=[ref(code)],
    )


@case("ods-from-libreoffice")
def _() -> Built:
    code, day = "NV-ADM", when(12, 9, 9)
    name = "Oppsummering og evaluering – NV-ADM.ods"
    data = ods([["Referansekode", ref(code)], ["Enhetskode", code], ["Antall ansatte", "31"]])
    raw = thunderbird(
        code, day, "Hei, jeg bruker LibreOffice, så filen ble lagret som .ods.", [(name, data, ODS)]
    )
    return raw, expect(
        "submission",
        "tor.eriksen@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=ODS)],
        references=[ref(code)],
    )


@case("xls-excel-97")
def _() -> Built:
    code, day = "HF-ADM", when(10, 8, 30)
    name, data = "Oppsummering og evaluering - HF-ADM.xls", old_xls(code)
    raw = outlook(
        code,
        day,
        "Hei, lagret som Excel 97-2003 siden vi har gammel Office.",
        [(name, data, "application/vnd.ms-excel")],
    )
    return raw, expect(
        "submission",
        "sigrid.brekke@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type="application/vnd.ms-excel")],
        references=[ref(code)],
    )


@case("xlsm-macro-enabled")
def _() -> Built:
    code, day = "IE-ITK", when(7, 12, 0)
    name = "Oppsummering og evaluering – IE-ITK.xlsm"

    data = replace_member(
        filled(code),
        "[Content_Types].xml",
        lambda x: x.replace(
            b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        ),
    )
    data = real_form(code, stable_zip(data))
    raw = outlook(code, day, "Hei, Excel ville lagre som .xlsm.", [(name, data, XLSM)])
    return raw, expect(
        "submission",
        "thomas.berg@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data, content_type=XLSM)],
        references=[ref(code)],
    )


@case("zip-bomb-xlsx")
def _() -> Built:
    code, day = "NV-IKP", when(12, 3, 14)
    name, data = attachment_name(code), zip_bomb()
    raw = outlook(code, day, "Skjema vedlagt.", [(name, data, XLSX)], quote=False, html=False)
    return raw, expect(
        "submission",
        "wei.zhang@example.edu",
        "RE: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("billion-laughs-xlsx")
def _() -> Built:
    code, day = "IE-IMF", when(12, 3, 20)
    name = attachment_name(code)
    data = stable_zip(billion_laughs(filled(code), "xl/worksheets/sheet2.xml"))
    raw = outlook(code, day, "Form attached.", [(name, data, XLSX)], quote=False, html=False)
    return raw, expect(
        "submission",
        "priya.raman@example.edu",
        "RE: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("encrypted-xlsx")
def _() -> Built:
    code, day = "IE-IIK", when(14, 9, 0)
    name, data = attachment_name(code), encrypted_office_file(code)
    raw = outlook(
        code,
        day,
        "Hei, skjemaet er passordbeskyttet. Passordet sender jeg på SMS.\n\nLars",
        [(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "lars.haugen@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("truncated-xlsx")
def _() -> Built:
    code, day = "NV-IBI", when(8, 7, 40)
    full = filled(code)
    name, data = attachment_name(code), full[: len(full) // 2]
    raw = apple(code, day, "Vedlagt", [(name, data, XLSX)], iphone=True, signature="Sendt fra min iPhone")
    return raw, expect(
        "submission",
        "hakon.nilsen@example.edu",
        "Sv: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


@case("csv-export-google-sheets")
def _() -> Built:
    code, day = "HF-IMU", when(9, 18, 18)
    name, data = f"{attachment_name(code)[:-5]} - Form.csv", csv_export(code)
    raw = gmail(
        code, day, "I filled it in Google Sheets and downloaded it, here you go.", [(name, data, "text/csv")]
    )
    return raw, expect(
        "submission",
        "elena.rossi@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(name, data, content_type="text/csv")],
        references=[ref(code)],
    )


@case("xlsx-as-octet-stream")
def _() -> Built:
    code, day = "IE-IMF", when(8, 13, 37)
    u = UNITS[code]
    name, data = attachment_name(code), filled(code)
    body = part(
        ["Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 7bit"],
        b"Hi, the form is attached.\r\n\r\nPriya\r\n",
    )
    raw = plain_client(
        (u.leader_name, u.leader_email),
        day,
        ew_q("Re: " + subject_of(code), "UTF-8", 60),
        body,
        mailer="User-Agent: Roundcube Webmail/1.4.9",
        in_reply_to=invite_id(code),
        files=[attachment_part(name, data, "application/octet-stream")],
        boundary="=_" + hexid(32, "rc", code),
    )
    return raw, expect(
        "submission",
        "priya.raman@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(name, data, content_type="application/octet-stream")],
        references=[ref(code)],
    )


@case("question-nb-plain")
def _() -> Built:
    code, day = "IE-IIK", when(30, 10, 20, month=11)
    raw = outlook(
        code,
        day,
        "Hei,\n\nHvilket forløp skal vi velge når møtet ble avbrutt av nedstengningen i "
        "mars, men vi fullførte planen i juni?\n\nLars",
        [],
        html=False,
    )
    return raw, expect(
        "question",
        "lars.haugen@example.edu",
        "SV: " + subject_of(code),
        references=[ref(code)],
        text_contains=["Hvilket forløp skal vi velge"],
    )


@case("malformed-no-message-id")
def _() -> Built:
    raw = (
        b"Received: from unknown (HELO scanner.example.edu) (192.0.2.99)\r\n"
        b"From: Skanner 3. etg <scanner@example.edu>\r\n"
        b"To: hms-skjema@example.edu\r\n"
        b"Subject: Skannet dokument\r\n"
        b"Date: torsdag 10. desember 2020 kl 08:00\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="SCAN_BOUNDARY"\r\n\r\n'
        b"--SCAN_BOUNDARY\r\nContent-Type: text/plain\r\n\r\nSkannet fra MFP-3.\r\n"
        b"--SCAN_BOUNDARY\r\nContent-Type: application/pdf; name=scan0001.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfs\xff\xfeQQ=\r\n"
    )
    return raw, expect(
        "question",
        "scanner@example.edu",
        "Skannet dokument",
        attachments=[{"filename": "scan0001.pdf", "origin": "top"}],
        message_id=synthetic_message_id(raw),
        date=None,
        defects_contain=["no Message-ID: synthesised from the SHA-256 of the bytes"],
        text_contains=["Skannet fra MFP-3."],
    )


# -- out of office -------------------------------------------------------------------------------


@case("oof-outlook-automatisk-svar-nb")
def _() -> Built:
    code, day = "IE-ITK", when(18, 16, 5)
    subject = "Automatisk svar: " + subject_of(code)
    text = (
        "Hei,\n\nJeg er på juleferie og er tilbake på kontoret mandag 4. januar.\n"
        "Haster det, kontakt nestleder Eva Strand (eva.strand@example.edu).\n\nMvh Thomas Berg"
    )
    raw = auto_reply(
        code, day, subject, text, ["Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All"]
    )
    return raw, expect(
        "auto-reply", "thomas.berg@example.edu", subject, references=[ref(code)], returns_on="2021-01-04"
    )


@case("oof-exchange-en-back-on")
def _() -> Built:
    code, day = "IE-IES", when(21, 8, 0)
    subject = "Automatic reply: " + subject_of(code)
    text = (
        "Thank you for your email. I am out of the office with limited access to email.\n"
        "I will be back on 4 January 2021.\n\nKind regards,\nAnna Kowalska"
    )
    raw = auto_reply(
        code,
        day,
        subject,
        text,
        ["Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All"],
        lang="en",
    )
    return raw, expect(
        "auto-reply", "anna.kowalska@example.edu", subject, references=[ref(code)], returns_on="2021-01-04"
    )


@case("oof-nb-no-date-x-autoreply")
def _() -> Built:
    code, day = "HF-ISL", when(2, 11, 0)
    subject = "Fraværende: " + subject_of(code)
    text = (
        "Jeg har forskningstermin og leser e-post bare sporadisk.\n"
        "Ta kontakt med instituttkontoret ved behov."
    )
    raw = auto_reply(
        code, day, subject, text, ["X-Autoreply: yes", "X-Mailer: Zimbra 8.8.15_GA_3869"], exchange=False
    )
    return raw, expect(
        "auto-reply", "oystein.kvam@example.edu", subject, references=[ref(code)], returns_on=None
    )


@case("oof-en-no-date-sieve-vacation")
def _() -> Built:
    code, day = "NV-IKJ", when(24, 9, 1, month=11)
    subject = "Auto: " + subject_of(code)
    text = (
        "I am attending a conference with no e-mail access.\n"
        "Your message will be read when I return.\n\n-- Maria Garcia"
    )
    raw = auto_reply(
        code,
        day,
        subject,
        text,
        ["Auto-Submitted: auto-replied (vacation)", "Precedence: bulk"],
        exchange=False,
    )
    return raw, expect(
        "auto-reply", "maria.garcia@example.edu", subject, references=[ref(code)], returns_on=None
    )


@case("oof-gmail-vacation-til-og-med")
def _() -> Built:
    code, day = "IE-IEL", when(22, 7, 30)
    u = UNITS[code]
    text = "Hei!\n\nJeg er på juleferie til og med 3. januar og svarer når jeg er tilbake.\n\nBjørn"
    key = hexid(16, "vac", code)
    headers = [
        f"Received: by mail-wr1-f54.google.com with SMTP id x{key}.2; {rfc_date(day)}",
        "Auto-Submitted: auto-replied",
        f"From: {mailbox(u.leader_name, u.leader_email)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        "Subject: Ferie",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <CA{key.upper()}+vacation@mail.gmail.com>",
        f"In-Reply-To: {invite_id(code)}",
        f"References: {invite_id(code)}",
        "MIME-Version: 1.0",
    ]
    raw = message(
        headers,
        part(
            ['Content-Type: text/plain; charset="UTF-8"', "Content-Transfer-Encoding: quoted-printable"],
            qp(text),
        ),
    )
    return raw, expect("auto-reply", "bjorn.aesoy@example.edu", "Ferie", returns_on="2021-01-04")


@case("oof-subject-only-fravaer")
def _() -> Built:
    code, day = "NV-IMT", when(21, 12, 12)
    subject = "Fravær: " + subject_of(code)
    text = "Takk for e-posten. Jeg er tilbake fra og med 4.1. og svarer deg da."
    raw = auto_reply(code, day, subject, text, [], exchange=False)
    return raw, expect(
        "auto-reply", "erik.johansen@example.edu", subject, references=[ref(code)], returns_on="2021-01-04"
    )


@case("oof-x-autorespond-returning-numeric")
def _() -> Built:
    code, day = "HF-IHR", when(19, 10, 45)
    subject = "Out of Office: " + subject_of(code)
    text = "Thank you for your message. I am on annual leave, returning 04.01.2021.\n\nJames O'Connor"
    raw = auto_reply(code, day, subject, text, ["X-Autorespond: Out of Office"], exchange=False)
    return raw, expect(
        "auto-reply", "james.oconnor@example.edu", subject, references=[ref(code)], returns_on="2021-01-04"
    )


@case("oof-abwesenheitsnotiz")
def _() -> Built:
    code, day = "HF-IMU", when(20, 9, 9)
    subject = "Abwesenheitsnotiz: " + subject_of(code)
    text = (
        "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich 6. Januar 2021 nicht im Büro.\n"
        "Ab dem 7. Januar 2021 bin ich wieder erreichbar.\n\nElena Rossi"
    )
    raw = auto_reply(
        code,
        day,
        subject,
        text,
        ["Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All"],
        lang="de",
    )
    return raw, expect(
        "auto-reply", "elena.rossi@example.edu", subject, references=[ref(code)], returns_on="2021-01-07"
    )


@case("oof-outlook-rule-reply")
def _() -> Built:
    code, day = "HF-IKM", when(17, 14, 2)
    subject = "SV: " + subject_of(code)
    text = (
        "Dette er et automatisk svar. Henvendelser om arbeidsmiljø besvares etter 11.01.2021.\n\nCamilla Vold"
    )
    raw = auto_reply(code, day, subject, text, ["X-MS-Exchange-Inbox-Rules-Loop: camilla.vold@example.edu"])
    return raw, expect(
        "auto-reply", "camilla.vold@example.edu", subject, references=[ref(code)], returns_on="2021-01-12"
    )


@case("oof-unix-vacation-precedence-bulk")
def _() -> Built:
    code, day = "NV-IKP", when(23, 6, 0)
    raw = auto_reply(
        code,
        day,
        "away from my mail",
        'I will not be reading my mail for a while.\nYour mail regarding "'
        + subject_of(code)
        + "\" will be read when I'm back.",
        ["Precedence: bulk"],
        exchange=False,
    )
    return raw, expect(
        "auto-reply", "wei.zhang@example.edu", "away from my mail", references=[ref(code)], returns_on=None
    )


# -- bounces ---------------------------------------------------------------------------------------


EXCHANGE_NDR = """Delivery has failed to these recipients or groups:

{addr} ({addr})
The email address you entered couldn't be found. Please check the recipient's email address and try to \
resend the message. If the problem continues, please contact your helpdesk.






Diagnostic information for administrators:

Generating server: AM6PR06MB5160.eurprd06.prod.outlook.com

{addr}
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient {addr} not found by SMTP \
address lookup'

Original message headers:

"""


@case("dsn-exchange-online-failed")
def _() -> Built:
    code, day = "NV-ADM", when(23, 9, 0, month=11)
    addr = "tor.eriksen@example.edu"
    diag = (
        f"smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient {addr} not found by SMTP address lookup"
    )
    text = EXCHANGE_NDR.format(addr=addr) + original_headers(code)
    key = upper_hex(16, "ndr", code)
    headers = [
        *received_exchange(day, "AM6PR06MB5160"),
        "From: Microsoft Outlook\r\n <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@example.edu>",
        f"To: <{SERVICE}>",
        f"Date: {rfc_date(day, dt.UTC)}",
        "Content-Language: en-US",
        f"Message-ID: <{key}@AM6PR06MB5160.eurprd06.prod.outlook.com>",
        f"In-Reply-To: {invite_id(code)}",
        f"References: {invite_id(code)}",
        "Thread-Topic: " + ew_b(subject_of(code), "utf-8", 45),
        "Subject: " + ew_b("Undeliverable: " + subject_of(code), "utf-8", 45),
        "Auto-Submitted: auto-replied",
        "X-MS-Exchange-Message-Is-Ndr:",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        f"_000_{key}_",
        [
            multipart(
                "alternative",
                f"_001_{key}_",
                [
                    part(
                        ['Content-Type: text/plain; charset="us-ascii"', "Content-Transfer-Encoding: 7bit"],
                        crlf(text),
                    ),
                    part(
                        ['Content-Type: text/html; charset="us-ascii"', "Content-Transfer-Encoding: 7bit"],
                        crlf(
                            "<html><body><p>Delivery has failed to these recipients or groups:</p>"
                            f'<p><a href="mailto:{addr}">{addr}</a></p></body></html>'
                        ),
                    ),
                ],
            ),
            dsn_part(
                "AM6PR06MB5160.eurprd06.prod.outlook.com",
                [
                    {
                        "Final-recipient": f"RFC822; {addr}",
                        "Action": "failed",
                        "Status": "5.1.10",
                        "Diagnostic-Code": diag,
                    }
                ],
                "Received-From-MTA: dns;AM0PR06MB4083.eurprd06.prod.outlook.com\n"
                "Arrival-Date: Mon, 23 Nov 2020 08:00:03 +0000",
            ),
            part(
                ["Content-Type: message/rfc822"],
                crlf(original_headers(code) + "\nContent-Type: text/plain\n\n"),
            ),
        ],
        params="; report-type=delivery-status",
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@example.edu",
        "Undeliverable: " + subject_of(code),
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.10"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
        diagnostic_contains=["RESOLVER.ADR.RecipientNotFound"],
    )


@case("dsn-postfix-failed")
def _() -> Built:
    code, day = "HF-IHR", when(23, 9, 0, month=11)
    addr = "james.oconnor@example.edu"
    raw = postfix(
        code,
        day,
        addr,
        "Undelivered Mail Returned to Sender",
        POSTFIX_BOUNCE.format(addr=addr),
        {
            "Final-Recipient": f"rfc822; {addr}",
            "Original-Recipient": f"rfc822;{addr}",
            "Action": "failed",
            "Status": "5.1.1",
            "Remote-MTA": "dns; mx.example.edu",
            "Diagnostic-Code": f"smtp; 550 5.1.1 <{addr}>: Recipient address rejected: User\n"
            "    unknown in local recipient table",
        },
        "7F3A21C04B",
    )
    return raw, expect(
        "bounce",
        "mailer-daemon@smtp.example.edu",
        "Undelivered Mail Returned to Sender",
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
        diagnostic_contains=["550 5.1.1", "User unknown in local recipient table"],
    )


@case("dsn-postfix-delayed")
def _() -> Built:
    code, day = "HF-IMU", when(23, 13, 0, month=11)
    addr = "elena.rossi@example.edu"
    text = f"""####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

This is the mail system at host smtp.example.edu.

Your message could not be delivered for more than 4 hour(s).
It will be retried until it is 5 day(s) old.

For further assistance, please send mail to postmaster.

                   The mail system

<{addr}>: connect to mx.example.edu[192.0.2.25]:25: Connection timed out
"""
    raw = postfix(
        code,
        day,
        addr,
        "Delayed Mail (still being retried)",
        text,
        {
            "Final-Recipient": f"rfc822; {addr}",
            "Original-Recipient": f"rfc822;{addr}",
            "Action": "delayed",
            "Status": "4.4.1",
            "Diagnostic-Code": "X-Postfix; connect to mx.example.edu[192.0.2.25]:25: Connection\n    timed out",
            "Will-Retry-Until": "Sat, 28 Nov 2020 09:00:02 +0100 (CET)",
        },
        "9B1D44E07C",
    )
    return raw, expect(
        "delay",
        "mailer-daemon@smtp.example.edu",
        "Delayed Mail (still being retried)",
        failed_recipients=[addr],
        delayed=True,
        status=["4.4.1"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
        diagnostic_contains=["Connection timed out"],
    )


@case("dsn-gmail-failed-with-original")
def _() -> Built:
    code, day = "NV-IKP", when(23, 9, 1, month=11)
    addr, name = "wei.zhang@example.edu", attachment_name(code)
    key = hexid(12, "gdsn", code)
    returned = original_headers(code).replace("\r\n", "\n").rstrip("\n").split("\n")[3:]  # no Received
    original = message(
        returned,
        multipart(
            "mixed",
            "skjemapost-original-1",
            [
                part(
                    [
                        "Content-Type: text/plain; charset=utf-8",
                        "Content-Transfer-Encoding: quoted-printable",
                    ],
                    qp(invitation(code)[1]),
                ),
                part(
                    [
                        f'Content-Type: {XLSX}; name="{name}"',
                        f"Content-Disposition: attachment; {rfc2231('filename', name)}",
                        "Content-Transfer-Encoding: base64",
                    ],
                    b64(blank(code)),
                ),
            ],
        ),
    )
    text = GMAIL_BOUNCE.format(addr=addr)
    headers = [
        f"Received: by 2002:a17:906:{key[:4]}:: with SMTP id {key}; {rfc_date(day)}",
        "Return-Path: <>",
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        f"To: {SERVICE}",
        "Auto-Submitted: auto-replied",
        "Subject: Delivery Status Notification (Failure)",
        f"References: {invite_id(code)}",
        f"In-Reply-To: {invite_id(code)}",
        f"X-Failed-Recipients: {addr}",
        f"Message-ID: <5fbb6c41.1c69fb81.{key}.SMTPIN_ADDED_BROKEN@mx.google.com>",
        f"Date: {rfc_date(day)}",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        f"0000000000009{key}05b4",
        [
            multipart(
                "related",
                f"0000000000009{key}05b5",
                [
                    multipart(
                        "alternative",
                        f"0000000000009{key}05b6",
                        [
                            part(['Content-Type: text/plain; charset="UTF-8"'], text.encode()),
                            part(
                                ['Content-Type: text/html; charset="UTF-8"'],
                                crlf(
                                    f"<html><head><style>* {{ font-family:Roboto, sans-serif }}</style></head><body>"
                                    f"<h2>Address not found</h2><p>Your message wasn't delivered to <b>{addr}</b> "
                                    "because the address couldn't be found.</p></body></html>"
                                ),
                            ),
                        ],
                        fold="; ",
                    ),
                ],
                fold="; ",
            ),
            dsn_part(
                "googlemail.com",
                [
                    {
                        "Final-Recipient": f"rfc822; {addr}",
                        "Action": "failed",
                        "Status": "5.1.1",
                        "Remote-MTA": "dns; mx.example.edu. (192.0.2.25, the server for the "
                        "domain example.edu.)",
                        "Diagnostic-Code": "smtp; 550 5.1.1 The email account that you tried to "
                        "reach does not exist.",
                        "Last-Attempt-Date": "Mon, 23 Nov 2020 00:01:04 -0800 (PST)",
                    }
                ],
                f"Received-From-MTA: dns; {SERVICE}\nArrival-Date: Mon, 23 Nov 2020 00:00:02 -0800 (PST)\n"
                f"X-Original-Message-ID: {invite_id(code)}",
            ),
            part(["Content-Type: message/rfc822"], original),
        ],
        params="; report-type=delivery-status",
        fold="; ",
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "mailer-daemon@googlemail.com",
        "Delivery Status Notification (Failure)",
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
        attachments=[att(name, blank(code), "returned")],
    )


GMAIL_BOUNCE = """\r
** Address not found **\r
\r
Your message wasn't delivered to {addr} because the address couldn't be found, or is unable to \
receive mail.\r
\r
Learn more here: https://support.google.com/mail/?p=NoSuchUser\r
\r
The response from the remote server was:\r
550 5.1.1 The email account that you tried to reach does not exist.\r
"""

QMAIL_BOUNCE = """Hi. This is the qmail-send program at mail.example.edu.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{addr}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <{sender}>
"""

EXIM_BOUNCE = """This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {addr}
    host mx2.example.edu [192.0.2.26]
    SMTP error from remote mail server after RCPT TO:<{addr}>:
    550 5.1.1 User unknown

------ This is a copy of the message, including all the headers. ------

Return-path: <{sender}>
"""


@case("text-bounce-qmail")
def _() -> Built:
    code, day = "NV-IBT", when(23, 9, 2, month=11)
    addr = "ingvild.ronning@example.edu"
    text = (
        QMAIL_BOUNCE.format(addr=addr, sender=SERVICE)
        + original_headers(code)
        + "\n"
        + invitation(code)[1][:400]
        + "\n"
    )
    headers = [
        "Return-Path: <>",
        f"Received: (qmail 21455 invoked for bounce); {rfc_date(day)}",
        f"Date: {rfc_date(day)}",
        "From: MAILER-DAEMON@mail.example.edu",
        f"To: {SERVICE}",
        "Subject: failure notice",
    ]
    raw = message(headers, b"\r\n" + crlf(text))
    return raw, expect(
        "bounce",
        "mailer-daemon@mail.example.edu",
        "failure notice",
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
    )


@case("text-bounce-exim")
def _() -> Built:
    code, day = "NV-IFY", when(23, 9, 3, month=11)
    addr = "kjersti.lund@example.edu"
    text = EXIM_BOUNCE.format(addr=addr, sender=SERVICE) + original_headers(code)
    headers = [
        "Return-path: <>",
        f"Envelope-to: {SERVICE}",
        f"Delivery-date: {rfc_date(day)}",
        "Received: from Debian-exim by relay.example.edu with local (Exim 4.92)\r\n"
        f"\tid 1khSv2-0005cV-Kq\r\n\tfor {SERVICE}; {rfc_date(day)}",
        f"X-Failed-Recipients: {addr}",
        "Auto-Submitted: auto-replied",
        "From: Mail Delivery System <Mailer-Daemon@relay.example.edu>",
        f"To: {SERVICE}",
        "Content-Type: text/plain; charset=us-ascii",
        "Subject: Mail delivery failed: returning message to sender",
        "Message-Id: <E1khSv2-0005cV-Kq@relay.example.edu>",
        f"Date: {rfc_date(day)}",
    ]
    raw = message(headers, b"\r\n" + crlf(text))
    return raw, expect(
        "bounce",
        "mailer-daemon@relay.example.edu",
        "Mail delivery failed: returning message to sender",
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        diagnostic_contains=["550 5.1.1 User unknown"],
        references=[ref(code)],
    )


EXCHANGE_NDR_NB = """Meldingen kunne ikke leveres til enkelte eller alle mottakerne.

      Emne:\t{subject}
      Sendt:\t23.11.2020 09:00

Følgende mottaker(e) kunne ikke nås:

      Hilde Moe på 23.11.2020 09:04
            Det finnes ingen postboks med denne e-postadressen.
            <mail.example.edu #5.1.1 smtp;550 5.1.1 <{addr}>... User unknown>
"""


@case("text-bounce-exchange-nb")
def _() -> Built:
    code, day = "IE-IEL", when(23, 9, 4, month=11)
    addr = "hilde.moe@example.edu"
    text = EXCHANGE_NDR_NB.format(addr=addr, subject=subject_of(code))
    headers = [
        received_plain(day, "exch01.example.edu"),
        "From: System Administrator <postmaster@example.edu>",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        "Subject: " + ew_q("Kan ikke leveres: " + subject_of(code)),
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{upper_hex(16, 'xnb', code)}@exch01.example.edu>",
        "X-MS-Has-Attach:",
        "MIME-Version: 1.0",
    ]
    raw = message(
        headers,
        part(
            ['Content-Type: text/plain; charset="iso-8859-1"', "Content-Transfer-Encoding: quoted-printable"],
            qp(text.replace("–", "-"), "iso-8859-1"),
        ),
    )
    return raw, expect(
        "bounce",
        "postmaster@example.edu",
        "Kan ikke leveres: " + subject_of(code),
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
    )


@case("nested-dsn-forwarded")
def _() -> Built:
    code, day = "NV-IBI", when(24, 8, 15, month=11)
    addr = "hakon.nilsen@example.edu"
    dsn = message(
        [
            "From: Mail Delivery System <MAILER-DAEMON@smtp.example.edu>",
            f"To: {SERVICE}",
            "Subject: " + ew_q("Ikke levert: " + subject_of(code)),
            "Date: Mon, 23 Nov 2020 09:05:00 +0100",
            "Message-ID: <20201123080500.5E1A2C0123@smtp.example.edu>",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
        ],
        multipart(
            "report",
            "5E1A2C0123.1606118700/smtp.example.edu",
            [
                part(["Content-Type: text/plain; charset=us-ascii"], crlf(POSTFIX_BOUNCE.format(addr=addr))),
                dsn_part(
                    "smtp.example.edu",
                    [
                        {
                            "Final-Recipient": f"rfc822; {addr}",
                            "Action": "failed",
                            "Status": "5.2.2",
                            "Diagnostic-Code": "smtp; 552 5.2.2 Mailbox full",
                        }
                    ],
                ),
                part(
                    ["Content-Type: message/rfc822"],
                    crlf(original_headers(code) + "Content-Type: text/plain; charset=utf-8\n\n(...)\n"),
                ),
            ],
            params="; report-type=delivery-status",
            fold="; ",
        ),
    )
    name, email = COORDINATORS["NV"]
    key = upper_hex(16, "nested", code)
    headers = [
        received_plain(day, "exch01.example.edu"),
        f"From: {name} <{email}>",
        f"To: {SERVICE}",
        "Subject: " + ew_q("VS: Ikke levert: " + subject_of(code)),
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{key}@exch01.example.edu>",
        "X-Mailer: Microsoft Outlook 16.0",
        "MIME-Version: 1.0",
    ]
    raw = message(
        headers,
        multipart(
            "mixed",
            f"----=_NextPart_000_0012_{key[:8]}.{key[8:]}",
            [
                part(
                    ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
                    eightbit(
                        "Hei, jeg fikk denne. Håkon har full postkasse, jeg sier fra til ham.\n\nOla", "utf-8"
                    ),
                ),
                part(
                    [
                        "Content-Type: message/rfc822",
                        'Content-Disposition: attachment; filename="Ikke levert.eml"',
                    ],
                    dsn,
                ),
            ],
        ),
    )
    return raw, expect(
        "bounce",
        email,
        "VS: Ikke levert: " + subject_of(code),
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        status=["5.2.2"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
    )


# -- bounces that are not a clean DSN: the evidence decides ---------------------------------------

SENDMAIL_BOUNCE = """The original message was received at Mon, 23 Nov 2020 09:00:02 +0100
from skjemapost.example.edu [192.0.2.10]

   ----- The following addresses had permanent fatal errors -----
<{addr}>
    (reason: 550 5.1.1 <{addr}>... User unknown)

   ----- Transcript of session follows -----
... while talking to mailhost.example.edu.:
>>> DATA
<<< 550 5.1.1 <{addr}>... User unknown
"""


@case("dsn-sendmail-unclosed-boundary")
def _() -> Built:
    # Sendmail's DSN, cut off in its first part (a relay's size limit on delivery reports): the
    # boundary is never closed and the delivery-status part never comes. The daemon sender, the
    # subject and the notice's own list of failed addresses still say what happened.
    code, day = "HF-IFR", when(23, 9, 2, month=11)
    addr = UNITS[code].leader_email
    boundary = "0ANO2Xq1012345.1606118553/mx2.example.edu"
    headers = [
        "Return-Path: <>",
        "Received: from localhost (localhost)\r\n\tby mx2.example.edu (8.15.2/8.15.2) id 0ANO2Xq1012345;\r\n"
        f"\t{rfc_date(day)}",
        f"Date: {rfc_date(day)}",
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx2.example.edu>",
        "Message-Id: <202011230802.0ANO2Xq1012345@mx2.example.edu>",
        f"To: <{SERVICE}>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"',
        "Subject: Returned mail: see transcript for details",
        "Auto-Submitted: auto-generated (failure)",
    ]
    body = f"This is a MIME-encapsulated message\r\n\r\n--{boundary}\r\n\r\n".encode() + crlf(
        SENDMAIL_BOUNCE.format(addr=addr)
    )
    raw = (CRLF.join(headers) + CRLF + CRLF).encode() + body
    return raw, expect(
        "bounce",
        "mailer-daemon@mx2.example.edu",
        "Returned mail: see transcript for details",
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        report_type="delivery-status",
        diagnostic_contains=["550 5.1.1", "User unknown"],
        defects_contain=["CloseBoundaryNotFoundDefect"],
    )


EXIM_DSN_TEXT = """This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {addr}
    mailbox is full: retry timeout exceeded
"""


@case("dsn-exim-empty-delivery-status")
def _() -> Built:
    # Exim's multipart DSN after a MIME sanitiser on the relay emptied the delivery-status part
    # it could not scan: X-Failed-Recipients, the daemon and the subject say what happened.
    code, day = "IE-ITK", when(23, 9, 5, month=11)
    addr = UNITS[code].leader_email
    boundary = "1606118712-eximdsn-1804289383"
    headers = [
        "Return-path: <>",
        f"Envelope-to: {SERVICE}",
        f"Delivery-date: {rfc_date(day)}",
        "Received: from Debian-exim by relay2.example.edu with local (Exim 4.94.2)\r\n"
        f"\tid 1khT0a-0007Xy-3Q\r\n\tfor {SERVICE}; {rfc_date(day)}",
        f"X-Failed-Recipients: {addr}",
        "Auto-Submitted: auto-replied",
        "From: Mail Delivery System <Mailer-Daemon@relay2.example.edu>",
        f"To: {SERVICE}",
        f"References: {invite_id(code)}",
        "MIME-Version: 1.0",
        "Subject: Mail delivery failed: returning message to sender",
        "Message-Id: <E1khT0a-0007Xy-3Q@relay2.example.edu>",
        f"Date: {rfc_date(day)}",
    ]
    body = multipart(
        "report",
        boundary,
        [
            part(["Content-type: text/plain; charset=us-ascii"], crlf(EXIM_DSN_TEXT.format(addr=addr))),
            part(["Content-type: message/delivery-status"], b""),
            part(
                ["Content-type: message/rfc822"],
                crlf(original_headers(code) + "Content-Type: text/plain; charset=utf-8\n\n(...)\n"),
            ),
        ],
        params="; report-type=delivery-status",
        fold="; ",
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "mailer-daemon@relay2.example.edu",
        "Mail delivery failed: returning message to sender",
        failed_recipients=[addr],
        delayed=False,
        original_message_id=invite_id(code),
        report_type="delivery-status",
    )


DOMINO_BOUNCE = """Your message

  Subject: {subject}

was not delivered to:

  {addr}

because:

  User {local} ({addr}) not listed in Domino Directory
"""


@case("dsn-domino-per-message-fields-only")
def _() -> Built:
    # HCL Domino's "DELIVERY FAILURE" report whose delivery-status part holds only the
    # per-message fields: the recipient is named in the notice and in the returned headers.
    code, day = "HF-ISL", when(23, 9, 4, month=11)
    addr = UNITS[code].leader_email
    boundary = "0__=4EBB0E6CDFF3A1878f9e8a93df938690918c4EBB0E6CDFF3A187"
    headers = [
        received_plain(day, "notes01.hf.example.edu", ip="192.0.2.41"),
        f"To: {SERVICE}",
        "From: Postmaster@example.edu",
        f"Date: {rfc_date(day)}",
        f"Subject: DELIVERY FAILURE: User {addr.partition('@')[0]} ({addr}) not listed in Domino Directory",
        "Message-ID: <OF4EBB0E6C.DFF3A187-ONC1258629.002C6E21@example.edu>",
        "X-MIMETrack: Itemize by SMTP Server on notes01/HF/Example(Release 11.0.1|November 03, 2019)",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        boundary,
        [
            part(
                ["Content-type: text/plain; charset=UTF-8", "Content-transfer-encoding: 8bit"],
                eightbit(
                    DOMINO_BOUNCE.format(subject=subject_of(code), addr=addr, local=addr.partition("@")[0]),
                    "utf-8",
                ),
            ),
            part(
                ["Content-type: message/delivery-status"],
                crlf(
                    "Reporting-MTA: dns;notes01.hf.example.edu\nArrival-Date: Mon, 23 Nov 2020 09:00:04 +0100\n"
                ),
            ),
            part(["Content-type: text/rfc822-headers"], crlf(original_headers(code))),
        ],
        params="; report-type=delivery-status",
        fold=";\r\n\t",
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "postmaster@example.edu",
        f"DELIVERY FAILURE: User {addr.partition('@')[0]} ({addr}) not listed in Domino Directory",
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        original_message_id=invite_id(code),
        report_type="delivery-status",
    )


IRONPORT_BOUNCE = """The following message to <{addr}> was undeliverable.
The reason for the problem:
5.1.0 - Unknown address error 550-'5.1.1 <{addr}>: Recipient address rejected: User unknown in virtual mailbox table'
"""


@case("dsn-ironport-diagnostic-code-only")
def _() -> Built:
    # A mail gateway (Cisco's Secure Email) whose recipient block holds only a Diagnostic-Code:
    # no Final-Recipient, no Action, no Status; the code and the address are in the diagnostic.
    code, day = "IE-IIK", when(23, 9, 3, month=11)
    addr = UNITS[code].leader_email
    boundary = "===============0536213094862851873=="
    diag = f"smtp; 550 5.1.1 <{addr}>: Recipient address rejected: User unknown in virtual mailbox table"
    headers = [
        received_plain(day, "esa1.example.edu", ip="192.0.2.30"),
        "From: Mail Delivery System <MAILER-DAEMON@esa1.example.edu>",
        f"To: {SERVICE}",
        f"Date: {rfc_date(day)}",
        "Subject: Delivery Status Notification (Failure)",
        "Message-Id: <1b9c3f$5e2ab@esa1.example.edu>",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        boundary,
        [
            part(["Content-Type: text/plain"], crlf(IRONPORT_BOUNCE.format(addr=addr))),
            part(
                ["Content-Type: message/delivery-status"],
                crlf(f"Reporting-MTA: dns; esa1.example.edu\n\nDiagnostic-Code: {diag}\n"),
            ),
            part(["Content-Type: text/rfc822-headers"], crlf(original_headers(code))),
        ],
        params="; report-type=delivery-status",
        fold="; ",
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "mailer-daemon@esa1.example.edu",
        "Delivery Status Notification (Failure)",
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        report_type="delivery-status",
        diagnostic_contains=["550 5.1.1", "User unknown in virtual mailbox table"],
    )


EXCHANGE_NDR_FR = """La remise aux destinataires ou groupes suivants a échoué :

{fwd}
L'adresse de messagerie que vous avez entrée est introuvable. Vérifiez l'adresse de messagerie du \
destinataire et essayez de renvoyer le message. Si le problème persiste, contactez le support technique.






Informations de diagnostic pour les administrateurs :

Serveur de génération : EXCH01.labo.example.fr

{fwd}
Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'

En-têtes de message d'origine :

"""


@case("text-bounce-exchange-fr-non-remis")
def _() -> Built:
    # A leader's mail is forwarded to a partner laboratory in France, whose Exchange server
    # cannot deliver it and answers in French, from its system mailbox. The address to mark is
    # the one we sent to: it is the returned headers' To.
    code, day = "IE-IMF", when(23, 9, 6, month=11)
    u = UNITS[code]
    fwd = "p.raman@labo.example.fr"
    text = EXCHANGE_NDR_FR.format(fwd=fwd) + original_headers(code, delivered=True)
    key = upper_hex(16, "ndrfr", code)
    headers = [
        received_plain(day, "EXCH01.labo.example.fr", ip="203.0.113.15"),
        "From: Microsoft Outlook\r\n <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@labo.example.fr>",
        f"To: <{SERVICE}>",
        f"Date: {rfc_date(day)}",
        "Content-Language: fr-FR",
        f"Message-ID: <{key}@EXCH01.labo.example.fr>",
        f"In-Reply-To: {invite_id(code)}",
        f"References: {invite_id(code)}",
        "Subject: " + ew_b("Non remis : " + subject_of(code), "utf-8", 45),
        "Auto-Submitted: auto-replied",
        "X-MS-Exchange-Message-Is-Ndr:",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "alternative",
        f"_000_{key}_",
        [
            part(
                ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: quoted-printable"],
                qp(text),
            ),
            part(
                ['Content-Type: text/html; charset="utf-8"', "Content-Transfer-Encoding: quoted-printable"],
                qp(
                    "<html><body><p>La remise aux destinataires ou groupes suivants a échoué :</p>"
                    f'<p><a href="mailto:{fwd}">{fwd}</a></p></body></html>'
                ),
            ),
        ],
    )
    raw = message(headers, body)
    return raw, expect(
        "bounce",
        "microsoftexchange329e71ec88ae4615bbc36ab6ce41109e@labo.example.fr",
        "Non remis : " + subject_of(code),
        references=[ref(code)],
        failed_recipients=[u.leader_email],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        diagnostic_contains=["RESOLVER.ADR.RecipNotFound"],
    )


NB_GATEWAY_BOUNCE = """Dette er e-postsystemet på mx01.driftspartner.example.no.

Meldingen din kunne ikke leveres til en eller flere mottakere.
Den returnerte meldingen følger under.

                   E-postsystemet

<{addr}>: vert mx.example.edu[192.0.2.25] sa: 550 5.1.1
    <{addr}>: Recipient address rejected: User unknown in local recipient
    table (svar på RCPT TO-kommandoen)

----- Opprinnelig melding -----

"""


@case("text-bounce-mailer-daemon-no-domain-nb")
def _() -> Built:
    # The institution's outgoing relay, run by a hosting partner with Norwegian bounce texts:
    # a plain-text notice whose From is a bare MAILER-DAEMON (no domain, so no address at all)
    # and whose subject is Norwegian.
    code, day = "NV-IMT", when(23, 9, 7, month=11)
    addr = UNITS[code].leader_email
    headers = [
        "Return-Path: <>",
        f"Received: by mx01.driftspartner.example.no (Postfix)\r\n\tid 4CkQ9B2mZ1z9sWx; {rfc_date(day)}",
        f"Date: {rfc_date(day)}",
        "From: MAILER-DAEMON (Postsystemet)",
        f"To: {SERVICE}",
        "Subject: Returnert e-post: meldingen kunne ikke leveres",
        "Message-Id: <20201123080700.4CkQ9B2mZ1z9sWx@mx01.driftspartner.example.no>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    raw = message(
        headers, b"\r\n" + eightbit(NB_GATEWAY_BOUNCE.format(addr=addr) + original_headers(code), "utf-8")
    )
    return raw, expect(
        "bounce",
        "",
        "Returnert e-post: meldingen kunne ikke leveres",
        references=[ref(code)],
        failed_recipients=[addr],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
        diagnostic_contains=["550 5.1.1"],
    )


ES_POST_MASTER_BOUNCE = """Este es un mensaje generado automáticamente por el servidor de correo.

No se ha podido entregar su mensaje a los siguientes destinatarios:

  {fwd}
  Motivo: 550 5.1.1 Usuario desconocido / User unknown

----- Mensaje original -----
"""


@case("text-bounce-post-master-re-subject")
def _() -> Built:
    # A leader's mail forwarded to a Spanish university, whose old mail server answers from
    # post_master@ with a "Re:" subject, in Spanish: a person's mail by its looks alone.
    code, day = "NV-IKJ", when(23, 9, 8, month=11)
    u = UNITS[code]
    fwd = "m.garcia@correo.uni.example.es"
    headers = [
        received_plain(day, "correo.uni.example.es", ip="203.0.113.44"),
        f"Date: {rfc_date(day)}",
        "From: post_master@correo.uni.example.es",
        f"To: {SERVICE}",
        "Subject: " + ew_q("Re: " + subject_of(code), "utf-8", 60),
        "Message-ID: <20201123090800.77A1B2C3@correo.uni.example.es>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    text = ES_POST_MASTER_BOUNCE.format(fwd=fwd) + original_headers(code, delivered=True)
    raw = message(headers, b"\r\n" + eightbit(text, "utf-8"))
    return raw, expect(
        "bounce",
        "post_master@correo.uni.example.es",
        "Re: " + subject_of(code),
        references=[ref(code)],
        failed_recipients=[u.leader_email],
        delayed=False,
        status=["5.1.1"],
        original_message_id=invite_id(code),
    )


def sent_invitation(code: str) -> bytes:
    """The unit's invitation exactly as the service sends it (form attached, the verneombud
    copied), with fixed boundaries."""
    u = UNITS[code]
    subject, text, html = invitation(code)
    copied = (Mailbox(u.verneombud_email, u.verneombud_name),) if u.verneombud_email else ()
    raw = compose(
        Rendered(subject, text, html),
        Envelope(to=(Mailbox(u.leader_email, u.leader_name),), cc=copied),
        Headers(
            sender=Mailbox(SERVICE, SERVICE_NAME), message_id=invite_id(code), date=INVITED, reply_to=SERVICE
        ),
        [Attachment(attachment_name(code), blank(code))],
    )
    # compose picks random boundaries; fix them so the file is the same on every build
    for n, boundary in enumerate(dict.fromkeys(re.findall(rb'boundary="([0-9a-f]{32})"', raw))):
        raw = raw.replace(boundary, f"{'0' * 31}{n + 1}".encode())
    return raw


def delivered_copy(code: str, raw: bytes) -> bytes:
    """``raw`` as it lay in the leader's mailbox: what a mailbox's own rule returns or passes on."""
    leader = UNITS[code].leader_email
    return (
        f"Return-Path: <{SERVICE}>\r\nDelivered-To: {leader}\r\n"
        "Received: from mx.example.edu ([192.0.2.25])\r\n\tby mailstore.example.edu with LMTP\r\n"
        f"\tid 9fJkA3Jzu1+QcgAAxh3i3g\r\n\tfor <{leader}>; Mon, 23 Nov 2020 09:00:03 +0100\r\n"
    ).encode() + raw


def returned_invitation(code: str, day: dt.datetime, frm: str, subject: str, text: str, key: str) -> bytes:
    """A notice from inside the institution with our invitation attached as message/rfc822."""
    headers = [
        received_plain(day, "smtp.example.edu"),
        f"From: {frm}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"Subject: {ew_q(subject, 'utf-8', 60)}",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{key}@smtp.example.edu>",
        f"In-Reply-To: {invite_id(code)}",
        "MIME-Version: 1.0",
    ]
    return message(
        headers,
        multipart(
            "mixed",
            f"----=_Part_{key}",
            [
                part(
                    ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
                    eightbit(text, "utf-8"),
                ),
                part(
                    [
                        "Content-Type: message/rfc822",
                        f'Content-Disposition: attachment; filename="{attachment_name(code)[:-5]}.eml"',
                    ],
                    delivered_copy(code, sent_invitation(code)),
                ),
            ],
        ),
    )


@case("returned-invitation-no-reply-institution")
def _() -> Built:
    # A department's closed mailbox, answered by the archive system's no-reply address inside
    # the institution's own domain, returning our invitation with the form: never a deputy's
    # submission, never answered; the leader's address is the one that failed.
    code, day = "HF-IKM", when(23, 9, 10, month=11)
    u = UNITS[code]
    text = (
        "Denne e-postadressen tar ikke lenger imot e-post. Meldingen din ble ikke levert, og den er "
        "returnert uåpnet (vedlagt).\n\nThis address no longer accepts email. Your message was not "
        "delivered and is returned unopened (attached).\n\nPostmottak, Det humanistiske fakultet\n"
    )
    raw = returned_invitation(
        code,
        day,
        "Postmottak HF <no-reply@example.edu>",
        "SV: " + subject_of(code),
        text,
        hexid(16, "noreply", code),
    )
    return raw, expect(
        "bounce",
        "no-reply@example.edu",
        "SV: " + subject_of(code),
        attachments=[att(attachment_name(code), blank(code), "returned")],
        references=[ref(code)],
        failed_recipients=[u.leader_email],
        delayed=False,
        original_message_id=invite_id(code),
        forwarded_subjects=[subject_of(code)],
    )


@case("returned-invitation-post-master-institution")
def _() -> Built:
    # The institution's own mail system tells, from post_master@ and under a "Re:" subject,
    # that the leader's mailbox is full, with our invitation and its form attached.
    code, day = "IE-IDI", when(23, 9, 11, month=11)
    u = UNITS[code]
    text = (
        "Mottakerens postkasse er full, og meldingen kunne ikke leveres. Den opprinnelige meldingen "
        "er vedlagt.\n\nThe recipient's mailbox is full and the message could not be delivered. The "
        "original message is attached.\n"
    )
    raw = returned_invitation(
        code,
        day,
        "post_master@example.edu",
        "Re: " + subject_of(code),
        text,
        hexid(16, "postmaster", code),
    )
    return raw, expect(
        "bounce",
        "post_master@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(attachment_name(code), blank(code), "returned")],
        references=[ref(code)],
        failed_recipients=[u.leader_email],
        delayed=False,
        original_message_id=invite_id(code),
    )


@case("noreply-archive-acknowledgement")
def _() -> Built:
    # The archive system's receipt for an invitation that reached a unit's shared mailbox: from
    # noreply@, no Auto-Submitted, nothing failed. Machine mail, so never answered; not a bounce,
    # so nothing is marked failing.
    code, day = "NV-IBT", when(23, 9, 30, month=11)
    subject = "Vi har mottatt henvendelsen din: " + subject_of(code)
    text = (
        "Henvendelsen din er registrert i sak 20/01234 og blir behandlet så snart som mulig.\n\n"
        "Dette er en automatisk generert e-post som ikke kan besvares.\n\nArkivtjenesten\n"
    )
    headers = [
        received_plain(day, "arkiv.example.edu", ip="192.0.2.60"),
        "From: Arkivtjenesten <noreply@example.edu>",
        f"To: {SERVICE}",
        f"Subject: {ew_q(subject, 'utf-8', 60)}",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{hexid(20, 'archive', code)}@arkiv.example.edu>",
        f"In-Reply-To: {invite_id(code)}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    raw = message(headers, b"\r\n" + eightbit(text, "utf-8"))
    return raw, expect("auto-reply", "noreply@example.edu", subject, references=[ref(code)], returns_on=None)


# -- reports: spam complaints and read receipts ----------------------------------------------------


@case("arf-spam-complaint")
def _() -> Built:
    code, day = "NV-IKP", when(25, 3, 12, month=11)
    addr = UNITS[code].leader_email
    key = hexid(16, "arf", code)
    report = (
        "Feedback-Type: abuse\nUser-Agent: ExampleFBL/2.0\nVersion: 1\n"
        f"Original-Mail-From: <{SERVICE}>\nOriginal-Rcpt-To: <{addr}>\n"
        "Arrival-Date: Mon, 23 Nov 2020 08:00:03 +0000\nSource-IP: 192.0.2.10\n"
        "Reported-Domain: example.edu\n"
        "Authentication-Results: fbl.example.net; dkim=pass header.d=example.edu; spf=pass\n"
    )
    headers = [
        f"Received: from fbl.example.net (fbl.example.net [203.0.113.5])\r\n\tby mx.example.edu; "
        f"{rfc_date(day)}",
        "From: Feedback Loop <fbl-reports@fbl.example.net>",
        "To: abuse@example.edu",
        f"Cc: {SERVICE}",
        "Subject: FW: Complaint about message from 192.0.2.10",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{key}@fbl.example.net>",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        f"----=_ARF_{key}",
        [
            part(
                ['Content-Type: text/plain; charset="US-ASCII"', "Content-Transfer-Encoding: 7bit"],
                crlf(
                    "This is an email abuse report for an email message received from IP 192.0.2.10 on Mon, 23 "
                    "Nov 2020 08:00:03 +0000.\nFor more information about this format please see "
                    "http://tools.ietf.org/html/rfc5965.\n"
                ),
            ),
            part(["Content-Type: message/feedback-report"], crlf(report)),
            part(
                ["Content-Type: message/rfc822", "Content-Disposition: inline"],
                crlf(
                    original_headers(code).replace(addr, "redacted@example.edu")
                    + "\n[message body redacted]\n"
                ),
            ),
        ],
        params='; report-type="feedback-report"',
        fold="; ",
    )
    raw = message(headers, body)
    return raw, expect(
        "report",
        "fbl-reports@fbl.example.net",
        "FW: Complaint about message from 192.0.2.10",
        report_type="feedback-report",
        original_message_id=invite_id(code),
    )


@case("mdn-thunderbird-read-receipt")
def _() -> Built:
    code, day = "HF-ISL", when(24, 10, 30, month=11)
    u = UNITS[code]
    key = upper_hex(24, "mdn", code)
    subject = "Returkvittering (vist) - " + subject_of(code)
    headers = [
        received_plain(day, "[10.20.30.41]"),
        f"To: {SERVICE}",
        f"From: {mailbox(u.leader_name, u.leader_email)}",
        f"Message-ID: <{key[:8].lower()}-mdn@example.edu>",
        f"Date: {rfc_date(day)}",
        "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:78.0) Gecko/20100101\r\n "
        "Thunderbird/78.5.1",
        "MIME-Version: 1.0",
        f"Subject: {ew_q(subject, 'UTF-8', 60)}",
        f"In-Reply-To: {invite_id(code)}",
        f"References: {invite_id(code)}",
    ]
    body = multipart(
        "report",
        f"------------{key}",
        [
            part(
                ["Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"],
                eightbit(
                    f"Dette er en returkvittering for e-posten du sendte til {u.leader_name} "
                    f"<{u.leader_email}>.\n\n"
                    "Merk: Denne returkvitteringen bekrefter bare at meldingen ble vist på mottakerens "
                    "datamaskin. Det er ingen garanti for at mottakeren har lest eller forstått "
                    "innholdet.\n",
                    "utf-8",
                ),
            ),
            part(
                [
                    'Content-Type: message/disposition-notification; name="MDNPart2.txt"',
                    "Content-Disposition: inline",
                    "Content-Transfer-Encoding: 7bit",
                ],
                crlf(
                    f"Reporting-UA: {u.leader_email.split('@')[1]}; Mozilla Thunderbird\n"
                    f"Final-Recipient: rfc822;{u.leader_email}\nOriginal-Message-ID: {invite_id(code)}\n"
                    "Disposition: manual-action/MDN-sent-manually; displayed\n"
                ),
            ),
            part(
                [
                    'Content-Type: text/rfc822-headers; name="MDNPart3.txt"',
                    "Content-Transfer-Encoding: 7bit",
                    "Content-Disposition: inline",
                ],
                crlf(original_headers(code)),
            ),
        ],
        params="; report-type=disposition-notification",
        fold="; ",
    )
    raw = message(headers, body)
    return raw, expect(
        "report",
        u.leader_email,
        subject,
        references=[ref(code)],
        report_type="disposition-notification",
        original_message_id=invite_id(code),
    )


OUTLOOK_READ_NB = """Meldingen

    Til: {name}
    Emne: {subject}
    Sendt: mandag 23. november 2020 09:00:00 (UTC+01:00) Amsterdam, Berlin, Bern, Roma, Stockholm, Wien

ble lest mandag 23. november 2020 10:40:12 (UTC+01:00) Amsterdam, Berlin, Bern, Roma, Stockholm, Wien.
"""

OUTLOOK_READ_EN = """Your message

  To: {name}
  Subject: {subject}
  Sent: 23 November 2020 09:00:00 (UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna

was read on 24 November 2020 09:02:41 (UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna.
"""


@case("outlook-read-receipt-report")
def _() -> Built:
    code, day = "IE-IDI", when(23, 9, 40, month=11)
    u = UNITS[code]
    subject = "Lest: " + subject_of(code)
    key = upper_hex(20, "lest", code)
    text = OUTLOOK_READ_NB.format(name=u.leader_name, subject=subject_of(code))
    headers = [
        *received_exchange(day, "AM0PR06MB4083"),
        f"From: {mailbox(u.leader_name, u.leader_email)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        "Subject: " + ew_b(subject, "utf-8", 45),
        "Thread-Topic: " + ew_b(subject_of(code), "utf-8", 45),
        f"Thread-Index: {thread_index(code)}",
        f"Date: {rfc_date(day, dt.UTC)}",
        f"Message-ID: <{key}@AM0PR06MB4083.eurprd06.prod.outlook.com>",
        f"References: {invite_id(code)}",
        f"In-Reply-To: {invite_id(code)}",
        "Content-Language: nb-NO",
        "X-MS-Has-Attach:",
        "X-MS-TNEF-Correlator:",
        "MIME-Version: 1.0",
    ]
    body = multipart(
        "report",
        f"_002_{key}_",
        [
            part(
                ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: base64"],
                b64(crlf(text)),
            ),
            part(
                ["Content-Type: message/disposition-notification"],
                crlf(
                    f"Final-Recipient: RFC822; {u.leader_email}\nDisposition: "
                    "automatic-action/MDN-sent-automatically;"
                    f" displayed\nX-MSExch-Correlation-Key: {b64(digest('corr', code)[:16]).decode().strip()}\n"
                    f"Original-Message-ID: {invite_id(code)}\n"
                ),
            ),
        ],
        params="; report-type=disposition-notification",
    )
    raw = message(headers, body)
    return raw, expect(
        "report",
        u.leader_email,
        subject,
        references=[ref(code)],
        report_type="disposition-notification",
        original_message_id=invite_id(code),
        text_contains=["ble lest mandag 23. november 2020"],
    )


@case("outlook-read-receipt-plain")
def _() -> Built:
    code, day = "HF-IHR", when(24, 8, 2, month=11)
    u = UNITS[code]
    subject = "Read: " + subject_of(code)
    text = OUTLOOK_READ_EN.format(name=u.leader_name, subject=subject_of(code))
    exchange = [
        "X-MS-Exchange-Organization-SCL: -1",
        "X-MS-Exchange-Organization-AuthSource: AM5PR06MB4119.eurprd06.prod.outlook.com",
    ]
    raw = auto_reply(code, day, subject, text, exchange, lang="en")
    return raw, expect(
        "report",
        u.leader_email,
        subject,
        references=[ref(code)],
        report_type="disposition-notification",
        original_message_id=invite_id(code),
    )


# -- lists, and our own mail ------------------------------------------------------------------------


@case("mailing-list-mailman")
def _() -> Built:
    day = when(4, 12, 0)
    key = hexid(20, "list")
    text = (
        "Hei alle sammen,\n\nJulebordet 17. desember blir digitalt i år. Påmelding innen fredag.\n\n"
        "Hilsen sosialkomiteen\n_______________________________________________\n"
        "Ansatte-IE mailing list -- ansatte-ie@lists.example.edu\n"
        "To unsubscribe send an email to ansatte-ie-leave@lists.example.edu\n"
    )
    headers = [
        "Return-Path: <ansatte-ie-bounces@lists.example.edu>",
        received_plain(day, "lists.example.edu"),
        "From: Sosialkomiteen IE <sosial-ie@example.edu>",
        "To: ansatte-ie@lists.example.edu",
        "Subject: " + ew_q("[Ansatte-IE] Julebord 2020 blir digitalt"),
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{key}@example.edu>",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 8bit",
        "Message-ID-Hash: 5RZ3QYBIGHT3KXU7HG2DPXMNYYLSVTJ6",
        "X-Message-ID-Hash: 5RZ3QYBIGHT3KXU7HG2DPXMNYYLSVTJ6",
        "X-MailFrom: sosial-ie@example.edu",
        "X-Mailman-Version: 3.3.2",
        "List-Id: Ansatte ved IE <ansatte-ie.lists.example.edu>",
        "Archived-At: <https://lists.example.edu/hyperkitty/list/ansatte-ie@lists.example.edu/message/"
        "5RZ3QYBIGHT3KXU7HG2DPXMNYYLSVTJ6/>",
        "List-Archive: <https://lists.example.edu/hyperkitty/list/ansatte-ie@lists.example.edu/>",
        "List-Help: <mailto:ansatte-ie-request@lists.example.edu?subject=help>",
        "List-Owner: <mailto:ansatte-ie-owner@lists.example.edu>",
        "List-Post: <mailto:ansatte-ie@lists.example.edu>",
        "List-Subscribe: <mailto:ansatte-ie-join@lists.example.edu>",
        "List-Unsubscribe: <mailto:ansatte-ie-leave@lists.example.edu>",
    ]
    raw = message(headers, b"\r\n" + eightbit(text, "utf-8"))
    return raw, expect(
        "list",
        "sosial-ie@example.edu",
        "[Ansatte-IE] Julebord 2020 blir digitalt",
        text_contains=["Julebordet 17. desember blir digitalt"],
    )


@case("own-sent-copy")
def _() -> Built:
    code = "IE-IEL"
    subject = invitation(code)[0]
    raw = (
        f"Return-Path: <{SERVICE}>\r\nDelivered-To: {SERVICE}\r\n"
        f"Received: from skjemapost.example.edu ([192.0.2.10])\r\n\tby mx.example.edu with LMTP\r\n"
        f"\tid kP4xB8Bvu1/TbQAAxh3i3g\r\n\t(envelope-from <{SERVICE}>)\r\n\tfor <{SERVICE}>; "
        f"Mon, 23 Nov 2020 09:00:03 +0100\r\n"
    ).encode() + sent_invitation(code)
    return raw, expect(
        "own",
        SERVICE,
        subject,
        references=[ref(code)],
        attachments=[att(attachment_name(code), blank(code))],
        message_id=invite_id(code),
        original_message_id=invite_id(code),
    )


# ---- writing the files ---------------------------------------------------------------------------


def large_message() -> Built:
    """A reply carrying a 30 MB workbook (the form plus a 30 MB picture), built at test time only."""
    code, day = "HF-IMU", when(15, 11, 0)
    name = attachment_name(code)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(filled(code))) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        picture = zipfile.ZipInfo("xl/media/image1.png", (2020, 12, 15, 11, 0, 0))
        dst.writestr(picture, random.Random(2020).randbytes(30 * 2**20), compress_type=zipfile.ZIP_STORED)
    data = out.getvalue()
    raw = gmail(
        code,
        day,
        "Sorry for the big file, I pasted a photo of the whiteboard into the form.",
        [(name, data, XLSX)],
    )
    return raw, expect(
        "submission",
        "elena.rossi@example.edu",
        "Re: " + subject_of(code),
        attachments=[att(name, data)],
        references=[ref(code)],
    )


def main() -> None:
    for old in HERE.glob("*.eml"):  # each message and its twin; outcomes.json is kept by hand
        old.unlink()
        old.with_suffix(".json").unlink(missing_ok=True)
    total = 0
    for name, build in CASES.items():
        raw, expected = build()
        (HERE / f"{name}.eml").write_bytes(raw)
        (HERE / f"{name}.json").write_text(
            json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        total += len(raw)
    print(f"{len(CASES)} messages, {total / 1024:.0f} KB, in {HERE}")


if __name__ == "__main__":
    main()
