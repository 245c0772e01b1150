"""What kind of mail is this? Exact signals first, heuristics second. Pure: InboundMail in.

Design note (after Mailman's bounce runner). The order below is the policy:

1. a clean RFC 3464 report: a ``message/delivery-status`` part (also inside a forwarded
   message) that names a failed recipient is a ``bounce``, one that names only delayed ones a
   ``delay``, and one that only says "delivered" a ``report``. A delayed notice is its own kind,
   never a bounce: the mail may still arrive, so the address must not be marked as failing.
   ARF spam complaints and MDN read receipts are ``report``.
2. ``own``: our own Message-ID mark (``.skjemapost@``), the copy of a mail we sent.
3. every other bounce, by its evidence (``bounces``): a delivery daemon for a sender (in any
   domain, ours included), ``X-Failed-Recipients``, a failure subject in any common language,
   a delivery-status part that names nobody, the returned copy of our own mail. A delivery
   report the parser could not open (broken MIME) or whose delivery-status part is empty is
   still a bounce when that evidence says so: the generic multipart/report rule comes after.
   This comes before the auto-reply headers because bounces often carry ``Auto-Submitted`` too.
4. auto-reply headers (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, ``Precedence``…), then
   mailing-list headers, then read receipts and auto-reply subjects by their wording, then
   automatic senders (``no-reply@``) that are not bounces.
5. a person: ``submission`` when at least one attachment looks like a spreadsheet (whether it
   is a usable form is decided later), else ``question``. The files inside a returned copy of
   our own mail are ours, never a submission, whoever returns them.

Every result carries the candidate reference codes (subject first, then body) so even a bounce
or an out-of-office can be tied to a unit; ``is_machine`` says which kinds are never answered
(``answerable`` holds the whole rule).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from service.mail import bounces, failures, tokens
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
        or _bounce(mail)
        or _any_report(mail)
        or _auto_headers(mail)
        or _list(mail)
        or _read_receipt(mail)
        or _auto_subject(mail)
        or _automatic_sender(mail)
        or _person(mail)
    )
    return replace(found, references=references(mail))


def is_spreadsheet(att: AttachmentFile) -> bool:
    """A file that may be the form: by extension, or by a content type that says spreadsheet."""
    ctype = att.content_type.lower()
    return att.extension in SPREADSHEET_EXTENSIONS or any(t in ctype for t in _SPREADSHEET_TYPES)


def spreadsheets(mail: InboundMail) -> tuple[AttachmentFile, ...]:
    """The attachments that may be forms, in the order they were found; never the files of a
    returned copy of our own mail (our blank form, coming back)."""
    return tuple(a for a in mail.attachments if is_spreadsheet(a) and not a.origin.startswith("returned"))


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


# ---- 1. machine-readable reports, 2. our own mail -----------------------------------------------


def _dsn(mail: InboundMail) -> Classification | None:
    """A delivery-status part that names its failed (or delayed) recipients, or says that every
    recipient got the mail; None when it names no outcome for anyone (the evidence decides)."""
    parts = [p for p in mail.parts if "delivery-status" in p.content_type]
    if not parts:
        return None
    rcpts = failures.dsn_recipients(mail)
    where = "" if all(p.origin == "top" for p in parts) else " in a forwarded message"
    outcomes: tuple[tuple[str, Kind], ...] = (("failed", MessageKind.BOUNCE), ("delayed", MessageKind.DELAY))
    for outcome, kind in outcomes:
        named = [r for r in rcpts if r.outcome == outcome and r.address]
        if named:
            delayed = outcome == "delayed"
            failed = failures.failed_addresses(mail, bounces.evidence(mail), delayed, rcpts)
            return Classification(
                kind,
                f"DSN{where}: Action: {outcome} for {', '.join(_unique([r.address for r in named]))}"
                + (f"; marked from {failed.source}" if failed.source != "DSN" else ""),
                failed.addresses,
                delayed,
                _unique([r.status for r in named]),
                next((r.diagnostic for r in named if r.diagnostic), ""),
                _original_id(mail),
                report_type="delivery-status",
            )
    if rcpts and all(r.outcome == "delivered" for r in rcpts):
        return Classification(
            MessageKind.REPORT,
            f"DSN{where} reporting delivery, not failure",
            original_message_id=_original_id(mail),
            report_type="delivery-status",
        )
    return None


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
    return None


def _own(mail: InboundMail) -> Classification | None:
    if is_ours(mail.message_id):
        return Classification(
            MessageKind.OWN,
            f"Message-ID {mail.message_id} is one of ours",
            original_message_id=mail.message_id,
        )
    return None


# ---- 3. every other bounce, by its evidence; then any report ------------------------------------


def _bounce(mail: InboundMail) -> Classification | None:
    ev = bounces.evidence(mail)
    if ev.success_subject or not _says_bounce(ev):
        return None
    rcpts = failures.dsn_recipients(mail)
    outcomes = {r.outcome for r in rcpts}
    delayed = bool(ev.delay_subject) or (
        not ev.failure_subject
        and not ev.failed_header
        and "failed" not in outcomes
        and ("delayed" in outcomes or (ev.delay_text and not ev.failure_text))
    )
    failed = failures.failed_addresses(mail, ev, delayed, rcpts)
    statuses, said = failures.text_status(mail)
    told = [r for r in rcpts if r.outcome == ("delayed" if delayed else "failed")]
    return Classification(
        MessageKind.DELAY if delayed else MessageKind.BOUNCE,
        f"{'delay notice' if delayed else 'bounce'} by its evidence ({'; '.join(ev.signals())})"
        + (f", the address from {failed.source}" if failed.addresses else ", no failed address found"),
        failed.addresses,
        delayed,
        _unique([r.status for r in told]) or statuses,
        next((r.diagnostic for r in told if r.diagnostic), "") or said,
        _original_id(mail),
        report_type=mail.report_type,
    )


def _says_bounce(ev: bounces.Evidence) -> bool:
    """Enough evidence to read a mail as a bounce (or a delay notice) at all. A no-reply sender
    alone is not: it must also say that something failed, and return our mail or a DSN."""
    return bool(
        ev.daemon == "delivery"
        or ev.failure_subject
        or ev.delay_subject
        or ev.failed_header
        or (ev.daemon == "automatic" and ev.failure_text and (ev.dsn_part or ev.returned))
    )


def _any_report(mail: InboundMail) -> Classification | None:
    """A multipart/report nothing above could read: a report, never a person's mail."""
    if mail.content_type == "multipart/report" or any(
        "delivery-status" in p.content_type for p in mail.parts
    ):
        return Classification(
            MessageKind.REPORT,
            f"multipart/report; report-type={mail.report_type or '?'}",
            original_message_id=_original_id(mail),
            report_type=mail.report_type,
        )
    return None


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
        if list_header(mail):
            return None  # a list's bulk mail: _list decides
        if precedence in ("bulk", "junk") and spreadsheets(mail):
            # some mail clients and gateways stamp people's mail bulk or junk; alone, that never
            # turns away a reply that carries a form (a real auto-reply has stronger signs)
            return None
        return _auto(mail, f"header Precedence: {precedence}")
    suppress = mail.header("x-auto-response-suppress").strip()
    if suppress and list_header(mail) is None and not spreadsheets(mail):
        # Exchange sets it on the mail it generates (and its auto-replies); people's mail lacks
        # it. It is the weakest header here, so it never turns away a mail carrying a form.
        return _auto(mail, f"header X-Auto-Response-Suppress: {suppress}")
    return None


def list_header(mail: InboundMail) -> str | None:
    """The first mailing-list header ``mail`` carries, or None."""
    for name in ("List-Id", "List-Unsubscribe", "List-Post", "Mailing-List", "X-Mailing-List"):
        if mail.header(name):
            return name
    return None


def _list(mail: InboundMail) -> Classification | None:
    name = list_header(mail)
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


def _automatic_sender(mail: InboundMail) -> Classification | None:
    """Mail from a no-reply address that is not a bounce is an auto-reply; a delivery daemon's
    that is not (a success notice) is a report."""
    kind, sender = bounces.sender_daemon(mail)
    if kind == "delivery":
        return Classification(MessageKind.REPORT, f"daemon sender {sender}, nothing failed")
    return _auto(mail, f"automatic sender {sender}") if kind else None


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


_MSGID_LINE = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)


def _original_id(mail: InboundMail) -> str:
    """The Message-ID of the mail a report is about, ours (``.skjemapost@``) preferred."""
    candidates = [f.message_id for f in mail.forwarded]
    candidates += _MSGID_LINE.findall(mail.text)
    candidates += [mail.in_reply_to, *mail.references]
    candidates = [c for c in candidates if c and c != mail.message_id]
    return next((c for c in candidates if is_ours(c)), candidates[0] if candidates else "")
