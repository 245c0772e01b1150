"""The demo's verneombud answering the service's request to confirm a unit's form (the
co-signature, docs/COSIGN.md), the way their mail clients write a reply.

Each verneombud reads their own mailbox on the demo's IMAP server: the request is the mail whose
subject carries the unit's reference and asks for «Enig» / "Agree" (the copies of the invitation
and the reminder they got as copies do not ask; the service's one reminder does, and is not
answered here: whoever answers, answers the request). The reply is threaded under it and written
as its client writes one:

- ``outlook``: their words on top, then Outlook's «Fra:/Sendt:/Til:/Emne:» block and the whole
  request below (Norwegian Outlook);
- ``gmail``: their words above Gmail's "On …, … wrote:" line and the request quoted with "> ".

Nothing here decides what the answer means: the service reads it as it reads any reply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr, make_msgid
from zoneinfo import ZoneInfo

from service.mail.filters import longdate
from service.models import Language

#: what a request's subject asks for, in each language (templates/email/*/verneombud-request)
ASKS: dict[Language, str] = {"nb": "«Enig»", "en": "“Agree”"}
REMINDER = ("Påminnelse:", "Reminder:")


def requests(raws: Iterable[bytes], reference: str) -> list[EmailMessage]:
    """The requests about the unit with ``reference`` in a mailbox, oldest first (a newer valid
    version is asked about again)."""
    out = []
    for raw in raws:
        msg = message_from_bytes(raw, policy=default_policy)
        assert isinstance(msg, EmailMessage)
        subject = str(msg["Subject"] or "")
        if f"[ref {reference}]" not in subject or subject.startswith(REMINDER):
            continue
        if any(ask in subject for ask in ASKS.values()):
            out.append(msg)
    return out


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    text = part.get_content() if isinstance(part, EmailMessage) else ""
    return str(text).replace("\r\n", "\n")


def outlook(request: EmailMessage, sender: tuple[str, str], own: str, now: dt.datetime, tz: str) -> bytes:
    """``own`` on top, Outlook's header block and the whole request below it (nb)."""
    sent = request["Date"].datetime.astimezone(ZoneInfo(tz))
    block = (
        f"Fra: {request['From']}\n"
        f"Sendt: {longdate(sent.date(), 'nb', ZoneInfo(tz))} {sent:%H:%M}\n"
        f"Til: {formataddr(sender)}\n"
        f"Emne: {request['Subject']}"
    )
    text = f"{own}\n\nMed vennlig hilsen\n{sender[0]}\n\n{block}\n\n{_text(request)}"
    return _reply(request, sender, text, now, prefix="SV: ", mailer="Microsoft Outlook 16.0")


def gmail(request: EmailMessage, sender: tuple[str, str], own: str, now: dt.datetime, tz: str) -> bytes:
    """``own`` above Gmail's attribution line and the request quoted with "> " (en)."""
    sent = request["Date"].datetime.astimezone(ZoneInfo(tz))
    quoted = "\n".join(("> " + line).rstrip() for line in _text(request).split("\n"))
    attribution = f"On {sent:%a, %d %b %Y} at {sent:%H:%M}, {request['From']} wrote:"
    return _reply(request, sender, f"{own}\n\n{attribution}\n\n{quoted}\n", now, prefix="Re: ", mailer="")


def _reply(
    request: EmailMessage, sender: tuple[str, str], text: str, now: dt.datetime, *, prefix: str, mailer: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr(sender)
    msg["To"] = request["Reply-To"] or request["From"]
    msg["Subject"] = prefix + str(request["Subject"])
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="example.edu")
    msg["In-Reply-To"] = request["Message-ID"]
    msg["References"] = " ".join(x for x in (request["References"], request["Message-ID"]) if x)
    if mailer:
        msg["X-Mailer"] = mailer
    msg.set_content(text)
    return msg.as_bytes(policy=SMTP_POLICY)
