"""What a mail server's refusal means, in words a coordinator or HR can act on.

A bounce carries the server's own text ("550 5.1.1 <x@y>: Recipient address rejected: User
unknown in virtual mailbox table"). People are told what it means first, with the server's text
beside it: the enhanced status code (RFC 3463) decides, then the reply code, then a few phrases
servers commonly use.
"""

from __future__ import annotations

import re

from service.models import Language

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"\b([45]\d\d)\b")

# (nb, en) per meaning
NO_SUCH_ADDRESS = ("adressen finnes ikke", "the address does not exist")
MAILBOX_FULL = ("postkassen er full", "the mailbox is full")
REFUSED = ("mottakerens server avviste e-posten", "the recipient's server refused the message")
DOMAIN = ("domenet tar ikke imot e-post", "the domain does not accept mail")
TEMPORARY = ("midlertidig feil hos mottakeren", "a temporary failure at the recipient")
UNKNOWN = ("e-posten kom ikke fram", "the message could not be delivered")

_PHRASES = (
    (
        re.compile(
            r"user unknown|no such user|does not exist|unknown recipient|recipient not found|"
            r"address rejected|mailbox unavailable|not found",
            re.I,
        ),
        NO_SUCH_ADDRESS,
    ),
    (re.compile(r"mailbox (is )?full|quota|over ?quota|insufficient storage", re.I), MAILBOX_FULL),
    (re.compile(r"host not found|domain not found|no mx|name or service not known", re.I), DOMAIN),
)


def meaning(reason: str) -> tuple[str, str]:
    """(nb, en): what ``reason``, a server's refusal, means."""
    enhanced = _ENHANCED.search(reason)
    if enhanced:
        klass, subject, detail = enhanced.groups()
        if klass == "4":
            return TEMPORARY
        if (subject, detail) in (("1", "1"), ("1", "0"), ("1", "6")):
            return NO_SUCH_ADDRESS
        if subject == "1" and detail in ("2", "8", "10"):
            return DOMAIN
        if subject == "2" and detail in ("2", "3"):
            return MAILBOX_FULL
        if subject == "7":
            return REFUSED
    for pattern, found in _PHRASES:
        if pattern.search(reason):
            return found
    reply = _REPLY.search(reason)
    if reply and reply.group(1).startswith("4"):
        return TEMPORARY
    if reply and reply.group(1) in ("550", "551", "553"):
        return NO_SUCH_ADDRESS if "5.7" not in reason else REFUSED
    return UNKNOWN


def humane(reason: str, lang: Language) -> str:
    """The meaning in ``lang``, then the server's own words: "the address does not exist (550
    5.1.1 … User unknown)"."""
    nb, en = meaning(reason)
    said = " ".join(reason.split())
    return f"{nb if lang == 'nb' else en} ({said})" if said else (nb if lang == "nb" else en)
