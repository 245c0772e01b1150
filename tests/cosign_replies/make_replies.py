"""(Re)build the verneombud replies: every tests/cosign_replies/*.eml and expected.json.

    .venv/bin/python tests/cosign_replies/make_replies.py

Each case is one verneombud answering the co-signature request the way a real mail client writes
a reply (Outlook desktop, Outlook on the web, Outlook for Android, Gmail, Apple Mail on an
iPhone, Thunderbird, a Samsung phone; plain text, HTML beside it, or HTML only; UTF-8 in base64
or quoted-printable, Latin-1), quoting the request we sent (tests/golden/email/*/
verneombud-request.txt). What each must read as is written here by hand: ``expected.json`` is
never copied from the reader's output.
"""

from __future__ import annotations

import base64
import html
import json
import quopri
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr
from pathlib import Path

HERE = Path(__file__).parent
GOLDEN = HERE.parent / "golden" / "email"
SERVICE = "hms-skjema@example.edu"
SERVICE_NAME = {"nb": "HR- og HMS-avdelingen", "en": "HR and HSE Division"}
VO = ("Siri Løvås", "siri.lovas@example.edu")
VO_EN = ("John Smith", "john.smith@example.edu")
REQUEST_ID = "<20201210130612.4821.cosign@example.edu>"
CRLF = "\r\n"


def request(lang: str) -> tuple[str, str]:
    """(subject, body) of the request as we sent it."""
    subject_line, _, body = (
        (GOLDEN / lang / "verneombud-request.txt").read_text(encoding="utf-8").partition("\n\n")
    )
    return subject_line.removeprefix("Subject: "), body.strip()


# ---- how clients write a reply --------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    name: str
    lang: str
    client: str  # a key of CLIENTS
    own: str  # what the verneombud typed (plain text; line breaks as typed)
    reading: str  # confirmed, disputed, empty
    words: str  # their words as the reader must give them back
    sender: tuple[str, str] = VO
    signature: str = ""  # the client's signature block, below their text
    extra: dict[str, str] = field(default_factory=dict)  # client-specific pieces


def quote_lines(text: str, prefix: str = "> ") -> str:
    return "\n".join((prefix + line).rstrip() for line in text.split("\n"))


def p_html(text: str, cls: str = "MsoNormal") -> str:
    """Text as Outlook writes it in HTML: one <p> per line, empty lines as &nbsp;."""
    return "\n".join(
        f'<p class="{cls}">{html.escape(line) if line.strip() else "&nbsp;"}</p>' for line in text.split("\n")
    )


def div_html(text: str) -> str:
    """Text as Gmail and Thunderbird write it: <div> per line, <br> for empty lines."""
    return "".join(f"<div>{html.escape(line) if line.strip() else '<br>'}</div>" for line in text.split("\n"))


def outlook_block(lang: str, sep: str = "") -> str:
    subject, _ = request(lang)
    name, addr = VO
    if lang == "nb":
        return (
            f"{sep}Fra: {SERVICE_NAME['nb']} <{SERVICE}>\nSendt: torsdag 10. desember 2020 14:06\n"
            f"Til: {name} <{addr}>\nEmne: {subject}"
        )
    name, addr = VO_EN
    return (
        f"{sep}From: {SERVICE_NAME['en']} <{SERVICE}>\nSent: Thursday, December 10, 2020 2:06 PM\n"
        f"To: {name} <{addr}>\nSubject: {subject}"
    )


def outlook_plain(r: Reply) -> str:
    _, body = request(r.lang)
    own = r.own + (f"\n\n{r.signature}" if r.signature else "")
    return f"{own}\n\n{outlook_block(r.lang)}\n\n{body}\n"


def outlook_html(r: Reply) -> str:
    _, body = request(r.lang)
    block = "<br>\n".join(
        f"<b>{html.escape(k)}:</b>{html.escape(v)}"
        for k, _, v in (line.partition(":") for line in outlook_block(r.lang).split("\n"))
    )
    signature = p_html(r.signature) if r.signature else ""
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        "<style><!-- p.MsoNormal {margin:0cm; font-size:11.0pt; font-family:Calibri} --></style></head>"
        '<body lang="NO-BOK" link="#0563C1"><div class="WordSection1">\n'
        f'{p_html(r.own)}\n<p class="MsoNormal">&nbsp;</p>\n{signature}\n'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">\n'
        f'<p class="MsoNormal">{block}</p></div>\n<p class="MsoNormal">&nbsp;</p>\n{p_html(body)}\n'
        "</div></body></html>"
    )


def owa_html(r: Reply) -> str:
    _, body = request(r.lang)
    block = "<br>".join(
        f"<b>{html.escape(k)}:</b>{html.escape(v)}"
        for k, _, v in (line.partition(":") for line in outlook_block(r.lang).split("\n"))
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body dir="ltr">'
        f'<div style="font-family: Calibri, Arial, Helvetica, sans-serif; font-size: 12pt;">{div_html(r.own)}</div>'
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" style="font-size:11pt">{block}</font>'
        f"<div>&nbsp;</div></div><div>{div_html(body)}</div></body></html>"
    )


def gmail_attribution(lang: str) -> str:
    if lang == "nb":
        return f"tor. 10. des. 2020 kl. 14:06 skrev {SERVICE_NAME['nb']} <{SERVICE}>:"
    return f"On Thu, 10 Dec 2020 at 14:06, {SERVICE_NAME['en']} <{SERVICE}> wrote:"


def gmail_plain(r: Reply) -> str:
    _, body = request(r.lang)
    own = r.own + (f"\n\n{r.signature}" if r.signature else "")
    return f"{own}\n\n{gmail_attribution(r.lang)}\n\n{quote_lines(body)}\n"


def gmail_html(r: Reply) -> str:
    _, body = request(r.lang)
    attribution = html.escape(gmail_attribution(r.lang)).replace(
        html.escape(f"<{SERVICE}>"), f'&lt;<a href="mailto:{SERVICE}">{SERVICE}</a>&gt;'
    )
    return (
        f'<div dir="ltr">{div_html(r.own)}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f'{attribution}<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        f'border-left:1px solid rgb(204,204,204);padding-left:1ex">{div_html(body)}</blockquote></div>\n'
    )


def iphone_plain(r: Reply) -> str:
    _, body = request(r.lang)
    footer = r.extra.get("footer", "Sendt fra min iPhone" if r.lang == "nb" else "Sent from my iPhone")
    if r.lang == "nb":
        attribution = f"10. des. 2020 kl. 14:06 skrev {SERVICE_NAME['nb']} <{SERVICE}>:"
    else:
        attribution = f"On 10 Dec 2020, at 14:06, {SERVICE_NAME['en']} <{SERVICE}> wrote:"
    own = f"{r.own}\n\n{footer}" if r.own else footer
    return f"{own}\n\n{quote_lines(attribution)}\n>\n{quote_lines(chr(0xFEFF) + body)}\n"


def thunderbird_bottom(r: Reply) -> str:
    _, body = request(r.lang)
    attribution = (
        f"Den 10.12.2020 14:06, skrev {SERVICE_NAME['nb']}:"
        if r.lang == "nb"
        else f"On 10/12/2020 14:06, {SERVICE_NAME['en']} wrote:"
    )
    signature = f"\n\n-- \n{r.signature}" if r.signature else ""
    return f"{attribution}\n{quote_lines(body)}\n\n{r.own}{signature}\n"


def thunderbird_inline(r: Reply) -> str:
    """Comments typed between the quoted lines, under the line they answer (``extra["after"]``)."""
    _, body = request(r.lang)
    attribution = f"Den 10.12.2020 14:06, skrev {SERVICE_NAME['nb']}:"
    out = []
    for line in body.split("\n"):
        out.append(("> " + line).rstrip())
        if line.strip() == r.extra["after"]:
            out.append(r.own)
            out.append(">")
    return f"{attribution}\n" + "\n".join(out) + "\n"


def thunderbird_html(r: Reply) -> str:
    _, body = request(r.lang)
    return (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=UTF-8"></head><body>'
        f'<div class="moz-cite-prefix">Den 10.12.2020 14:06, skrev {SERVICE_NAME["nb"]}:<br></div>'
        f'<blockquote type="cite" cite="mid:{REQUEST_ID[1:-1]}">{div_html(body)}</blockquote>'
        f"<p>{html.escape(r.own)}</p>"
        "</body></html>"
    )


def android_outlook(r: Reply) -> str:
    _, body = request(r.lang)
    footer = "Hent Outlook for Android<https://aka.ms/AAb9ysg>"
    block = outlook_block(r.lang).replace(
        "Sendt: torsdag 10. desember 2020 14:06", "Sendt: torsdag, desember 10, 2020 2:06:12 PM"
    )
    return f"{r.own}\n\n{footer}\n________________________________\n{block}\n\n{body}\n"


def samsung(r: Reply) -> str:
    _, body = request(r.lang)
    subject, _ = request(r.lang)
    name, addr = VO
    return (
        f"{r.own}\n\n\n\nSendt fra min Galaxy\n\n\n-------- Opprinnelig melding --------\n"
        f"Fra: {SERVICE_NAME['nb']} <{SERVICE}> \nDato: 10.12.2020 14:06 (GMT+01:00) \n"
        f"Til: {name} <{addr}> \nEmne: {subject} \n\n{body}\n"
    )


# ---- MIME ------------------------------------------------------------------------------------------


def encode(text: str, how: str, charset: str = "utf-8") -> tuple[str, bytes]:
    data = text.replace("\r\n", "\n").encode(charset)
    if how == "base64":  # the text inside with CRLF line ends too, as Outlook writes it
        return "base64", base64.encodebytes(data.replace(b"\n", b"\r\n")).replace(b"\n", b"\r\n")
    if how == "qp":
        return "quoted-printable", quopri.encodestring(data).replace(b"\n", b"\r\n")
    return "8bit", data.replace(b"\n", b"\r\n")


def leaf(ctype: str, text: str, how: str, charset: str = "utf-8") -> bytes:
    cte, data = encode(text, how, charset)
    return (
        f'Content-Type: {ctype}; charset="{charset}"{CRLF}Content-Transfer-Encoding: {cte}{CRLF}{CRLF}'.encode()
        + data
    )


def alternative(plain: bytes, rich: bytes, boundary: str) -> bytes:
    return (
        f'Content-Type: multipart/alternative;{CRLF}\tboundary="{boundary}"{CRLF}{CRLF}'.encode()
        + f"--{boundary}{CRLF}".encode()
        + plain
        + f"{CRLF}--{boundary}{CRLF}".encode()
        + rich
        + f"{CRLF}--{boundary}--{CRLF}".encode()
    )


def headers(r: Reply, n: int, mailer: str) -> bytes:
    subject, _ = request(r.lang)
    outlook = r.client.startswith(("outlook", "owa", "android", "samsung"))
    prefix = ("SV: " if r.lang == "nb" else "RE: ") if outlook else "Re: "
    lines = [
        f"From: {formataddr(r.sender, 'utf-8')}",
        f"To: {formataddr((SERVICE_NAME[r.lang], SERVICE), 'utf-8')}",
        f"Subject: {Header(prefix + subject, 'utf-8').encode()}",
        f"Date: Fri, 11 Dec 2020 08:{10 + n:02d}:31 +0100",
        f"Message-ID: <reply-{n:02d}-{r.name}@mail.example.edu>",
        f"In-Reply-To: {REQUEST_ID}",
        f"References: {REQUEST_ID}",
        "MIME-Version: 1.0",
        mailer,
    ]
    return (CRLF.join(lines) + CRLF).encode("ascii")


def build(r: Reply, n: int) -> bytes:
    kind = CLIENTS[r.client]
    return kind(r, n)


def _outlook(r: Reply, n: int) -> bytes:
    how = r.extra.get("encoding", "base64")
    body = alternative(
        leaf("text/plain", outlook_plain(r), how), leaf("text/html", outlook_html(r), how), f"_000_{n:04d}_"
    )
    return headers(r, n, "X-Mailer: Microsoft Outlook 16.0") + body


def _outlook_2010(r: Reply, n: int) -> bytes:
    _, body = request(r.lang)
    block = outlook_block(r.lang, sep="-----Opprinnelig melding-----\n")
    text = f"{r.own}\n\n{block}\n\n{body}\n"
    return headers(r, n, "X-Mailer: Microsoft Office Outlook 12.0") + leaf(
        "text/plain", text, "qp", "windows-1252"
    )


def _outlook_html_only(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-Mailer: Microsoft Outlook 16.0") + leaf("text/html", outlook_html(r), "qp")


def _owa(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-MS-Has-Attach:") + leaf("text/html", owa_html(r), "base64")


def _gmail(r: Reply, n: int) -> bytes:
    body = alternative(
        leaf("text/plain", gmail_plain(r), "qp"),
        leaf("text/html", gmail_html(r), "qp"),
        f"0000000000{n:06d}b05",
    )
    return headers(r, n, "X-Gm-Message-State: AOAM531") + body


def _gmail_html(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-Gm-Message-State: AOAM531") + leaf("text/html", gmail_html(r), "base64")


def _iphone(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-Mailer: iPhone Mail (18B92)") + leaf("text/plain", iphone_plain(r), "qp")


def _thunderbird(r: Reply, n: int) -> bytes:
    charset = r.extra.get("charset", "utf-8")
    return headers(r, n, "User-Agent: Mozilla/5.0 Thunderbird/78.5.1") + leaf(
        "text/plain", thunderbird_bottom(r), "8bit", charset
    )


def _thunderbird_inline(r: Reply, n: int) -> bytes:
    return headers(r, n, "User-Agent: Mozilla/5.0 Thunderbird/78.5.1") + leaf(
        "text/plain", thunderbird_inline(r), "8bit"
    )


def _thunderbird_html(r: Reply, n: int) -> bytes:
    return headers(r, n, "User-Agent: Mozilla/5.0 Thunderbird/78.5.1") + leaf(
        "text/html", thunderbird_html(r), "8bit"
    )


def _android(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-Mailer: Outlook for Android") + leaf("text/plain", android_outlook(r), "base64")


def _samsung(r: Reply, n: int) -> bytes:
    return headers(r, n, "X-Mailer: Samsung Mail") + leaf("text/plain", samsung(r), "base64")


CLIENTS: dict[str, Callable[[Reply, int], bytes]] = {
    "outlook": _outlook,
    "outlook-2010": _outlook_2010,
    "outlook-html": _outlook_html_only,
    "owa": _owa,
    "gmail": _gmail,
    "gmail-html": _gmail_html,
    "iphone": _iphone,
    "thunderbird": _thunderbird,
    "thunderbird-inline": _thunderbird_inline,
    "thunderbird-html": _thunderbird_html,
    "android-outlook": _android,
    "samsung": _samsung,
}

SIG_NB = (
    "Med vennlig hilsen\nSiri Løvås\nVerneombud, Institutt for bygg- og miljøteknikk\n"
    "Norges teknisk-naturvitenskapelige universitet (NTNU)\nTlf.: +47 73 59 46 00 | siri.lovas@example.edu"
)
SIG_OUTLOOK = "Siri Løvås\nSenioringeniør / verneombud\nInstitutt for bygg- og miljøteknikk, NTNU\n[cid:image001.png@01D6CEF1.5B6C7A20]"
SIG_EN = "Best regards,\nJohn Smith\nSafety representative\nDepartment of Computer Science\nNTNU – Norwegian University of Science and Technology"
DISPUTE_NB = "Ikke enig. Vi hadde bare ett oppfølgingsmøte, ikke to.\nDet var digitalt for alle."
TWO_SENTENCES_EN = "The meeting was digital, not physical. And LOSAM was not involved at all."

C, D, E = "confirmed", "disputed", "empty"
CASES = [
    # agreements, with and without greetings, thanks and signatures
    Reply("outlook-nb-enig-quote-below", "nb", "outlook", "Enig.", C, "Enig."),
    Reply(
        "outlook-nb-enig-signature", "nb", "outlook", "Hei,\n\nEnig!", C, "Hei,\n\nEnig!", signature=SIG_NB
    ),
    Reply("outlook-nb-enig-image-signature", "nb", "outlook", "Enig", C, "Enig", signature=SIG_OUTLOOK),
    Reply(
        "outlook-nb-bekrefter-qp",
        "nb",
        "outlook",
        "Hei!\nJeg bekrefter at skjemaet stemmer.\n\nVennlig hilsen\nSiri",
        C,
        "Hei!\nJeg bekrefter at skjemaet stemmer.",
        extra={"encoding": "qp"},
    ),
    Reply(
        "outlook-html-only-nb-enig",
        "nb",
        "outlook-html",
        "Enig, takk!",
        C,
        "Enig, takk!",
        signature=SIG_OUTLOOK,
    ),
    Reply(
        "owa-html-only-nb-ja-det-stemmer", "nb", "owa", "Ja, det stemmer.\n\nMvh Siri", C, "Ja, det stemmer."
    ),
    Reply("gmail-en-agree-thanks", "en", "gmail", "Agree, thanks!", C, "Agree, thanks!", sender=VO_EN),
    Reply(
        "gmail-en-agreed-signature",
        "en",
        "gmail",
        "Hi,\n\nAgreed.",
        C,
        "Hi,\n\nAgreed.",
        sender=VO_EN,
        signature=SIG_EN,
    ),
    Reply("gmail-nb-enig-thumbs", "nb", "gmail", "Enig 👍", C, "Enig 👍"),
    Reply(
        "gmail-html-only-en-looks-good",
        "en",
        "gmail-html",
        "Looks good to me, thank you.",
        C,
        "Looks good to me, thank you.",
        sender=VO_EN,
    ),
    Reply("iphone-nb-enig-footer", "nb", "iphone", "Enig", C, "Enig"),
    Reply("iphone-en-yes-i-agree", "en", "iphone", "Yes, I agree.", C, "Yes, I agree.", sender=VO_EN),
    Reply(
        "thunderbird-nb-bottom-enig",
        "nb",
        "thunderbird",
        "Enig.",
        C,
        "Enig.",
        signature="Siri Løvås\nVerneombud IBM",
    ),
    Reply(
        "thunderbird-nb-bottom-cp1252",
        "nb",
        "thunderbird",
        "Helt enig, takk for oppfølgingen.",
        C,
        "Helt enig, takk for oppfølgingen.",
        extra={"charset": "windows-1252"},
    ),
    Reply("thunderbird-html-only-nb-bottom-ok", "nb", "thunderbird-html", "OK", C, "OK"),
    Reply("android-outlook-nb-bekreftet", "nb", "android-outlook", "Bekreftet", C, "Bekreftet"),
    Reply("samsung-nb-ja-enig", "nb", "samsung", "Ja, enig. Hilsen Siri", C, "Ja, enig. Hilsen Siri"),
    Reply("outlook-2010-nb-stemmer-bra", "nb", "outlook-2010", "Stemmer bra.\n\nSiri", C, "Stemmer bra."),
    Reply(
        "outlook-en-confirmed-signature",
        "en",
        "outlook",
        "Confirmed.",
        C,
        "Confirmed.",
        sender=VO_EN,
        signature=SIG_EN,
    ),
    # disagreements, with "enig" in them
    Reply("outlook-nb-ikke-enig-two-sentences", "nb", "outlook", DISPUTE_NB, D, DISPUTE_NB, signature=SIG_NB),
    Reply(
        "outlook-nb-jeg-er-ikke-enig",
        "nb",
        "outlook",
        "Jeg er ikke enig i at arbeidsmiljøet er fullt forsvarlig.",
        D,
        "Jeg er ikke enig i at arbeidsmiljøet er fullt forsvarlig.",
    ),
    Reply(
        "gmail-nb-enig-men",
        "nb",
        "gmail",
        "Enig, men tiltak 2 er ikke startet ennå.\n\nSiri",
        D,
        "Enig, men tiltak 2 er ikke startet ennå.",
    ),
    Reply("iphone-nb-uenig", "nb", "iphone", "Uenig", D, "Uenig"),
    Reply("iphone-nb-delvis-enig", "nb", "iphone", "Delvis enig", D, "Delvis enig"),
    Reply(
        "owa-html-only-nb-enig-i-det-meste",
        "nb",
        "owa",
        "Enig i det meste, men vi har ikke risikovurdert ennå.",
        D,
        "Enig i det meste, men vi har ikke risikovurdert ennå.",
    ),
    Reply(
        "gmail-en-i-dont-agree",
        "en",
        "gmail",
        "I don't agree: we never had the follow-up meeting on 5 November.",
        D,
        "I don't agree: we never had the follow-up meeting on 5 November.",
        sender=VO_EN,
        signature=SIG_EN,
    ),
    Reply(
        "gmail-en-agree-except",
        "en",
        "gmail",
        "Agree, except the number of employees, which is 38, not 42.",
        D,
        "Agree, except the number of employees, which is 38, not 42.",
        sender=VO_EN,
    ),
    Reply("outlook-en-two-sentences", "en", "outlook", TWO_SENTENCES_EN, D, TWO_SENTENCES_EN, sender=VO_EN),
    Reply(
        "thunderbird-nb-inline-comment",
        "nb",
        "thunderbird-inline",
        "Nei, det var fysisk, i kantina.",
        D,
        "Nei, det var fysisk, i kantina.",
        extra={"after": "Møteform: Digitalt"},
    ),
    Reply("thunderbird-nb-bottom-nei", "nb", "thunderbird", "Nei.", D, "Nei."),
    Reply(
        "outlook-nb-ps-after-signature",
        "nb",
        "outlook",
        "Enig.\n\nMvh Siri\n\nPS: Møtet var 6. november, ikke 5.",
        D,
        "Enig.\n\nMvh Siri\n\nPS: Møtet var 6. november, ikke 5.",
    ),
    Reply(
        "gmail-en-thanks-but",
        "en",
        "gmail",
        "Hi,\nThanks, but I'm not sure the ePhorte number is right.",
        D,
        "Hi,\nThanks, but I'm not sure the ePhorte number is right.",
        sender=VO_EN,
    ),
    Reply("iphone-nb-enig-question", "nb", "iphone", "Enig?", D, "Enig?"),
    Reply(
        "outlook-nb-hyphen-list",
        "nb",
        "outlook",
        "Enig\n- men antall deltakere var 12",
        D,
        "Enig\n- men antall deltakere var 12",
    ),
    Reply(
        "android-outlook-nb-sporsmal",
        "nb",
        "android-outlook",
        "Hvem har fylt ut dette? Jeg har ikke sett skjemaet før.",
        D,
        "Hvem har fylt ut dette? Jeg har ikke sett skjemaet før.",
    ),
    # nothing of their own: only the quote (and a footer or a name)
    Reply("outlook-nb-only-quote", "nb", "outlook", "", E, ""),
    Reply("gmail-en-only-quote", "en", "gmail", "", E, "", sender=VO_EN),
    Reply("iphone-nb-only-footer", "nb", "iphone", "", E, ""),
    Reply("outlook-html-only-nb-only-signature", "nb", "outlook-html", "", E, "", signature=SIG_OUTLOOK),
    Reply("gmail-nb-only-greeting-and-name", "nb", "gmail", "Hei,\n\nSiri", E, ""),
]


def main() -> None:
    for old in HERE.glob("*.eml"):
        old.unlink()
    expected = {}
    for n, case in enumerate(CASES):
        (HERE / f"{case.name}.eml").write_bytes(build(case, n))
        expected[case.name] = {
            "lang": case.lang,
            "client": case.client,
            "names": [case.sender[0]],
            "reading": case.reading,
            "words": case.words,
        }
    (HERE / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(CASES)} replies to {HERE}")


if __name__ == "__main__":
    main()
