"""The co-signature's mails: the verneombud is asked to confirm a valid form, reminded once, and
thanked; a comment goes to the leader (kindly) and to the coordinator (for their information).

The form is filled in by the leader *i samråd med verneombud* (the letter). ``CosignLetters`` turns
"ask this unit's verneombud about version 2" into a ``NewMail`` for the outbox, through
``Letters`` (the unit's context, the reference, the exact bytes); the ``*_context`` functions are
the templates' contexts, built from plain values, so the golden renderings and the service build
them the same way. Pure: the time and all data come in as arguments.

| kind | to | language | dedupe key (less "campaign:") |
| --- | --- | --- | --- |
| ``verneombud-request`` | the verneombud (the leader: ``to_leader``) | the unit's | ``UNIT:cosign-request:VERSION`` |
| ``verneombud-reminder`` | whoever was asked, threaded under the request | the unit's | ``UNIT:cosign-reminder:VERSION`` |
| ``verneombud-ack`` | whoever answered, threaded under their reply | the unit's | the caller's ``Reply.key`` |
| ``leader-cosign-comment`` | the leader | the unit's | the caller's ``key`` |
| ``coordinator-cosign-notice`` | the faculty's coordinator(s) | the campaign's default | the caller's ``key`` |

The request and the reminder are not marked ``Auto-Submitted`` (an out-of-office reply tells us
the verneombud is away); the other three answer or inform and are machine mail
(``COSIGN_MACHINE_KINDS``, all in ``letters.MACHINE_KINDS``).

When the verneombud sent the valid version themselves (a corrected form attached to their
answer), the *leader* is the one asked to confirm it: the request and the reminder ``to_leader``
(their own wording), and the leader's answer is ``Answer.by_leader``: its acknowledgement and the
coordinator's notice say so, and no ``leader-cosign-comment`` goes (the leader wrote it).
With ``[cosign] mode = "required"`` the reminder to the verneombud copies the leader
(``copy_leader``): the unit is done only once they confirmed.
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
    by_leader: bool = False  # the leader answered a request ``to_leader``


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


def request_context(
    base: Mapping[str, Any], asked: Asked, attachment_name: str, *, to_leader: bool = False
) -> dict[str, Any]:
    """``verneombud-request``: ``base`` is the unit's context (``Letters.unit_context``);
    ``to_leader``: the leader is asked (the verneombud sent this version)."""
    return {**base, **submission_context(asked), "attachment_name": attachment_name, "to_leader": to_leader}


def reminder_context(
    base: Mapping[str, Any],
    asked: Asked,
    attachment_name: str,
    asked_at: dt.datetime,
    *,
    to_leader: bool = False,
    leader_copied: bool = False,
) -> dict[str, Any]:
    """``verneombud-reminder``: the request's context, when the request went, and whether the
    leader reads a copy (``leader_copied``: [cosign] mode "required")."""
    return request_context(base, asked, attachment_name, to_leader=to_leader) | {
        "cosign": {"asked_at": asked_at},
        "leader_copied": leader_copied,
    }


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
            "by_leader": answer.by_leader,
        },
    }


# ---- the mails --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CosignLetters:
    """The co-signature's mails for one campaign, through its ``Letters``."""

    letters: Letters

    def _asked(self, unit: Unit, *, to_leader: bool, copy_leader: bool = False) -> Envelope:
        """Who is asked: the verneombud (the leader copied with ``copy_leader``), or the leader."""
        leader = Mailbox(unit.leader_email, unit.leader_name)
        if to_leader:
            return Envelope(to=(leader,))
        if not unit.verneombud_email:
            raise ValueError(f"unit {unit.code} has no verneombud address: it cannot be asked to confirm")
        return Envelope(
            to=(Mailbox(unit.verneombud_email, unit.verneombud_name),), cc=(leader,) if copy_leader else ()
        )

    def request(
        self,
        unit: Unit,
        asked: Asked,
        form: Attachment,
        *,
        now: dt.datetime,
        in_reply_to: str = "",
        to_leader: bool = False,
    ) -> NewMail:
        """Ask the unit's verneombud to confirm ``asked`` (the file attached as ``form``): reply
        «Enig» / "Agree", or write what they see differently. ``to_leader``: ask the leader
        instead, about a version the verneombud sent."""
        lang = unit.language
        ctx = request_context(
            self.letters.unit_context(unit, lang), asked, form.filename, to_leader=to_leader
        )
        return self.letters.mail(
            MailKind.VERNEOMBUD_REQUEST,
            f"{unit.code}:cosign-request:{asked.version}",
            lang,
            ctx,
            self._asked(unit, to_leader=to_leader),
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
        to_leader: bool = False,
        copy_leader: bool = False,
    ) -> NewMail:
        """The one reminder to whoever was asked, threaded under the request
        (``request_message_id``); ``copy_leader``: the leader reads a copy (mode "required")."""
        lang = unit.language
        copied = copy_leader and not to_leader
        ctx = reminder_context(
            self.letters.unit_context(unit, lang),
            asked,
            form.filename,
            asked_at,
            to_leader=to_leader,
            leader_copied=copied,
        )
        return self.letters.mail(
            MailKind.VERNEOMBUD_REMINDER,
            f"{unit.code}:cosign-reminder:{asked.version}",
            lang,
            ctx,
            self._asked(unit, to_leader=to_leader, copy_leader=copied),
            now=now,
            unit=unit,
            attachments=[form],
            in_reply_to=request_message_id,
        )

    def ack(self, unit: Unit, asked: Asked, answer: Answer, reply: Reply, *, now: dt.datetime) -> NewMail:
        """To whoever answered (``reply``): their confirmation is registered, or their comment
        was passed on."""
        ctx = answer_context(self.letters.unit_context(unit, unit.language), asked, answer)
        return self.letters.answer(MailKind.VERNEOMBUD_ACK, reply, unit, ctx, now=now)

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
