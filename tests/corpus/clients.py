"""How the corpus messages are written: the campaign's side (references, invitations, real forms
built with ``service.formbook.build_form`` and filled with openpyxl) and the mail clients and mail
servers that answer (Outlook/Exchange, Gmail, Apple Mail, Thunderbird/K-9, simple clients,
auto-responders, Postfix). Each writes headers, folding, boundaries and encodings the way the real
one does. Everything is deterministic: fixed dates, boundaries, Message-IDs and zip timestamps.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import sys
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.utils import get_column_letter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from builders import (  # noqa: E402
    b64,
    digest,
    eightbit,
    ew_b,
    ew_q,
    guid,
    hexid,
    message,
    multipart,
    part,
    qp,
    quote_lines,
    rfc2231,
    stable_zip,
    thread_index,
    tnef,
    upper_hex,
)

from service.campaign.roster import read_roster  # noqa: E402
from service.forms.build import build_form  # noqa: E402
from service.forms.definition import load_form  # noqa: E402
from service.forms.model import ANSWER_COL, LABEL_COL, SHEET_NAMES, sheet_layout  # noqa: E402
from service.mail import tokens  # noqa: E402
from service.mail.render import Renderer  # noqa: E402
from service.models import Unit  # noqa: E402

SECRET, CAMPAIGN = b"corpus-secret", "aml-2020"
TITLE, OPENS, DEADLINE = "Oppsummering og evaluering 2020", dt.date(2020, 11, 23), dt.date(2020, 12, 16)
SERVICE, SERVICE_NAME = "hms-skjema@example.edu", "HMS-avdelingen"
OSLO = ZoneInfo("Europe/Oslo")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORM = load_form(ROOT / "forms" / "oppsummering-og-evaluering.toml")
LAYOUT = sheet_layout(FORM)
UNITS: dict[str, Unit] = {u.code: u for u in read_roster(ROOT / "config" / "roster.example.csv").units}
COORDINATORS = {
    "IE": ("Kari Nordmann", "kari.nordmann@example.edu"),
    "NV": ("Ola Hansen", "ola.hansen@example.edu"),
    "HF": ("Ingrid Berg", "ingrid.berg@example.edu"),
}
INVITED = dt.datetime(2020, 11, 23, 8, 0, tzinfo=dt.UTC)


# ---- the campaign's side: references, invitations, forms -----------------------------------------


def ref(code: str) -> str:
    return tokens.reference(SECRET, CAMPAIGN, code)


def invite_id(code: str) -> str:
    return f"<{hexid(24, 'invitation', code)}.skjemapost@example.edu>"


def attachment_name(code: str, lang: str | None = None) -> str:
    return f"{FORM.title.get(lang or UNITS[code].language)} – {code}.xlsx"  # type: ignore[arg-type]


@functools.cache
def renderer() -> Renderer:
    return Renderer(ROOT / "templates" / "email")


@functools.cache
def invitation(code: str) -> tuple[str, str, str]:
    """(subject, text, html) of the unit's invitation, rendered from the shipped templates."""
    u = UNITS[code]
    coordinator = COORDINATORS[u.faculty]
    context = {
        "campaign": {
            "id": CAMPAIGN,
            "title": TITLE,
            "opens": OPENS,
            "deadline": DEADLINE,
            "guidance_url": "",  # the corpus's campaign links no guidance page
        },
        "sender": {"name": SERVICE_NAME, "address": SERVICE},
        "unit": {
            "code": u.code,
            "name": u.name,
            "faculty": u.faculty,
            "leader_name": u.leader_name,
            "leader_email": u.leader_email,
            "verneombud_name": u.verneombud_name,
            "verneombud_email": u.verneombud_email,
        },
        "reference": ref(code),
        "coordinators": [{"name": coordinator[0], "email": coordinator[1]}],
        "attachment_name": attachment_name(code),
        "verneombud_copied": bool(u.verneombud_email),  # mail.cc_verneombud is on by default
    }
    r = renderer().render("leader-invitation", u.language, context)
    return r.subject, r.text, r.html


def subject_of(code: str) -> str:
    return invitation(code)[0]


#: sha256 of every real form built here -> its unit, so a twin .json can say whose form it carries
FORMS: dict[str, str] = {}


def real_form(code: str, data: bytes) -> bytes:
    """Record ``data`` as a real form of unit ``code`` (its hidden stamp names that unit)."""
    FORMS[hashlib.sha256(data).hexdigest()] = code
    return data


@functools.cache
def blank(code: str) -> bytes:
    u = UNITS[code]
    return real_form(
        code,
        stable_zip(
            build_form(
                FORM,
                u,
                lang=u.language,
                reference=ref(code),
                stamp=tokens.stamp(SECRET, CAMPAIGN, code),
                campaign_title=TITLE,
                deadline=DEADLINE,
            )
        ),
    )


def at(key: str, column: str | None = None) -> str:
    row = LAYOUT[key]
    if column is None:
        return f"{get_column_letter(ANSWER_COL)}{row}"
    index = [c.id for c in FORM.field(key.split("/")[0]).columns].index(column)
    return f"{get_column_letter(LABEL_COL + index)}{row}"


def _answers(code: str, lang: str) -> dict[str, Any]:
    u = UNITS[code]
    n = 8 + digest("staff", code)[0] % 60
    nb = lang == "nb"
    return {
        at("resultatrapport_gjennomgatt"): "Ja" if nb else "Yes",
        at("forlop"): "Gruppeprosess på side 8: laget en ferdig tiltaksplan i vår"
        if nb
        else "Group process on page 8: made a finished plan of measures in the spring",
        at("antall_ansatte"): n,
        at("motedato"): dt.date(2020, 11, 3 + digest("day", code)[0] % 20),
        at("moteform"): "Digitalt møte" if nb else "Online",
        at("antall_deltakere"): n - 3,
        at("verneombud_navn"): u.verneombud_name,
        at("verneombud_involvert"): "Ja" if nb else "Yes",
        at("losam_involvert"): "Ikke relevant" if nb else "Not relevant",
        at("hvordan_har_vi_det"): "Travelt, men vi har det godt sammen; noen savner kontoret."
        if nb
        else "Busy, but we are doing well together; some miss the office.",
        at("handlingsplan_ephorte"): "Ja" if nb else "Yes",
        at("saksnummer"): f"2020/{10000 + digest('case', code)[1] * 37}",
        at("tiltak/1", "beskrivelse"): "Faste digitale lunsjmøter hver fredag"
        if nb
        else "Weekly online lunch meetings",
        at("tiltak/1", "tema"): "Sosialt fellesskap" if nb else "Social community",
        at("tiltak/1", "status"): "Nytt" if nb else "New",
        at("tiltak/1", "ansvarlig"): "Instituttleder" if nb else "Head of department",
        at("tiltak/1", "frist"): dt.date(2021, 3, 1),
        at("tiltak/2", "beskrivelse"): "Gjennomgang av arbeidsmengde i undervisning"
        if nb
        else "Review of teaching workload",
        at("tiltak/2", "tema"): "Arbeidsmengde" if nb else "Workload",
        at("tiltak/2", "status"): "Videreført" if nb else "Continued",
        at("tiltak/2", "ansvarlig"): "Nestleder undervisning" if nb else "Deputy head, teaching",
        at("pandemi_pavirkning"): 4,
        at("prosess_vurdering"): 3,
        at("risikovurdert"): "Ja" if nb else "Yes",
        at("ledermote_agenda"): "Ja" if nb else "Yes",
        at("fullt_forsvarlig"): "Ja" if nb else "Yes",
        at("hjelp_onsket/ingen"): "Ja" if nb else "Yes",
        at("kommentarer"): "Møtet ble holdt på Teams – «god deltakelse» & <ingen> tekniske problemer."
        if nb
        else "The meeting was held on Teams – good turnout.",
        at("bekreftet"): "Ja" if nb else "Yes",
        at("bekreftet_dato"): dt.date(2020, 12, 8),
    }


MISTAKES = {  # one of each common mistake
    at("antall_ansatte"): "ca. 20",
    at("motedato"): "12/16/2020",
    at("moteform"): None,
    at("saksnummer"): None,
    at("pandemi_pavirkning"): 7,
    at("tiltak/1", "tema"): "Fiskeri",
    at("bekreftet"): "Nei",
}


@functools.cache
def filled(code: str, variant: str = "valid") -> bytes:
    """The unit's form filled in with openpyxl: "valid", "mistakes", or "empty" (saved untouched)."""
    lang = UNITS[code].language
    wb = openpyxl.load_workbook(io.BytesIO(blank(code)))
    ws = wb[SHEET_NAMES[lang][1]]  # type: ignore[index]
    values = {} if variant == "empty" else _answers(code, lang)
    if variant == "mistakes":
        values |= MISTAKES
    for coordinate, value in values.items():
        ws[coordinate] = value
    out = io.BytesIO()
    wb.save(out)
    return real_form(code, stable_zip(out.getvalue()))


def csv_export(code: str) -> bytes:
    """What Google Sheets' File > Download > CSV gives for the filled answer sheet."""
    wb = openpyxl.load_workbook(io.BytesIO(filled(code)), data_only=True)
    ws = wb[SHEET_NAMES[UNITS[code].language][1]]  # type: ignore[index]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in ws.iter_rows(values_only=True):
        writer.writerow(
            ["" if v is None else v.strftime("%d.%m.%Y") if isinstance(v, dt.date) else v for v in row]
        )
    return out.getvalue().encode("utf-8")


# ---- mail clients ------------------------------------------------------------------------------


def rfc_date(when: dt.datetime, zone: ZoneInfo | dt.timezone = OSLO) -> str:
    return format_datetime(when.astimezone(zone))


def mailbox(name: str, addr: str, charset: str = "utf-8", how: str = "q") -> str:
    if not name:
        return addr
    if name.isascii():
        return f'"{name}" <{addr}>' if any(c in name for c in ".,'") else f"{name} <{addr}>"
    return f"{ew_q(name, charset) if how == 'q' else ew_b(name, charset)} <{addr}>"


def received_exchange(when: dt.datetime, host: str) -> list[str]:
    stamp = rfc_date(when, dt.UTC).replace("-0000", "+0000")
    return [
        f"Received: from {host}.eurprd06.prod.outlook.com (2603:10a6:20b:1a::21) by\r\n"
        f" mx.example.edu (192.0.2.25) with Microsoft SMTP Server (version=TLS1_2,\r\n"
        f" cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.3654.12; {stamp}",
        f"Received: from {host}.eurprd06.prod.outlook.com\r\n"
        f" ([fe80::6c1b:94f2:8b3a:d9e1]) by {host}.eurprd06.prod.outlook.com\r\n"
        f" ([fe80::6c1b:94f2:8b3a:d9e1%6]) with mapi id 15.20.3654.020; {stamp}",
    ]


def received_plain(when: dt.datetime, frm: str, by: str = "mx.example.edu", ip: str = "198.51.100.7") -> str:
    qid = upper_hex(10, "qid", frm, when.isoformat())
    return (
        f"Received: from {frm} ({frm} [{ip}])\r\n\tby {by} (Postfix) with ESMTPS id {qid}\r\n"
        f"\tfor <{SERVICE}>; {rfc_date(when)}"
    )


def outlook_quote(code: str, lang: str) -> str:
    u = UNITS[code]
    subject, text, _ = invitation(code)
    if lang == "nb":
        head = (
            f"Fra: {SERVICE_NAME} <{SERVICE}>\nSendt: mandag 23. november 2020 09:00\n"
            f"Til: {u.leader_name} <{u.leader_email}>\nEmne: {subject}"
        )
    else:
        head = (
            f"From: {SERVICE_NAME} <{SERVICE}>\nSent: Monday, 23 November 2020 09:00\n"
            f"To: {u.leader_name} <{u.leader_email}>\nSubject: {subject}"
        )
    return f"{head}\n\n{text}"


def gmail_quote(code: str, lang: str) -> str:
    intro = (
        f"man. 23. nov. 2020 kl. 09:00 skrev {SERVICE_NAME} <{SERVICE}>:"
        if lang == "nb"
        else f"On Mon, 23 Nov 2020 at 09:00, {SERVICE_NAME} <{SERVICE}> wrote:"
    )
    return f"{intro}\n\n{quote_lines(invitation(code)[1])}"


def html_of(text: str, font: str = "Calibri") -> str:
    paras = "".join(
        f'<p class="MsoNormal">{line or "&nbsp;"}<o:p></o:p></p>\n'
        for line in text.replace("&", "&amp;").replace("<", "&lt;").split("\n")
    )
    return (
        '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:w="urn:schemas-microsoft-com:office:word" '
        'xmlns:m="http://schemas.microsoft.com/office/2004'
        '/12/omml" xmlns="http://www.w3.org/TR/REC-html40">\n<head>\n<meta http-equiv="Content-Type" '
        'content="text/html; charset=utf-8">\n<meta name="Generator" content="Microsoft Word 15 '
        "(filtered "
        'medium)">\n<style><!--\n/* Font Definitions */\n@font-face\n\t{font-family:"Cambria Math";}\n'
        f'p.MsoNormal, li.MsoNormal, div.MsoNormal\n\t{{margin:0cm;font-size:11.0pt;font-family:"{font}",'
        'sans-serif;}\n--></style>\n</head>\n<body lang="NO-BOK" link="#0563C1" vlink="#954F72" '
        'style="word-wrap:break-word">\n<div class="WordSection1">\n' + paras + "</div>\n</body>\n</html>\n"
    )


def outlook_attachment(
    name: str,
    data: bytes,
    ctype: str,
    when: dt.datetime,
    charset: str = "utf-8",
    encode: Callable[..., str] = ew_b,
) -> bytes:
    word = encode(name, charset).replace("\r\n ", " ")
    stamp = rfc_date(when, dt.UTC).replace("-0000", "GMT")
    return part(
        [
            f'Content-Type: {ctype};\r\n\tname="{word}"',
            f"Content-Description: {word}",
            f'Content-Disposition: attachment;\r\n\tfilename="{word}"; size={len(data)};\r\n'
            f'\tcreation-date="{stamp}";\r\n\tmodification-date="{stamp}"',
            "Content-Transfer-Encoding: base64",
        ],
        b64(data),
    )


def outlook(
    code: str,
    when: dt.datetime,
    text: str,
    files: list[tuple[str, bytes, str]],
    *,
    frm: tuple[str, str] | None = None,
    subject: str | None = None,
    lang: str | None = None,
    charset: str = "utf-8",
    html: bool = True,
    quote: bool = True,
    winmail: bool = False,
    encode_filename: Callable[..., str] = ew_b,
    extra: tuple[str, ...] = (),
) -> bytes:
    """A reply from Outlook for Windows through Exchange Online."""
    u = UNITS[code]
    lang = lang or u.language
    name, addr = frm or (u.leader_name, u.leader_email)
    subject = subject if subject is not None else ("SV: " if lang == "nb" else "RE: ") + subject_of(code)
    host = f"AM{digest('host', addr)[0] % 9}PR06MB{4000 + digest('host', addr)[1] * 7}"
    mid = f"<{host}{upper_hex(12, 'mid', code, when.isoformat())}@{host}.eurprd06.prod.outlook.com>"
    body = text + ("\n\n" + outlook_quote(code, lang) if quote else "")
    subj_header = subject if subject.isascii() else ew_b(subject, "utf-8", 45)
    headers = [
        *received_exchange(when, host),
        f"From: {mailbox(name, addr, 'iso-8859-1' if charset != 'utf-8' else 'utf-8')}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"Subject: {subj_header}",
        f"Thread-Topic: {subj_header}",
        f"Thread-Index: {thread_index(code)}",
        f"Date: {rfc_date(when, dt.UTC).replace('-0000', '+0000')}",
        f"Message-ID: {mid}",
        f"References: {invite_id(code)}",
        f"In-Reply-To: {invite_id(code)}",
        f"Accept-Language: {'nb-NO' if lang == 'nb' else 'en-GB'}, en-US",
        f"Content-Language: {'nb-NO' if lang == 'nb' else 'en-GB'}",
        f"X-MS-Has-Attach: {'yes' if files or winmail else ''}",
        f"X-MS-TNEF-Correlator: {'<' + mid[1:-1] + '>' if winmail else ''}",
        "x-ms-exchange-messagesentrepresentingtype: 1",
        "x-ms-exchange-transport-fromentityheader: Hosted",
        *extra,
        "MIME-Version: 1.0",
    ]
    tag = f"{host}{mid[len(host) + 1 : len(host) + 13]}{host}eurp"
    text_part = part(
        [f'Content-Type: text/plain; charset="{charset}"', "Content-Transfer-Encoding: quoted-printable"],
        qp(body, charset),
    )
    if winmail:
        dat = tnef(text, [(n, t, d) for n, d, t in files])
        parts = [
            text_part,
            part(
                [
                    'Content-Type: application/ms-tnef; name="winmail.dat"',
                    'Content-Disposition: attachment; filename="winmail.dat"',
                    "Content-Transfer-Encoding: base64",
                ],
                b64(dat),
            ),
        ]
        return message(headers, multipart("mixed", f"_000_{tag}_", parts))
    alt = (
        multipart(
            "alternative",
            f"_000_{tag}_",
            [
                text_part,
                part(
                    [
                        f'Content-Type: text/html; charset="{charset}"',
                        "Content-Transfer-Encoding: quoted-printable",
                    ],
                    qp(html_of(body).replace("charset=utf-8", f"charset={charset}"), charset),
                ),
            ],
        )
        if html
        else text_part
    )
    if not files:
        return message(headers, alt)
    parts = [alt] + [outlook_attachment(n, d, t, when, charset, encode_filename) for n, d, t in files]
    return message(headers, multipart("mixed", f"_004_{tag}_", parts))


def gmail(
    code: str,
    when: dt.datetime,
    text: str,
    files: list[tuple[str, bytes, str]],
    *,
    frm: tuple[str, str] | None = None,
    subject: str | None = None,
    lang: str | None = None,
    quote: bool = True,
    html: bool = True,
) -> bytes:
    """A reply from Gmail on the web (Google Workspace or a private account)."""
    u = UNITS[code]
    lang = lang or u.language
    name, addr = frm or (u.leader_name, u.leader_email)
    subject = subject if subject is not None else ("Sv: " if lang == "nb" else "Re: ") + subject_of(code)
    key = hexid(12, "gmail", code, addr, when.isoformat())
    mid = f"<CA{digest('g', key).hex()[:10].upper()}+{key[:8]}Xq9-{key[8:]}_w@mail.gmail.com>"
    body = text + ("\n\n" + gmail_quote(code, lang) if quote else "")
    headers = [
        f"Received: by mail-lj1-f169.google.com with SMTP id x{key[:6]}so{key[6:]}.1\r\n"
        f"        for <{SERVICE}>; {rfc_date(when, ZoneInfo('America/Los_Angeles'))}",
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n        d={addr.split('@')[1]}; "
        f"s=google; h=mime-version:references:in-reply-to:from:date:message-id:subject:to;\r\n"
        f"        bh={b64(digest('bh', key)).decode().strip()};\r\n        b=Xq{key}==",
        "MIME-Version: 1.0",
        f"References: {invite_id(code)}",
        f"In-Reply-To: {invite_id(code)}",
        f"From: {mailbox(name, addr, how='b')}",
        f"Date: {rfc_date(when)}",
        f"Message-ID: {mid}",
        f"Subject: {subject if subject.isascii() else ew_b(subject, 'UTF-8', 45)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
    ]
    b1, b2 = f"000000000000{key[:12]}05b{key[:3]}", f"000000000000{key[:12]}05b{key[3:6]}"
    text_part = part(
        ['Content-Type: text/plain; charset="UTF-8"', "Content-Transfer-Encoding: quoted-printable"], qp(body)
    )
    html_body = '<div dir="ltr">' + "<br>".join(text.split("\n")) + "</div>"
    alt = (
        multipart(
            "alternative",
            b2,
            [
                text_part,
                part(
                    [
                        'Content-Type: text/html; charset="UTF-8"',
                        "Content-Transfer-Encoding: quoted-printable",
                    ],
                    qp(html_body + "<br>"),
                ),
            ],
            fold="; ",
        )
        if html
        else text_part
    )
    if not files:
        return message(headers, alt)
    parts = [alt]
    for i, (n, d, t) in enumerate(files):
        word = n if n.isascii() else ew_b(n, "UTF-8", 200)
        fid = f"f_ki{key[i : i + 7]}{i}"
        parts.append(
            part(
                [
                    f'Content-Type: {t}; \r\n\tname="{word}"',
                    f'Content-Disposition: attachment; \r\n\tfilename="{word}"',
                    "Content-Transfer-Encoding: base64",
                    f"Content-ID: <{fid}>",
                    f"X-Attachment-Id: {fid}",
                ],
                b64(d),
            )
        )
    return message(headers, multipart("mixed", b1, parts, fold="; "))


def apple(
    code: str,
    when: dt.datetime,
    text: str,
    files: list[tuple[str, bytes, str]],
    *,
    frm: tuple[str, str] | None = None,
    iphone: bool = False,
    signature: str = "",
) -> bytes:
    """Apple Mail on macOS (or iOS Mail): text, attachment, text; RFC 2231 file names."""
    u = UNITS[code]
    name, addr = frm or (u.leader_name, u.leader_email)
    key = guid("apple", code, when.isoformat())
    lang = u.language
    quoted = (
        f"> 23. nov. 2020 kl. 09:00 skrev {SERVICE_NAME} <{SERVICE}>:\n>\n"
        if lang == "nb"
        else f"> On 23 Nov 2020, at 09:00, {SERVICE_NAME} <{SERVICE}> wrote:\n>\n"
    )
    quoted += quote_lines(invitation(code)[1])
    mailer = "iPhone Mail (18B92)" if iphone else "Apple Mail (2.3654.20.0.2.21)"
    headers = [
        received_plain(when, "smtpclient.apple"),
        f"From: {mailbox(name, addr)}",
        "Content-Type: multipart/mixed",
        "Mime-Version: 1.0 (1.0)"
        if iphone
        else "Mime-Version: 1.0 (Mac OS X Mail 14.0 \\(3654.20.0.2.21\\))",
        f"Subject: {('Sv: ' if lang == 'nb' else 'Re: ') + subject_of(code)}",
        f"Date: {rfc_date(when)}",
        f"References: {invite_id(code)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"In-Reply-To: {invite_id(code)}",
        f"Message-Id: <{key}@example.edu>",
        f"X-Mailer: {mailer}",
    ]
    headers = [h for h in headers if h != "Content-Type: multipart/mixed"]
    boundary = f"Apple-Mail-{key[:8]}-{key[9:13]}-{key[14:18]}" if iphone else f"Apple-Mail=_{key}"
    parts = [
        part(
            ["Content-Transfer-Encoding: quoted-printable", "Content-Type: text/plain;\r\n\tcharset=utf-8"],
            qp(text + "\n\n"),
        )
    ]
    for n, d, t in files:
        parts.append(
            part(
                [
                    f"Content-Disposition: attachment;\r\n\t{rfc2231('filename', n)}",
                    f"Content-Type: {t};\r\n\tx-unix-mode=0644;\r\n\t{rfc2231('name', n)}",
                    "Content-Transfer-Encoding: base64",
                ],
                b64(d),
            )
        )
    tail = (signature + "\n\n" if signature else "") + quoted
    parts.append(
        part(
            ["Content-Transfer-Encoding: quoted-printable", "Content-Type: text/plain;\r\n\tcharset=utf-8"],
            qp("\n" + tail),
        )
    )
    return message(headers, multipart("mixed", boundary, parts))


def thunderbird(
    code: str,
    when: dt.datetime,
    text: str,
    files: list[tuple[str, bytes, str]],
    *,
    frm: tuple[str, str] | None = None,
    subject: str | None = None,
    inner: list[bytes] | None = None,
    k9: bool = False,
) -> bytes:
    """Thunderbird 78 (or K-9 Mail on Android): long names as RFC 2231 continuations."""
    u = UNITS[code]
    name, addr = frm or (u.leader_name, u.leader_email)
    lang = u.language
    key = upper_hex(24, "tb", code, when.isoformat())
    quoted = (
        f"Den 23.11.2020 09:00, skrev {SERVICE_NAME}:\n"
        if lang == "nb"
        else f"On 23/11/2020 09:00, {SERVICE_NAME} wrote:\n"
    ) + quote_lines(invitation(code)[1])
    agent = (
        "K-9 Mail for Android"
        if k9
        else "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:78.0) Gecko/20100101\r\n Thunderbird/78.5.1"
    )
    subject = subject if subject is not None else ("SV: " if lang == "nb" else "Re: ") + subject_of(code)
    headers = [
        received_plain(when, "[10.20.30.40]" if not k9 else "android.example.net", ip="10.20.30.40"),
        f"Subject: {ew_q(subject, 'UTF-8', 60) if not subject.isascii() else subject}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"References: {invite_id(code)}",
        f"From: {mailbox(name, addr)}",
        f"Message-ID: <{key[:8].lower()}-{key[8:12].lower()}-{key[12:16].lower()}"
        f"@{'email.android.com' if k9 else 'example.edu'}>",
        f"Date: {rfc_date(when)}",
        f"User-Agent: {agent}",
        "MIME-Version: 1.0",
        f"In-Reply-To: {invite_id(code)}",
        f"Content-Language: {'nb' if lang == 'nb' else 'en-GB'}",
    ]
    sig = "\n\n-- \nSendt fra min Android-enhet med K-9 Mail. Unnskyld kortfattetheten." if k9 else ""
    body = part(
        ["Content-Type: text/plain; charset=utf-8; format=flowed", "Content-Transfer-Encoding: 8bit"],
        eightbit(text + sig + "\n\n" + quoted + "\n", "utf-8"),
    )
    parts = [body]
    for n, d, t in files:
        parts.append(
            part(
                [
                    f"Content-Type: {t};\r\n {rfc2231('name', n, 40, ';' + chr(13) + chr(10) + ' ')}",
                    "Content-Transfer-Encoding: base64",
                    "Content-Disposition: attachment;\r\n "
                    f"{rfc2231('filename', n, 40, ';' + chr(13) + chr(10) + ' ')}",
                ],
                b64(d),
            )
        )
    parts += inner or []
    return message(
        headers,
        multipart(
            "mixed",
            f"------------{key}",
            parts,
            fold="; ",
            preamble="This is a multi-part message in MIME format.",
        ),
    )


def inner_message(
    code: str,
    frm: tuple[str, str],
    day: dt.datetime,
    text: str,
    files: list[tuple[str, bytes, str]],
    subject: str | None = None,
) -> bytes:
    """A complete message as it sits inside a message/rfc822 part (no Received lines)."""
    subject = subject or "SV: " + subject_of(code)
    key = upper_hex(16, "inner", code, day.isoformat())
    headers = [
        f"From: {mailbox(*frm)}",
        f"To: {mailbox(UNITS[code].leader_name, UNITS[code].leader_email)}",
        f"Subject: {ew_q(subject, 'utf-8', 60) if not subject.isascii() else subject}",
        f"Date: {rfc_date(day)}",
        f"Message-ID: <{key}@example.edu>",
        "MIME-Version: 1.0",
    ]
    parts = [
        part(
            ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable"],
            qp(text),
        )
    ]
    for n, d, t in files:
        parts.append(
            part(
                [
                    f"Content-Type: {t}; {rfc2231('name', n)}",
                    f"Content-Disposition: attachment; {rfc2231('filename', n)}",
                    "Content-Transfer-Encoding: base64",
                ],
                b64(d),
            )
        )
    return message(headers, multipart("mixed", f"=_inner_{key}", parts, fold="; "))


def add_parts(raw: bytes, extra: list[bytes]) -> bytes:
    """Wrap a single-part message's body into multipart/mixed with ``extra`` parts after it."""
    head, _, body = raw.partition(b"\r\nContent-Type: multipart/alternative")
    first = b"Content-Type: multipart/alternative" + body
    boundary = "000000000000" + hexid(14, "fwd", str(len(raw)))
    return head + b"\r\n" + multipart("mixed", boundary, [first, *extra], fold="; ")


def plain_client(
    frm: tuple[str, str],
    day: dt.datetime,
    subject_header: str,
    body_part: bytes,
    *,
    mailer: str,
    in_reply_to: str = "",
    files: list[bytes] | None = None,
    boundary: str = "",
    extra: tuple[str, ...] = (),
) -> bytes:
    """A message from a simple client: given headers, one body part, optional attachment parts."""
    key = hexid(20, "plain", frm[1], day.isoformat())
    headers = [
        received_plain(day, "smtp.example.edu"),
        f"Message-ID: <{key}@example.edu>",
        f"Date: {rfc_date(day)}",
        f"From: {mailbox(*frm)}",
        f"To: {SERVICE_NAME} <{SERVICE}>",
        f"Subject: {subject_header}",
        *([f"In-Reply-To: {in_reply_to}"] if in_reply_to else []),
        mailer,
        *extra,
        "MIME-Version: 1.0",
    ]
    if not files:
        return message(headers, body_part)
    return message(
        headers,
        multipart(
            "mixed",
            boundary or f"----=_NextPart_000_0000_{key[:8].upper()}.{key[8:16].upper()}",
            [body_part, *files],
        ),
    )


def attachment_part(name: str, data: bytes, ctype: str, style: str = "2231") -> bytes:
    if style == "2231":
        return part(
            [
                f"Content-Type: {ctype};\r\n {rfc2231('name', name)}",
                "Content-Transfer-Encoding: base64",
                f"Content-Disposition: attachment;\r\n {rfc2231('filename', name)}",
            ],
            b64(data),
        )
    if style == "q-iso":
        word = ew_q(name, "iso-8859-1", 200)
        return part(
            [
                f'Content-Type: {ctype};\r\n\tname="{word}"',
                "Content-Transfer-Encoding: base64",
                f'Content-Disposition: attachment;\r\n\tfilename="{word}"',
            ],
            b64(data),
        )
    return part(
        [
            f'Content-Type: {ctype};\r\n\tname="{name}"',
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment;\r\n\tfilename="{name}"',
        ],
        b64(data),
    )


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


ODS = "application/vnd.oasis.opendocument.spreadsheet"


XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"


def auto_reply(
    code: str,
    day: dt.datetime,
    subject: str,
    text: str,
    headers_extra: list[str],
    *,
    frm: tuple[str, str] | None = None,
    exchange: bool = True,
    lang: str = "nb",
) -> bytes:
    """An out-of-office reply to the unit's invitation or reminder."""
    u = UNITS[code]
    name, addr = frm or (u.leader_name, u.leader_email)
    key = upper_hex(20, "oof", code, subject)
    if exchange:
        host = f"HE1PR06MB{3000 + digest('oofhost', code)[0]}"
        top = [
            *received_exchange(day, host),
            f"From: {mailbox(name, addr)}",
            f"To: {SERVICE_NAME} <{SERVICE}>",
            f"Subject: {ew_b(subject, 'utf-8', 45) if not subject.isascii() else subject}",
            f"Thread-Topic: {ew_b(subject_of(code), 'utf-8', 45)}",
            f"Thread-Index: {thread_index(code)}",
            f"Date: {rfc_date(day, dt.UTC)}",
            f"Message-ID: <{key}@{host}.eurprd06.prod.outlook.com>",
            f"References: {invite_id(code)}",
            f"In-Reply-To: {invite_id(code)}",
            f"Content-Language: {'nb-NO' if lang == 'nb' else 'en-US'}",
            "X-MS-Has-Attach:",
            "X-MS-TNEF-Correlator:",
            *headers_extra,
            "MIME-Version: 1.0",
        ]
        body = multipart(
            "alternative",
            f"_000_{key}_",
            [
                part(
                    ['Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: base64"],
                    b64(text.replace("\n", "\r\n").encode()),
                ),
                part(
                    ['Content-Type: text/html; charset="utf-8"', "Content-Transfer-Encoding: base64"],
                    b64(html_of(text).encode()),
                ),
            ],
        )
        return message(top, body)
    top = [
        received_plain(day, "mail.example.edu"),
        f"Date: {rfc_date(day)}",
        f"From: {mailbox(name, addr)}",
        f"To: {SERVICE}",
        f"Message-ID: <{key.lower()}@mail.example.edu>",
        f"In-Reply-To: {invite_id(code)}",
        f"References: {invite_id(code)}",
        f"Subject: {ew_q(subject, 'utf-8', 60) if not subject.isascii() else subject}",
        *headers_extra,
        "MIME-Version: 1.0",
    ]
    return message(
        top,
        part(
            ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"],
            eightbit(text, "utf-8"),
        ),
    )


def original_headers(code: str, to: str | None = None, *, delivered: bool = False) -> str:
    """The headers of our invitation, as a returned-message part shows them: to the leader, the
    verneombud copied (``mail.cc_verneombud`` is on by default), so our relay's Received line
    names no single recipient. ``to`` is a single addressee instead. ``delivered``: the copy as
    it lay in the leader's mailbox (Delivered-To, the mail store's Received line), as a
    forwarding rule passes it on."""
    u = UNITS[code]
    rcpt = to or u.leader_email
    copied = to is None and bool(u.verneombud_email)
    stored = (
        f"Delivered-To: {rcpt}\n"
        "Received: from mx.example.edu ([192.0.2.25])\n\tby mailstore.example.edu with LMTP\n"
        f"\tid 9fJkA3Jzu1+QcgAAxh3i3g\n\tfor <{rcpt}>; Mon, 23 Nov 2020 09:00:03 +0100\n"
        if delivered
        else ""
    )
    relay = (  # Postfix names the recipient only when there is one
        "Received: from skjemapost.example.edu (skjemapost.example.edu [192.0.2.10])\n"
        "\tby smtp.example.edu (Postfix) with ESMTPSA id 4CkQ2D1xYzz1xb9"
        + (";\n\t" if copied else f"\n\tfor <{rcpt}>; ")
        + "Mon, 23 Nov 2020 09:00:02 +0100 (CET)\n"
    )
    cc = f"Cc: {mailbox(u.verneombud_name, u.verneombud_email)}\n" if copied else ""
    return (
        f"{stored}{relay}From: {SERVICE_NAME} <{SERVICE}>\nTo: {mailbox(u.leader_name, rcpt)}\n{cc}"
        f"Subject: {ew_q(subject_of(code), 'utf-8', 60)}\nDate: Mon, 23 Nov 2020 08:00:00 +0000\n"
        f"Message-ID: {invite_id(code)}\nMIME-Version: 1.0\n"
    )


def dsn_part(reporting: str, recipients: list[dict[str, str]], per_message: str = "") -> bytes:
    blocks = [f"Reporting-MTA: dns; {reporting}\n{per_message}".strip()]
    for r in recipients:
        blocks.append("\n".join(f"{k}: {v}" for k, v in r.items()))
    return part(
        ["Content-Description: Delivery report", "Content-Type: message/delivery-status"],
        ("\n\n".join(blocks) + "\n").replace("\n", "\r\n").encode(),
    )


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


POSTFIX_BOUNCE = """This is the mail system at host smtp.example.edu.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{addr}>: host mx.example.edu[192.0.2.25] said: 550 5.1.1
    <{addr}>: Recipient address rejected: User unknown in local recipient
    table (in reply to RCPT TO command)
"""


def postfix(
    code: str,
    day: dt.datetime,
    addr: str,
    subject: str,
    text: str,
    recipient: dict[str, str],
    boundary_id: str,
) -> bytes:
    qid = "4CkQ2D1xYzz1xb9"
    boundary = f"{qid}.{int(day.timestamp())}/smtp.example.edu"
    headers = [
        "Return-Path: <>",
        f"Received: by smtp.example.edu (Postfix)\r\n\tid {boundary_id}; {rfc_date(day)}",
        f"Date: {rfc_date(day)}",
        "From: MAILER-DAEMON@smtp.example.edu (Mail Delivery System)",
        f"Subject: {subject}",
        f"To: {SERVICE}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f"Message-Id: <20201123{boundary_id}@smtp.example.edu>",
    ]
    body = multipart(
        "report",
        boundary,
        [
            part(
                ["Content-Description: Notification", "Content-Type: text/plain; charset=us-ascii"],
                crlf(text),
            ),
            dsn_part(
                "smtp.example.edu",
                [recipient],
                f"X-Postfix-Queue-ID: {qid}\nX-Postfix-Sender: rfc822; {SERVICE}\n"
                "Arrival-Date: Mon, 23 Nov 2020 09:00:02 +0100 (CET)",
            ),
            part(
                ["Content-Description: Undelivered Message Headers", "Content-Type: text/rfc822-headers"],
                crlf(original_headers(code, addr)),
            ),
        ],
        params="; report-type=delivery-status",
        fold=";\r\n\t",
        preamble="This is a MIME-encapsulated message.\r\n",
    )
    return message(headers, body)
