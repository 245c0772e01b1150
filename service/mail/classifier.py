"""What kind of mail is this? Exact signals first, heuristics second. Pure: InboundMail in.

Design note (after Mailman's bounce runner). The order below is the policy:

1. machine-readable reports: a DSN (``message/delivery-status``, also inside a forwarded
   message) is a ``bounce`` when any recipient failed, a ``delay`` when recipients were only
   delayed, and a ``report`` when it only says "delivered"; ARF spam complaints and MDN read
   receipts are ``report``. A delayed notice is its own kind, never a bounce: the mail may still
   arrive, so the address must not be marked as failing.
2. ``own``: our own Message-ID mark (``.skjemapost@``), the copy of a mail we sent.
3. text bounces from a mailer daemon, or with a bounce subject ("Undeliverable:", "Kan ikke
   leveres:"…). They come before the auto-reply headers because bounces often carry
   ``Auto-Submitted`` too.
4. auto-reply headers (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence``…), then
   mailing-list headers, then read receipts and auto-reply subjects by their wording.
5. a person: ``submission`` when at least one attachment looks like a spreadsheet (whether it
   is a usable form is decided later), else ``question``.

Every result carries the candidate reference codes (subject first, then body) so even a bounce
or an out-of-office can be tied to a unit; ``is_machine`` says which kinds are never answered.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from service.mail import tokens
from service.mail.msgid import is_ours
from service.mail.parser import AttachmentFile, InboundMail
from service.mail.returndate import return_date
from service.mail.text import message_id_in
from service.models import MessageKind

Kind = MessageKind
KINDS: tuple[Kind, ...] = (
    MessageKind.BOUNCE,
    MessageKind.DELAY,
    MessageKind.AUTO_REPLY,
    MessageKind.REPORT,
    MessageKind.LIST,
    MessageKind.OWN,
    MessageKind.SUBMISSION,
    MessageKind.QUESTION,
)
MACHINE_KINDS: frozenset[Kind] = frozenset(KINDS[:6])

SPREADSHEET_EXTENSIONS = frozenset({"xlsx", "xlsm", "xls", "xlsb", "xltx", "xltm", "ods", "csv"})
_SPREADSHEET_TYPES = ("spreadsheet", "ms-excel", "text/csv", "text/comma-separated-values")


@dataclass(frozen=True)
class Classification:
    """The kind of a mail, the signal that decided it (``reason``), and the facts for its kind.

    For a ``delay`` the recipients still being retried stand in ``failed_recipients`` (with
    ``delayed`` True): not failed yet, so never mark them as failing.
    """

    kind: Kind
    reason: str  # e.g. "header Auto-Submitted: auto-replied", "DSN: Action: failed for x@y"
    failed_recipients: tuple[str, ...] = ()  # lower-case addresses
    delayed: bool = False
    status: tuple[str, ...] = ()  # enhanced status codes ("5.1.1") of those recipients
    diagnostic: str = ""  # the remote server's words, e.g. "550 5.1.1 User unknown"
    original_message_id: str = ""  # the mail a bounce or report is about; ours preferred
    returns_on: dt.date | None = None  # auto-reply: the first day back, when it can be read
    report_type: str = ""  # delivery-status, feedback-report, disposition-notification
    references: tuple[str, ...] = ()  # candidate reference codes, subject first, unchecked


def is_machine(c: Classification) -> bool:
    """True for mail the service must never answer: bounces, delays, auto-replies, reports..."""
    return c.kind in MACHINE_KINDS


def classify(mail: InboundMail) -> Classification:
    """Classify one parsed message."""
    found = (
        _dsn(mail)
        or _report(mail)
        or _own(mail)
        or _text_bounce(mail)
        or _auto_headers(mail)
        or _list(mail)
        or _read_receipt(mail)
        or _auto_subject(mail)
        or _person(mail)
    )
    return replace(found, references=references(mail))


def is_spreadsheet(att: AttachmentFile) -> bool:
    """A file that may be the form: by extension, or by a content type that says spreadsheet."""
    ctype = att.content_type.lower()
    return att.extension in SPREADSHEET_EXTENSIONS or any(t in ctype for t in _SPREADSHEET_TYPES)


def spreadsheets(mail: InboundMail) -> tuple[AttachmentFile, ...]:
    """The attachments that may be forms, in the order they were found."""
    return tuple(a for a in mail.attachments if is_spreadsheet(a))


# ---- references ------------------------------------------------------------------------------


def references(mail: InboundMail) -> tuple[str, ...]:
    """Candidate reference codes: subject first, then body; unchecked but plausible.

    ``find_references`` alone takes any 8-letter word ("vedlagte", "file name") for a code. So a
    candidate is kept only when it was written like one: not all lower case, with a letter, and
    either with its dash (ABCD-EFGH, kept even with a typo, so the sender can be told) or with a
    keyless check symbol that holds (which 36 of 37 random words fail).
    """
    out: dict[str, None] = {}
    for text in (mail.subject, mail.text):
        for m in tokens.REFERENCE_PATTERN.finditer(text):
            written = m.group(0)
            if written.islower() or not any(ch.isalpha() for ch in written):
                continue
            for ref in tokens.find_references(written):
                if "-" in written or tokens.well_formed(ref):
                    out.setdefault(ref, None)
    return tuple(out)


# ---- 1. machine-readable reports ---------------------------------------------------------------


def _dsn(mail: InboundMail) -> Classification | None:
    parts = [p for p in mail.parts if "delivery-status" in p.content_type]
    if not parts:
        return None
    addrs: dict[str, list[str]] = {"failed": [], "delayed": []}
    codes: dict[str, list[str]] = {"failed": [], "delayed": []}
    diagnostics = {"failed": "", "delayed": ""}
    for rcpt in (r for p in parts for r in p.recipients):
        action = rcpt.get("action", "").strip().lower()
        code = _STATUS.search(rcpt.get("status", ""))
        # without an Action field the status class decides: 5.x.x failed, 4.x.x delayed
        outcome = action or {"5": "failed", "4": "delayed"}.get(code.group(1)[0] if code else "", "")
        if outcome not in addrs:
            continue  # delivered, relayed, expanded
        addrs[outcome].append(_addr_field(rcpt.get("final-recipient") or rcpt.get("original-recipient", "")))
        codes[outcome] += [code.group(1)] if code else []
        diagnostics[outcome] = diagnostics[outcome] or _diag(rcpt.get("diagnostic-code", ""))
    where = "" if all(p.origin == "top" for p in parts) else " in a forwarded message"
    original = _original_id(mail)
    outcomes: tuple[tuple[str, Kind], ...] = (("failed", MessageKind.BOUNCE), ("delayed", MessageKind.DELAY))
    for outcome, kind in outcomes:
        if addrs[outcome]:
            return Classification(
                kind,
                f"DSN{where}: Action: {outcome} for {', '.join(addrs[outcome])}",
                _unique(addrs[outcome]),
                outcome == "delayed",
                _unique(codes[outcome]),
                diagnostics[outcome],
                original,
                report_type="delivery-status",
            )
    return Classification(
        MessageKind.REPORT,
        f"DSN{where} reporting delivery, not failure",
        original_message_id=original,
        report_type="delivery-status",
    )


def _report(mail: InboundMail) -> Classification | None:
    for part in mail.parts:
        if "feedback-report" in part.content_type:
            kind = part.fields.get("feedback-type", "abuse")
            return Classification(
                MessageKind.REPORT,
                f"ARF report (Feedback-Type: {kind})",
                original_message_id=_original_id(mail),
                report_type="feedback-report",
            )
        if "disposition-notification" in part.content_type:
            disposition = part.fields.get("disposition", "")
            original = message_id_in(part.fields.get("original-message-id", "")) or _original_id(mail)
            return Classification(
                MessageKind.REPORT,
                f"MDN (Disposition: {disposition})",
                original_message_id=original,
                report_type="disposition-notification",
            )
    if mail.content_type == "multipart/report":
        return Classification(
            MessageKind.REPORT,
            f"multipart/report; report-type={mail.report_type or '?'}",
            original_message_id=_original_id(mail),
            report_type=mail.report_type,
        )
    return None


def _own(mail: InboundMail) -> Classification | None:
    if is_ours(mail.message_id):
        return Classification(
            MessageKind.OWN,
            f"Message-ID {mail.message_id} is one of ours",
            original_message_id=mail.message_id,
        )
    return None


# ---- 3. text bounces ---------------------------------------------------------------------------

_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "bounce", "bounces"})
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliverable|undelivered mail|delivery status notification \(failure\)|"
    r"mail delivery (failed|failure|system)|returned mail|delivery failure|failure notice|"
    r"message not delivered|non[- ]?delivery|kan ikke leveres|ikke levert|levering mislyktes|"
    r"unzustellbar|nicht zustellbar|ej levererat|kunde inte levereras)",
    re.I,
)
_DELAY_SUBJECT = re.compile(
    r"^\s*(delivery status notification \(delay\)|delivery delayed|delayed mail|"
    r"warning: (message|could not send)|levering forsinket|forsinket levering|"
    r"delivery notification: delivery has been delayed|zustellung verz)",
    re.I,
)
_DELAY_TEXT = re.compile(
    r"not yet been delivered|will (continue|keep) (to )?try|still trying|"
    r"is delayed|has been delayed|forsinket|vil fortsette å prøve",
    re.I,
)
_FAIL_TEXT = re.compile(
    r"permanent|could not be delivered|couldn't be delivered|failed|"
    r"kunne ikke leveres|mislyktes",
    re.I,
)
_POSTFIX_RCPT = re.compile(r"^<([^<>\s]+@[^<>\s]+)>(?: \(expanded from <[^>]*>\))?:", re.M)
_AFTER_PHRASE = re.compile(  # the failed addresses follow these words, within a few lines
    r"delivery has failed to these recipients or groups|following address(?:es|\(es\))? failed|"
    r"følgende mottak\w*(?:\(e\))? kunne ikke nås|following recipient\w*(?:\(s\))? could not be reached|"
    r"could ?n[o']t be delivered to|levering til (?:disse|følgende) mottak\w*(?: eller grupper\w*)? "
    r"mislyktes|kunne ikke leveres til|failed recipients?|undeliverable to",
    re.I,
)
#: where a bounce starts quoting the returned message: addresses after this are not the failed ones
_RETURNED = re.compile(
    r"^.*(copy of the message|original message (?:headers|follows)|"
    r"undelivered message headers|below this line|opprinnelig melding).*$",
    re.I | re.M,
)
_RCPT_TO = re.compile(r"RCPT TO:\s*<([^<>\s]+@[^<>\s]+)>", re.I)
_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_SAID = re.compile(
    r"(?:said|returned|error from remote mail server[^\n]*):?\s*'?\s*"
    r"([245]\d\d[ -][^\n']+(?:\n {2,}[^\n]+)*)",
    re.I,
)
_CODE_LINE = re.compile(r"^.*\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b.*$", re.M)


def _text_bounce(mail: InboundMail) -> Classification | None:
    local = mail.from_address.partition("@")[0]
    daemon = local in _DAEMONS or mail.from_name.lower() in (
        "mail delivery system",
        "mail delivery subsystem",
    )
    delay_subject, bounce_subject = _DELAY_SUBJECT.search(mail.subject), _BOUNCE_SUBJECT.search(mail.subject)
    if not (daemon or delay_subject or bounce_subject):
        return None
    text = mail.text
    returned = _RETURNED.search(text)
    notice = text[: returned.start()] if returned else text
    delayed = bool(delay_subject) or (
        not bounce_subject and bool(_DELAY_TEXT.search(text)) and not _FAIL_TEXT.search(text)
    )
    found = [a.strip().lower() for v in mail.headers.get("x-failed-recipients", ()) for a in v.split(",")]
    found += _POSTFIX_RCPT.findall(notice)
    for m in _AFTER_PHRASE.finditer(notice):
        found += _EMAIL.findall(notice, m.end(), m.end() + 400)
    found += _RCPT_TO.findall(notice)
    ours = {mail.from_address, *mail.to, *mail.cc}
    failed = _unique([a.lower().strip(".") for a in found if a and a.lower() not in ours])
    said = _SAID.search(text) or _CODE_LINE.search(text)
    by_subject = delay_subject or bounce_subject
    signal = f"subject {by_subject.group(0).strip()!r}" if by_subject else f"sender {mail.from_address}"
    return Classification(
        MessageKind.DELAY if delayed else MessageKind.BOUNCE,
        f"text {'delay notice' if delayed else 'bounce'} ({signal})"
        + ("" if failed else ", no failed address found"),
        failed,
        delayed,
        _unique(_STATUS.findall(text))[:5],
        " ".join(said.group(said.lastindex or 0).split())[:300] if said else "",
        _original_id(mail),
    )


# ---- 4. auto-replies, lists, read receipts -----------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(automatisk svar|autosvar|fraværsmelding|fraværende|fravær|ikke til stede|"
    r"out of (the )?office( reply| autoreply| notice)?|automatic reply|auto[- ]?reply|"
    r"auto[- ]?response|auto|abwesenheitsnotiz|automatische antwort|frånvaro|autosvar)\s*[:\-–]",
    re.I,
)
_READ_SUBJECT = re.compile(
    r"^\s*(read|lest|not read|ikke lest|gelesen|ungelesen|read receipt|"
    r"lesebekreftelse|lesekvittering)\s*:",
    re.I,
)
_READ_TEXT = re.compile(
    r"was read on|ble lest|er lest|without being read|uten å bli lest|"
    r"wurde am .* gelesen",
    re.I,
)


def _auto_headers(mail: InboundMail) -> Classification | None:
    auto = mail.header("auto-submitted").strip()
    if auto and not auto.lower().startswith("no"):
        return _auto(mail, f"header Auto-Submitted: {auto}")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-MS-Exchange-Inbox-Rules-Loop"):
        value = mail.header(name).strip()
        if value and value.lower() not in ("no", "false"):
            return _auto(mail, f"header {name}: {value}")
    precedence = mail.header("precedence").strip().lower()
    if precedence in ("bulk", "junk", "auto_reply", "auto-reply"):
        if _list_header(mail):
            return None  # a list's bulk mail: _list decides
        if precedence in ("bulk", "junk") and spreadsheets(mail):
            # some mail clients and gateways stamp people's mail bulk or junk; alone, that never
            # turns away a reply that carries a form (a real auto-reply has stronger signs)
            return None
        return _auto(mail, f"header Precedence: {precedence}")
    suppress = mail.header("x-auto-response-suppress").strip()
    if suppress and _list_header(mail) is None and not spreadsheets(mail):
        # Exchange sets it on the mail it generates (and its auto-replies); people's mail lacks
        # it. It is the weakest header here, so it never turns away a mail carrying a form.
        return _auto(mail, f"header X-Auto-Response-Suppress: {suppress}")
    return None


def _list_header(mail: InboundMail) -> str | None:
    for name in ("List-Id", "List-Unsubscribe", "List-Post", "Mailing-List", "X-Mailing-List"):
        if mail.header(name):
            return name
    return None


def _list(mail: InboundMail) -> Classification | None:
    name = _list_header(mail)
    if name:
        return Classification(MessageKind.LIST, f"header {name}: {mail.header(name)[:80]}")
    if mail.header("precedence").strip().lower() == "list":
        return Classification(MessageKind.LIST, "header Precedence: list")
    return None


def _read_receipt(mail: InboundMail) -> Classification | None:
    if not _READ_SUBJECT.search(mail.subject):
        return None
    # the subject alone could be a person's; a second signal must agree
    exchange = next((h for h in mail.headers if h.startswith("x-ms-exchange")), "")
    if mail.content_type == "multipart/report":
        why = "multipart/report"
    elif _READ_TEXT.search(mail.text):
        why = "its wording"
    elif exchange and not mail.attachments and len(mail.text) < 600:
        why = f"header {exchange}, no attachment"
    else:
        return None
    return Classification(
        MessageKind.REPORT,
        f"read receipt: subject {mail.subject.split(':')[0]!r} and {why}",
        original_message_id=_original_id(mail),
        report_type="disposition-notification",
    )


def _auto_subject(mail: InboundMail) -> Classification | None:
    m = _AUTO_SUBJECT.search(mail.subject)
    return _auto(mail, f"subject prefix {m.group(0).strip()!r}") if m else None


def _auto(mail: InboundMail, reason: str) -> Classification:
    anchor = mail.date.date() if mail.date else None
    return Classification(
        MessageKind.AUTO_REPLY, reason, returns_on=return_date(f"{mail.subject}\n{mail.text}", anchor)
    )


# ---- 5. a person -----------------------------------------------------------------------------


def _person(mail: InboundMail) -> Classification:
    sheets = spreadsheets(mail)
    if sheets:
        names = ", ".join(a.filename or a.content_type for a in sheets)
        return Classification(MessageKind.SUBMISSION, f"spreadsheet attachment(s): {names}")
    why = (
        f"{len(mail.attachments)} attachment(s), none a spreadsheet" if mail.attachments else "no attachment"
    )
    return Classification(MessageKind.QUESTION, f"a person's mail with {why}")


# ---- helpers ---------------------------------------------------------------------------------


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _addr_field(value: str) -> str:
    """ "rfc822; Kari@Example.EDU" -> "kari@example.edu"."""
    return value.rpartition(";")[2].strip().strip("<>").lower()


def _diag(value: str) -> str:
    kind, sep, rest = value.partition(";")
    return " ".join((rest if sep and " " not in kind.strip() else value).split())[:300]


_MSGID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)


def _original_id(mail: InboundMail) -> str:
    """The Message-ID of the mail a report is about, ours (``.skjemapost@``) preferred."""
    candidates = [f.message_id for f in mail.forwarded]
    candidates += _MSGID_LINE.findall(mail.text)
    candidates += [mail.in_reply_to, *mail.references]
    candidates = [c for c in candidates if c and c != mail.message_id]
    return next((c for c in candidates if is_ours(c)), candidates[0] if candidates else "")
