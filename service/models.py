"""Values that cross module boundaries: frozen, typed, and free of I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, get_args

Language = Literal["nb", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)


def share_percent(part: int, whole: int) -> int:
    """``part`` of ``whole`` as a whole percent, rounded down (0 when ``whole`` is 0): the one
    rounding rule of every surface (`status`, digests, the web page, the workbook's cells and
    charts), so 2 of 3 reads 66 % everywhere and a campaign never shows 100 % before it is done."""
    return part * 100 // whole if whole > 0 else 0


class MessageKind(StrEnum):
    """What an inbound message is: the classifier's verdict, and the kind its decision records."""

    BOUNCE = "bounce"
    DELAY = "delay"
    AUTO_REPLY = "auto-reply"
    REPORT = "report"
    LIST = "list"
    OWN = "own"
    SUBMISSION = "submission"
    QUESTION = "question"
    # decisions only
    COSIGN = "cosign"  # a verneombud's answer to the request to confirm a form (jobs/cosignreply)
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    ERROR = "error"


class MailKind(StrEnum):
    """What a mail the service sends is: its template (templates/email/<lang>/<kind>.*) and the
    outbox row's kind."""

    LEADER_INVITATION = "leader-invitation"
    LEADER_REMINDER_BEFORE = "leader-reminder-before"
    LEADER_REMINDER_AFTER = "leader-reminder-after"
    LEADER_REMINDER_CORRECTION = "leader-reminder-correction"
    ESCALATION = "escalation"
    LEADER_RECEIPT = "leader-receipt"
    LEADER_CORRECTION = "leader-correction"
    COORDINATOR_DIGEST = "coordinator-digest"
    HR_DIGEST = "hr-digest"
    CHALLENGES_NOTICE = "challenges-notice"
    HELP_NOTICE = "help-notice"
    # the co-signature: the verneombud confirms the form by email (service/mail/cosignletters.py)
    VERNEOMBUD_REQUEST = "verneombud-request"
    VERNEOMBUD_REMINDER = "verneombud-reminder"
    VERNEOMBUD_ACK = "verneombud-ack"
    LEADER_COSIGN_COMMENT = "leader-cosign-comment"
    COORDINATOR_COSIGN_NOTICE = "coordinator-cosign-notice"
    OBSERVER_DIGEST = "observer-digest"  # [[observers]]: numbers only, no names
    HR_FINAL = "hr-final"  # once, when the campaign closes, with the master workbook
    LEADER_AFTER_CLOSING = "leader-after-closing"  # the answer to a form that came after the closing


@dataclass(frozen=True)
class Unit:
    """One unit of the roster: who leads it and who is its safety representative (verneombud)."""

    code: str
    name: str
    faculty: str
    leader_name: str
    leader_email: str
    language: Language
    verneombud_name: str = ""
    verneombud_email: str = ""
    superior_email: str = ""


@dataclass(frozen=True)
class NewMail:
    """A mail ready for the outbox: its dedupe key says which step of the campaign it is."""

    kind: str
    unit_code: str | None
    dedupe_key: str
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    payload: bytes


@dataclass(frozen=True)
class NewSubmission:
    """A form read from a reply, checked, ready to be stored as a version of its unit's answer."""

    unit_code: str
    received_at: dt.datetime
    sender: str
    valid: bool
    answers: dict[str, Any]  # JSON-ready: dates as ISO strings, tables as lists of dicts
    problems: tuple[dict[str, str], ...]  # {"cell", "label", "message"}
    flags: tuple[dict[str, str], ...]  # {"field", "label", "value", "message_nb", "message_en"}
    file_name: str
    file_sha256: str
    sent_by: str = ""  # a deputy who sent it for the leader


@dataclass(frozen=True)
class CosignAnswer:
    """An answer to co-signature request ``request_id`` read from an inbound message: stored with
    the message's decision, in its transaction (``store.cosign.answer_in``)."""

    request_id: int
    reading: str  # confirmed, disputed
    words: str  # their own words, verbatim
    answered_by: str  # the address that answered
    answered_by_name: str
    at: dt.datetime  # when the answer was received


@dataclass(frozen=True)
class Decision:
    """What processing one inbound message decided; the store commits it in one transaction."""

    kind: MessageKind
    outcome: str  # receipt, correction, rejected, review, ignored, bounce-recorded, sent-copy...
    folder: str  # the IMAP folder it is moved to after the commit
    unit_code: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    submissions: tuple[NewSubmission, ...] = ()
    answers: tuple[NewMail, ...] = ()
    failing_addresses: tuple[tuple[str, str], ...] = ()  # (address, reason)
    bounced_message_id: str = ""  # our outbox row the bounce is about
    cosign_answer: CosignAnswer | None = None  # a verneombud's answer, recorded with the decision
