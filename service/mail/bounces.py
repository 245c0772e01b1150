"""What says a mail is a bounce at all. Pure: InboundMail in.

Design note (after Mailman's bounce runner). ``classifier`` reads a clean RFC 3464 report
first (``failures.dsn_recipients``: every recipient block that says failed or delayed, with its
address). What is not a clean DSN is judged on its evidence, gathered here by ``evidence``:

- a delivery daemon for a sender (``mailer-daemon``, ``postmaster``, ``post_master``,
  Exchange's system mailbox, in any domain; also a bare ``MAILER-DAEMON`` with no domain), or
  an automatic address (``no-reply``, ``noreply``, ``donotreply`` and friends);
- an ``X-Failed-Recipients`` header (Exim, Gmail);
- a failure or delay subject in any of the common languages ("Undeliverable", "Ikke levert",
  "Returnert e-post", "Unzustellbar", "Non remis", "No se puede entregar"...), or such words in
  the notice itself;
- a ``message/delivery-status`` part that names no failed address (empty, only per-message
  fields, a recipient block with no address);
- the returned copy of our own mail: a message/rfc822 or text/rfc822-headers part, or a header
  block quoted in the text, whose Message-ID carries our mark (``msgid``).

Which address failed is ``failures``' question. A sender alone (a daemon) or a subject alone
makes a bounce, as it always did; a no-reply address makes one only when it also says that
something failed and returns our mail (or a DSN): otherwise it is an automatic answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

from service.mail.msgid import is_ours
from service.mail.parser import InboundMail
from service.mail.text import addresses, message_id_in

# ---- who sent it ---------------------------------------------------------------------------------

#: delivery daemons: their mail is a delivery report, whatever its subject
_DELIVERY_DAEMON = re.compile(
    r"^(mailer[-_.]?daemon|mail[-_.]?daemon|mdaemon|post[-_.]?master|mail[-_.]?delivery[-_.]?system|"
    r"microsoftexchange[0-9a-f]{32}|bounces?)(?:[-+_.].*)?$",
    re.I,
)
#: automatic senders that are not delivery daemons: machine mail, a bounce only with more evidence
_NO_REPLY = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|dont[-_.]?reply|noresponse)(?:[-+_.].*)?$", re.I
)
_DAEMON_NAMES = frozenset(
    {"mail delivery system", "mail delivery subsystem", "mailer-daemon", "mail delivery"}
)
_ANGLED_LOCAL = re.compile(r"<([^<>@\s]+)>")


def daemon_kind(address: str) -> str:
    """ "delivery" for a delivery daemon's address, "automatic" for a no-reply one, else ""."""
    local = address.strip().strip("<>").rpartition("@")[0] or address.strip().strip("<>")
    if _DELIVERY_DAEMON.match(local):
        return "delivery"
    if _NO_REPLY.match(local):
        return "automatic"
    return ""


def sender_daemon(mail: InboundMail) -> tuple[str, str]:
    """(daemon kind, the address or header that says so) of the mail's sender; ("", "") for a
    person. Reads the From header itself too: ``From: MAILER-DAEMON`` has no domain, so it
    carries no address the parser keeps."""
    # From only: a Sender or Reply-To naming a system may stand on a person's mail (a web form,
    # a scanner), and a person's form must never be taken for a machine's
    kind = daemon_kind(mail.from_address) if mail.from_address else ""
    if kind:
        return kind, mail.from_address
    raw_from = " ".join(mail.header("from").split())
    name = mail.from_name
    if raw_from and "@" not in raw_from:  # "MAILER-DAEMON (Mail Delivery System)", "X <MAILER-DAEMON>"
        angled = _ANGLED_LOCAL.search(raw_from)
        local = angled.group(1) if angled else raw_from.split("(")[0].strip().strip('"')
        name = raw_from[: angled.start()].strip().strip('"') if angled else name
        if daemon_kind(local):
            return daemon_kind(local), raw_from
    if name.lower() in _DAEMON_NAMES:
        return "delivery", name
    return "", ""


# ---- what it says ----------------------------------------------------------------------------

# anchored at the start: "VS: Ikke levert: ..." is a person passing a bounce on, never a bounce
_SUBJECT_PREFIX = r"^\s*"
FAILURE_SUBJECT = re.compile(
    _SUBJECT_PREFIX + r"(undeliverable|undelivered mail|delivery status notification \(failure\)|"
    r"mail delivery (?:failed|failure|system)|returned mail|delivery failure|failure notice|"
    r"message not delivered|non[- ]?delivery|delivery failed|could not send message|"
    # Norwegian, Danish, Swedish
    r"kan ikke leveres|kunne ikke leveres|ikke levert|levering mislyktes|leveringsfeil|"
    r"returnert e-?post|returnert melding|returnerte e-?post|ej levererat|kunde inte levereras|"
    r"det gick inte att leverera|kan ikke afleveres|"
    # German, Dutch
    r"unzustellbar|nicht zustellbar|zustellung fehlgeschlagen|fehler bei der zustellung|"
    r"onbestelbaar|niet bezorgd|"
    # French, Spanish, Italian, Portuguese
    r"non remis|non distribu|échec de (?:la )?(?:remise|distribution)|message non délivré|"
    r"no se puede entregar|no se pudo entregar|mensaje no entregado|error de entrega|"
    r"non recapitabile|mancato recapito|não é possível entregar|não entregue|"
    # Finnish, Polish
    r"ei voitu toimittaa|niedostarczalne|niedostarczona)",
    re.I,
)
DELAY_SUBJECT = re.compile(
    _SUBJECT_PREFIX + r"(delivery status notification \(delay\)|delivery delayed|delayed mail|"
    r"warning: (?:message|could not send)|levering forsinket|forsinket levering|"
    r"delivery notification: delivery has been delayed|zustellung verz|remise différée|"
    r"entrega retrasada|consegna ritardata)",
    re.I,
)
#: a report that something *was* delivered: never a bounce, whoever sends it
SUCCESS_SUBJECT = re.compile(
    r"^\s*(successful mail delivery report|delivery status notification \(success\)|"
    r"delivered:|relayed:|levert:|zugestellt:|remis :|entregado:)",
    re.I,
)
_DELAY_TEXT = re.compile(
    r"not yet been delivered|will (continue|keep) (to )?try|still trying|"
    r"is delayed|has been delayed|forsinket|vil fortsette å prøve",
    re.I,
)
_FAIL_TEXT = re.compile(
    r"permanent|could ?n[o']t be delivered|(?:was|were) not delivered|undeliverable|delivery (?:has )?failed|failed|"
    r"kunne ikke leveres|ikke levert|mislyktes|tar ikke (?:imot|lenger imot)|"
    r"konnte nicht zugestellt|fehlgeschlagen|n'a pas pu être (?:remis|distribué)|a échoué|"
    r"no se pudo entregar|no pudo ser entregado|non è stato possibile recapitare",
    re.I,
)
#: where a notice starts quoting the returned message: addresses after this are not the failed ones
_RETURNED = re.compile(
    r"copy of the message|original message (?:headers|follows|details)|"
    r"undelivered message headers|below this line|opprinnelig melding|"
    r"opprinnelige meldingshoder|en-têtes de message d'origine|kopfzeilen der ursprünglichen nachricht|"
    r"encabezados del mensaje original|-{3,} ?(?:original message|mensaje original) ?-{3,}|"
    r"start of returned message",
    re.I,
)


def _returned_line(text: str) -> tuple[int, int] | None:
    """(start, end) of the line where ``text`` starts quoting the returned message."""
    found = _RETURNED.search(text)  # the words alone: "^.*(...).*$" costs a millisecond a mail
    if found is None:
        return None
    end = text.find("\n", found.end())
    return text.rfind("\n", 0, found.start()) + 1, len(text) if end < 0 else end


@dataclass(frozen=True)
class Returned:
    """A copy of a mail we sent, found in another: its Message-ID and the addresses it went to
    (``sent_to``)."""

    message_id: str
    sent_to: tuple[str, ...]


@dataclass(frozen=True)
class Evidence:
    """What in a mail says it is a bounce or a delay notice; empty values where nothing does.
    ``returned``, ``failure_text`` and ``delay_text`` are read only when one of the other signs
    is there (see ``evidence``)."""

    daemon: str  # "delivery", "automatic" or ""
    sender: str  # the address (or From header) that made it a daemon
    failure_subject: str
    delay_subject: str
    success_subject: str
    failed_header: tuple[str, ...]  # X-Failed-Recipients, lower-case
    dsn_part: bool  # a message/delivery-status part is there (whether or not it names anyone)
    returned: Returned | None
    failure_text: bool
    delay_text: bool

    def signals(self) -> list[str]:
        """The evidence in words, for the classification's reason."""
        out = []
        if self.daemon:
            out.append(f"{'daemon' if self.daemon == 'delivery' else 'automatic'} sender {self.sender}")
        if self.failed_header:
            out.append("X-Failed-Recipients")
        for subject in (self.failure_subject, self.delay_subject):
            if subject:
                out.append(f"subject {subject!r}")
        if self.dsn_part:
            out.append("a delivery-status part naming no failed address")
        if self.returned:
            out.append(f"the returned copy of our {self.returned.message_id}")
        return out


def notice_text(mail: InboundMail) -> str:
    """The notice itself: the text before it starts quoting the returned message."""
    returned = _returned_line(mail.text)
    return mail.text[: returned[0]] if returned else mail.text


def evidence(mail: InboundMail) -> Evidence:
    """Everything in ``mail`` that speaks for (or against) a bounce. The text is read (for words
    of failure, for a quoted copy of our mail) only when a sign in the headers or the MIME
    structure is there: a person's mail costs a few string tests, not a scan of its text."""
    daemon, sender = sender_daemon(mail)
    failure, delay = FAILURE_SUBJECT.search(mail.subject), DELAY_SUBJECT.search(mail.subject)
    success = SUCCESS_SUBJECT.search(mail.subject)
    failed_header = _failed_header(mail)
    dsn_part = any("delivery-status" in p.content_type for p in mail.parts)
    suspect = bool(daemon or failure or delay or failed_header or dsn_part)
    notice = notice_text(mail) if suspect else ""
    return Evidence(
        daemon=daemon,
        sender=sender,
        failure_subject=failure.group(1) if failure else "",
        delay_subject=delay.group(1) if delay else "",
        success_subject=success.group(1) if success else "",
        failed_header=failed_header,
        dsn_part=dsn_part,
        returned=returned_copy(mail) if suspect else None,
        failure_text=bool(notice and _FAIL_TEXT.search(notice)),
        delay_text=bool(notice and _DELAY_TEXT.search(notice)),
    )


def returned_copy(mail: InboundMail) -> Returned | None:
    """The copy of our own mail that ``mail`` returns or quotes, if it does."""
    for fwd in mail.forwarded:
        if is_ours(fwd.message_id):
            return Returned(fwd.message_id, _sent_to(fwd.to, fwd.headers))
    quoted = _returned_line(mail.text)
    if quoted is None:
        return None
    block = _quoted_headers(mail.text[quoted[1] :])
    message_id = message_id_in(block.get("message-id", ""))
    if not is_ours(message_id):
        return None
    headers: dict[str, list[str]] = {}
    for name, value in block.items():
        headers.setdefault(name.lower(), []).append(" ".join(str(value).split()))
    found = addresses(headers.get("to", []) + headers.get("cc", []))
    return Returned(message_id, _sent_to(tuple(dict.fromkeys(a for _, a in found)), headers))


_FOR = re.compile(r"\bfor\s+<([^<>\s]+@[^<>\s]+)>", re.I)


def _sent_to(to: tuple[str, ...], headers: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The addresses our returned mail went to (its To and Cc), narrowed to the one whose mailbox
    this copy was delivered to when the copy says so (Delivered-To, X-Original-To, a Received
    "for <x>"): an invitation goes to the leader and, copied, to the verneombud."""
    named = [
        a for name in ("delivered-to", "x-original-to") for _, a in addresses(list(headers.get(name, ())))
    ]
    named += [m.group(1).lower() for value in headers.get("received", ()) for m in _FOR.finditer(value)]
    delivered = [a for a in dict.fromkeys(named) if a in to]
    return (delivered[0],) if len(delivered) == 1 else to


_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+:")


def _quoted_headers(text: str) -> Message:
    """The header lines that follow a "here is the original message" line: from the first line
    that starts like a header to the first that is neither a header nor its continuation, at
    the first one's indent (some notices indent the headers they quote)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HEADER_NAME.match(line.lstrip())), len(lines))
    block: list[str] = []
    if start < len(lines):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        for line in lines[start:]:
            rest = line[len(indent) :] if line.startswith(indent) else ""
            if not rest.strip():
                break
            if _HEADER_NAME.match(rest) or (block and rest[:1] in (" ", "\t")):
                block.append(rest)
            else:
                break
    return HeaderParser(policy=compat32).parsestr("\n".join(block) + "\n\n", headersonly=True)


def _failed_header(mail: InboundMail) -> tuple[str, ...]:
    values = mail.headers.get("x-failed-recipients", ())
    return tuple(dict.fromkeys(a for _, a in addresses(list(values))))
