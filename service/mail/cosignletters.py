"""The co-signature's mails: the verneombud is asked to confirm a valid form, reminded once, and
thanked; a comment goes to the leader (kindly) and to the coordinator (for their information).

The form is filled in by the leader *i samråd med verneombud* (the letter). ``CosignLetters`` turns
"ask this unit's verneombud about version 2" into a ``NewMail`` for the outbox, through
``Letters`` (the unit's context, the reference, the exact bytes); the ``*_context`` functions are
the templates' contexts, built from plain values, so the golden renderings and the service build
them the same way. Pure: the time and all data come in as arguments.

| kind | to | language | dedupe key (less "campaign:") |
| --- | --- | --- | --- |
| ``verneombud-request`` | the verneombud | the unit's | ``UNIT:cosign-request:VERSION`` |
| ``verneombud-reminder`` | the verneombud, threaded under the request | the unit's | ``UNIT:cosign-reminder:VERSION`` |
| ``verneombud-ack`` | whoever answered, threaded under their reply | the unit's | the caller's ``Reply.key`` |
| ``leader-cosign-comment`` | the leader | the unit's | the caller's ``key`` |
| ``coordinator-cosign-notice`` | the faculty's coordinator(s) | the campaign's default | the caller's ``key`` |

The request and the reminder are not marked ``Auto-Submitted`` (an out-of-office reply tells us
the verneombud is away); the other three answer or inform and are machine mail, once
``letters.MACHINE_KINDS`` names them (``COSIGN_MACHINE_KINDS``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.mail.compose import Attachment, Envelope, Mailbox
from service.mail.letters import Letters, Reply
from service.models import MailKind, NewMail, Unit

COSIGN_KINDS: tuple[MailKind, ...] = (
    MailKind.VERNEOMBUD_REQUEST,
    MailKind.VERNEOMBUD_REMINDER,
    MailKind.VERNEOMBUD_ACK,
    MailKind.LEADER_COSIGN_COMMENT,
    MailKind.COORDINATOR_COSIGN_NOTICE,
)
#: the kinds that answer or inform: RFC 3834 Auto-Submitted, like the receipt and the notices
COSIGN_MACHINE_KINDS = frozenset(
    {MailKind.VERNEOMBUD_ACK, MailKind.LEADER_COSIGN_COMMENT, MailKind.COORDINATOR_COSIGN_NOTICE}
)


@dataclass(frozen=True)
class Asked:
    """The valid version of a unit's form the verneombud is asked to confirm, as the mails show it.

    ``summary``: the answers read back as the leader's receipt shows them (rows with ``label``
    and ``value``, in the mail's language). ``updated``: it replaces a version they were asked
    about before. ``sent_by``: who sent it when it was not the leader (a deputy), else "".
    """

    version: int
    received_at: dt.datetime
    summary: Sequence[Mapping[str, str]]
    updated: bool = False
    sent_by: str = ""


@dataclass(frozen=True)
class Answer:
    """What came back: ``reading`` "confirmed" or "disputed" (``replyread.Verdict``), their own
    ``words`` verbatim, when, and who answered (``answered_by``, e.g. "Siri Løvås
    (siri.lovas@example.edu)": it may be someone else at the institution)."""

    reading: str
    words: str
    answered_at: dt.datetime
    answered_by: str


# ---- the contexts (templates/email/README.md, "The co-signature") -----------------------------


def submission_context(asked: Asked) -> dict[str, Any]:
    return {
        "submission": {
            "version": asked.version,
            "received_at": asked.received_at,
            "updated": asked.updated,
            "sent_by": asked.sent_by,
            "summary": [{"label": r["label"], "value": r["value"]} for r in asked.summary],
        }
    }


def request_context(base: Mapping[str, Any], asked: Asked, attachment_name: str) -> dict[str, Any]:
    """``verneombud-request``: ``base`` is the unit's context (``Letters.unit_context``)."""
    return {**base, **submission_context(asked), "attachment_name": attachment_name}


def reminder_context(
    base: Mapping[str, Any], asked: Asked, attachment_name: str, asked_at: dt.datetime
) -> dict[str, Any]:
    """``verneombud-reminder``: the request's context and when the request went."""
    return request_context(base, asked, attachment_name) | {"cosign": {"asked_at": asked_at}}


def answer_context(base: Mapping[str, Any], asked: Asked, answer: Answer) -> dict[str, Any]:
    """``verneombud-ack``, ``leader-cosign-comment`` and ``coordinator-cosign-notice``."""
    return {
        **base,
        **submission_context(asked),
        "cosign": {
            "reading": answer.reading,
            "words": answer.words,
            "answered_at": answer.answered_at,
            "answered_by": answer.answered_by,
        },
    }


# ---- the mails --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignLetters:
    """The co-signature's mails for one campaign, through its ``Letters``."""

    letters: Letters

    def _verneombud(self, unit: Unit) -> Envelope:
        if not unit.verneombud_email:
            raise ValueError(f"unit {unit.code} has no verneombud address: it cannot be asked to confirm")
        return Envelope(to=(Mailbox(unit.verneombud_email, unit.verneombud_name),))

    def request(
        self, unit: Unit, asked: Asked, form: Attachment, *, now: dt.datetime, in_reply_to: str = ""
    ) -> NewMail:
        """Ask the unit's verneombud to confirm ``asked`` (the leader's file attached as ``form``):
        reply «Enig» / "Agree", or write what they see differently."""
        lang = unit.language
        ctx = request_context(self.letters.unit_context(unit, lang), asked, form.filename)
        return self.letters.mail(
            MailKind.VERNEOMBUD_REQUEST,
            f"{unit.code}:cosign-request:{asked.version}",
            lang,
            ctx,
            self._verneombud(unit),
            now=now,
            unit=unit,
            attachments=[form],
            in_reply_to=in_reply_to,
        )

    def reminder(
        self,
        unit: Unit,
        asked: Asked,
        form: Attachment,
        *,
        asked_at: dt.datetime,
        request_message_id: str,
        now: dt.datetime,
    ) -> NewMail:
        """The one reminder, threaded under the request (``request_message_id``)."""
        lang = unit.language
        ctx = reminder_context(self.letters.unit_context(unit, lang), asked, form.filename, asked_at)
        return self.letters.mail(
            MailKind.VERNEOMBUD_REMINDER,
            f"{unit.code}:cosign-reminder:{asked.version}",
            lang,
            ctx,
            self._verneombud(unit),
            now=now,
            unit=unit,
            attachments=[form],
            in_reply_to=request_message_id,
        )

    def ack(self, unit: Unit, asked: Asked, answer: Answer, reply: Reply, *, now: dt.datetime) -> NewMail:
        """To whoever answered (``reply``): their confirmation is registered, or their comment
        was passed on."""
        lang = unit.language
        return self.letters.mail(
            MailKind.VERNEOMBUD_ACK,
            reply.key,
            lang,
            answer_context(self.letters.unit_context(unit, lang), asked, answer),
            Envelope(to=(reply.to,)),
            now=now,
            unit=unit,
            in_reply_to=reply.in_reply_to,
        )

    def leader_comment(
        self, unit: Unit, asked: Asked, answer: Answer, *, key: str, now: dt.datetime, in_reply_to: str = ""
    ) -> NewMail:
        """To the leader, kindly: the verneombud has a comment, here it is, please talk with them."""
        lang = unit.language
        return self.letters.mail(
            MailKind.LEADER_COSIGN_COMMENT,
            key,
            lang,
            answer_context(self.letters.unit_context(unit, lang), asked, answer),
            Envelope(to=(Mailbox(unit.leader_email, unit.leader_name),)),
            now=now,
            unit=unit,
            in_reply_to=in_reply_to,
        )

    def coordinator_notice(
        self, unit: Unit, asked: Asked, answer: Answer, *, key: str, now: dt.datetime
    ) -> NewMail | None:
        """To the faculty's coordinator(s), for their information: the unit, both people and the
        words. None when the faculty has no coordinator."""
        coordinators = self.letters.config.coordinators_for(unit.faculty)
        if not coordinators:
            return None
        lang = self.letters.config.campaign.default_language
        return self.letters.mail(
            MailKind.COORDINATOR_COSIGN_NOTICE,
            key,
            lang,
            answer_context(self.letters.unit_context(unit, lang), asked, answer),
            Envelope(to=tuple(Mailbox(c.email, c.name) for c in coordinators)),
            now=now,
            unit=unit,
        )
