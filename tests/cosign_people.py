"""Scripted verneombud (and leaders) answering the co-signature's request the way real mail clients
write a reply, for tests/test_cosign_jobs.py (offline) and tests/test_cosign_replay.py (through
Dovecot): each function takes the request as it arrived (an ``EmailMessage``) and returns the raw
bytes of the answer, threaded under it (In-Reply-To, References) like a client does.

The client shapes are those of tests/cosign_replies/make_replies.py (Outlook's «Fra:/Sendt:»
block with the whole request below it, Gmail's "On …, … wrote:" with "> " quotes, an
out-of-office reply), built here from the request actually received.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content().replace("\r\n", "\n") if part is not None else ""


def _answer(
    request: EmailMessage,
    sender: tuple[str, str],
    text: str,
    *,
    prefix: str = "SV: ",
    mailer: str = "Microsoft Outlook 16.0",
    headers: dict[str, str] | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr(sender)
    msg["To"] = request["Reply-To"] or request["From"]
    msg["Subject"] = prefix + request["Subject"]
    msg["Message-ID"] = make_msgid(domain="client.example.test")
    msg["In-Reply-To"] = request["Message-ID"]
    msg["References"] = " ".join(x for x in (request["References"], request["Message-ID"]) if x)
    msg["Date"] = format_datetime(request["Date"].datetime)
    msg["X-Mailer"] = mailer
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(text)
    if attachment:
        msg.add_attachment(attachment[1], maintype=XLSX[0], subtype=XLSX[1], filename=attachment[0])
    return msg.as_bytes(policy=email.policy.SMTP)


def outlook(request: EmailMessage, sender: tuple[str, str], own: str, **kw: object) -> bytes:
    """Their words on top, then Outlook's header block and the whole request below (nb)."""
    service = request["From"]
    block = (
        f"Fra: {service}\nSendt: torsdag 10. desember 2020 14:06\nTil: {formataddr(sender)}\n"
        f"Emne: {request['Subject']}"
    )
    return _answer(request, sender, f"{own}\n\n{block}\n\n{body(request)}", **kw)  # type: ignore[arg-type]


def gmail(request: EmailMessage, sender: tuple[str, str], own: str, **kw: object) -> bytes:
    """Their words above Gmail's "On …, … wrote:" line and the request quoted with "> " (en)."""
    quoted = "\n".join(("> " + line).rstrip() for line in body(request).split("\n"))
    attribution = f"On Thu, 10 Dec 2020 at 14:06, {request['From']} wrote:"
    text = f"{own}\n\n{attribution}\n\n{quoted}\n"
    return _answer(request, sender, text, prefix="Re: ", mailer="", **kw)  # type: ignore[arg-type]


def only_quote(request: EmailMessage, sender: tuple[str, str]) -> bytes:
    """A reply sent with nothing typed: only the request, quoted."""
    return outlook(request, sender, "")


def out_of_office(request: EmailMessage, sender: tuple[str, str], text: str) -> bytes:
    """Exchange's automatic reply to the request, with the day they are back in ``text``."""
    return _answer(
        request,
        sender,
        text,
        prefix="Automatisk svar: ",
        headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )


def with_form(request: EmailMessage, sender: tuple[str, str], own: str, form: tuple[str, bytes]) -> bytes:
    """Their words and a corrected form attached, the request below."""
    return outlook(request, sender, own, attachment=form)
