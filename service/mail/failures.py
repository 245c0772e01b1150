"""Which address a bounce failed for, and what the remote server said. Pure: InboundMail in.

Design note. The failed addresses come from the most exact source that names any
(``failed_addresses``): the DSN's recipient blocks (``dsn_recipients``, read leniently: no
Action, no Status, a Diagnostic-Code alone), ``X-Failed-Recipients``, GNU Mailman's detectors
(``flufl.bounce``, which know the formats of many mail systems: a Sendmail notice cut off before
its DSN, a Domino report), then the phrases of Exchange (in English, Norwegian, French, German,
Spanish) and Postfix's ``<addr>:`` lines. They are then held against the returned copy of our own
mail (``bounces.returned_copy``): the address to mark is the one *we sent to*, so when a leader's
mail was forwarded elsewhere and failed there, their own address is the one that does not work.

The library is asked only about mail that ``bounces.evidence`` already calls a bounce, as
Mailman asks it only about mail sent to a bounce address; tests/test_bounce_detectors.py measures
what it adds and that it names nobody in the rest of the corpus.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32

from flufl.bounce import all_failures

from service.mail.bounces import Evidence, notice_text
from service.mail.parser import InboundMail

# ---- the DSN's recipients --------------------------------------------------------------------

_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_REPLY_CODE = re.compile(r"(?<!\d)([245])\d\d(?:[ -]|$)")
_ANGLED = re.compile(r"<([^<>\s@]+@[^<>\s]+)>")


@dataclass(frozen=True)
class DsnRecipient:
    """One recipient block of a delivery-status part, read leniently."""

    outcome: str  # "failed", "delayed", "delivered" (also relayed, expanded) or "" (unknown)
    address: str  # lower-case; "" when the block names nobody
    status: str  # the enhanced status code ("5.1.1"), "" when none
    diagnostic: str


def dsn_recipients(mail: InboundMail) -> list[DsnRecipient]:
    """Every recipient block of every delivery-status part (also inside a forwarded message).

    Without an Action field the status decides (5.x.x failed, 4.x.x delayed), and without a
    Status field the Diagnostic-Code's codes do; the address is the Original-Recipient (the
    address as we sent it), else the Final-Recipient, else the one in the Diagnostic-Code.
    """
    out = []
    for part in mail.parts:
        if "delivery-status" not in part.content_type:
            continue
        for rcpt in part.recipients:
            out.append(_dsn_recipient(rcpt))
    return out


#: Action values as sent (RFC 3464's five, and OpenSMTPD's "error") -> what they mean here
_ACTIONS = {
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "delayed": "delayed",
    "delivered": "delivered",
    "relayed": "delivered",
    "expanded": "delivered",
}


def _dsn_recipient(rcpt: Mapping[str, str]) -> DsnRecipient:
    diagnostic = _diag(rcpt.get("diagnostic-code", ""))
    status = _STATUS.search(rcpt.get("status", "")) or _STATUS.search(diagnostic)
    action = (rcpt.get("action", "").strip().lower().split() or [""])[0].rstrip(":;,")
    klass = status.group(1)[0] if status else ""
    if not klass and (reply := _REPLY_CODE.search(diagnostic)):
        klass = reply.group(1)
    # some MTAs comment on the action ("failed (bad destination mailbox address)"); without
    # an Action the status class decides
    outcome = _ACTIONS.get(action) or {"5": "failed", "4": "delayed", "2": "delivered"}.get(klass, "")
    address = ""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        address = _addr_field(rcpt.get(name, ""))
        if "@" in address:
            break
    if "@" not in address:
        angled = _ANGLED.search(diagnostic)
        address = angled.group(1).lower() if angled else ""
    return DsnRecipient(outcome, address, status.group(1) if status else "", diagnostic)


def _addr_field(value: str) -> str:
    """ "rfc822; Kari@Example.EDU" -> "kari@example.edu"."""
    return value.rpartition(";")[2].strip().strip("<>").lower()


def _diag(value: str) -> str:
    kind, sep, rest = value.partition(";")
    return " ".join((rest if sep and " " not in kind.strip() else value).split())[:300]


_POSTFIX_RCPT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>(?: \(expanded from <[^>]*>\))?:", re.M)
_AFTER_PHRASE = re.compile(  # the failed addresses follow these words, within a few lines
    r"delivery has failed to these recipients or groups|following address(?:es|\(es\))? failed|"
    r"følgende mottak\w*(?:\(e\))? kunne ikke nås|following recipient\w*(?:\(s\))? could not be reached|"
    r"could ?n[o']t be delivered to|levering til (?:disse|følgende) mottak\w*(?: eller grupper\w*)? "
    r"mislyktes|kunne ikke leveres til|failed recipients?|undeliverable to|"
    r"la remise aux destinataires ou groupes suivants a échoué|"
    r"die zustellung an folgende empfänger oder gruppen ist fehlgeschlagen|"
    r"error al entregar el mensaje a estos destinatarios o grupos|"
    r"no se ha podido entregar (?:su|el) mensaje a (?:los siguientes|estos) destinatarios",
    re.I,
)
_RCPT_TO = re.compile(r"RCPT TO:\s*<([^<>\s]+@[^<>\s]+)>", re.I)
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


def text_addresses(mail: InboundMail) -> list[str]:
    """Addresses a notice names as failed, by the phrases of Exchange (in English, Norwegian,
    French, German and Spanish), Postfix's ``<addr>:`` lines and an SMTP transcript."""
    notice = notice_text(mail)
    found = list(_POSTFIX_RCPT.findall(notice))
    for m in _AFTER_PHRASE.finditer(notice):
        found += _EMAIL.findall(notice, m.end(), m.end() + 400)
    found += _RCPT_TO.findall(notice)
    return [a.lower().strip(".") for a in found]


def library_addresses(mail: InboundMail) -> tuple[list[str], list[str]]:
    """(permanent, temporary) failures by GNU Mailman's detectors (``flufl.bounce``); nothing
    when they cannot read the message."""
    try:
        msg = BytesParser(policy=compat32).parsebytes(mail.raw)
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector chokes on what it was not written for (or the parse recurses)
        return [], []
    return _decoded(permanent), _decoded(temporary)


def _decoded(found: Iterable[bytes]) -> list[str]:
    return sorted(a.decode("ascii", "replace").strip().strip("<>").lower() for a in found if b"@" in a)


@dataclass(frozen=True)
class Failed:
    """The failed (or delayed) addresses of a bounce, and where they were read."""

    addresses: tuple[str, ...]
    source: str  # "DSN", "X-Failed-Recipients", "flufl.bounce", "the notice's text", "the returned copy"


def failed_addresses(mail: InboundMail, ev: Evidence, delayed: bool, dsn: Sequence[DsnRecipient]) -> Failed:
    """The addresses to mark, from the most exact source that names any, held against the
    addresses our returned mail went to (see the module's note)."""
    ours = {mail.from_address, *mail.to, *mail.cc}
    wanted = "delayed" if delayed else "failed"

    def library() -> Sequence[str]:
        permanent, temporary = library_addresses(mail)
        return temporary if delayed else permanent or temporary

    sources: list[tuple[str, Callable[[], Sequence[str]]]] = [
        ("DSN", lambda: [r.address for r in dsn if r.outcome == wanted]),
        ("X-Failed-Recipients", lambda: () if delayed else ev.failed_header),
        ("flufl.bounce", library),
        ("the notice's text", lambda: text_addresses(mail)),
    ]
    sent_to = ev.returned.sent_to if ev.returned else ()
    for source, find in sources:  # in this order, and no further than needed
        named = _unique(a for a in find() if a and "@" in a and a not in ours)
        if named:
            return _held_against(named, source, sent_to)
    if len(sent_to) == 1:
        return Failed(sent_to, "the returned copy")
    return Failed((), "")


def _held_against(named: tuple[str, ...], source: str, sent_to: tuple[str, ...]) -> Failed:
    if not sent_to:
        return Failed(named, source)
    both = tuple(a for a in named if a in sent_to)
    if both:
        return Failed(both, source)
    if len(sent_to) == 1:  # forwarded or rewritten on the way: the address we sent to failed
        return Failed(sent_to, f"the returned copy ({source} named {', '.join(named)})")
    return Failed(named, source)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


# ---- what the remote server said ---------------------------------------------------------------

_SAID = re.compile(
    r"(?:said|returned|error from remote mail server[^\n]*):?\s*'?\s*"
    r"([245]\d\d[ -][^\n']+(?:\n {2,}[^\n]+)*)",
    re.I,
)
_CODE_LINE = re.compile(r"^.*\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b.*$", re.M)


def text_status(mail: InboundMail) -> tuple[tuple[str, ...], str]:
    """(enhanced status codes, the remote server's words) as a notice's text gives them."""
    said = _SAID.search(mail.text) or _CODE_LINE.search(mail.text)
    words = " ".join(said.group(said.lastindex or 0).split())[:300] if said else ""
    return _unique(_STATUS.findall(mail.text))[:5], words
