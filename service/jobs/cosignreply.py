"""A verneombud's answer to the request to confirm a form: which request it answers, what it says,
and what follows. ``jobs/decide`` asks ``CosignReplies.decide`` about every person's message
before it looks for a form; None means "not an answer to a co-signature request", and the
message goes the normal way.

Which request a message answers (docs/COSIGN.md):

1. its In-Reply-To or References name our request or reminder (``cosign_request_for``);
2. else it carries a unit's reference (subject or text) and comes from whoever was asked, or from
   an institution address that is not the other party (a colleague of the verneombud answering);
3. else it comes from the address asked, and that address was asked about one unit only.

A message that answers another mail of ours (a receipt, the invitation the verneombud was copied
on) is not an answer by 2 or 3: a question about the invitation is not a comment on the form.

What follows, by the reading (``mail/replyread.read_reply``):

- confirmed: recorded with the time; whoever answered gets the short acknowledgement;
- disputed: their words recorded verbatim; the acknowledgement; the leader is told kindly
  (``leader-cosign-comment``) and the faculty's coordinator(s) get one notice with the words;
- empty (only a quote, or only a greeting): a person reads it (review); nothing is answered.

A message that carries a form other than the one asked about is a new version (the normal path:
the verneombud may send for their unit), and the leader is then asked to confirm it
(``jobs/cosign``). The form we sent, attached back unchanged, is no new version: the text is read.
When the leader was the one asked (``to_leader``), their comment goes to the coordinator and no
``leader-cosign-comment`` goes. Machines never get anything: ``answerable.refusal`` is asked
first, as for every answer; a capped sender's answer is still recorded. After ``campaign.closes``
an answer is recorded and acknowledged, and nobody else is told.

The answer is recorded with the message's decision, in its transaction (``Decision.cosign_answer``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from service.campaign.plan import is_closed
from service.config.settings import Config
from service.errors import TokenError
from service.forms.answers import from_json, summary
from service.forms.model import FormDef
from service.jobs.match import Directory
from service.mail.answerable import NoAnswer, answer_address, refusal
from service.mail.classifier import Classification, spreadsheets
from service.mail.compose import Mailbox
from service.mail.cosignletters import Answer, Asked, CosignLetters
from service.mail.letters import Letters, Reply
from service.mail.parser import InboundMail
from service.mail.replyread import Reading, Verdict, read_reply
from service.models import CosignAnswer, Decision, MessageKind, NewMail, Unit
from service.store.cosign import CosignRequest, CosignVersion
from service.store.database import Store


@dataclass(frozen=True)
class Matched:
    """The request a message answers, and how that was found ("thread", "reference", "sender")."""

    request: CosignRequest
    how: str


class CosignReplies:
    """Reads answers to the co-signature's requests for one campaign (the ``Processor``'s part)."""

    def __init__(
        self, config: Config, form: FormDef, letters: Letters, store: Store, directory: Directory
    ) -> None:
        self.config, self.form, self.store, self.dir = config, form, store, directory
        self.mails = CosignLetters(letters)
        self.folders = config.imap.folders

    @property
    def campaign(self) -> str:
        return self.config.campaign.id

    def decide(
        self,
        mail: InboundMail,
        c: Classification,
        inbound_id: int,
        received_at: dt.datetime,
        now: dt.datetime,
    ) -> Decision | None:
        """The decision on a person's message that answers a co-signature request; None when it
        answers none (or carries a new form)."""
        if self.config.cosign.mode == "off":
            return None
        matched = self.match(mail, c)
        if matched is None:
            return None
        request = matched.request
        unit = self.dir.units.get(request.unit_code)
        version = self.store.cosign_version(self.campaign, request.unit_code, request.version)
        if unit is None or version is None:
            return None
        if _new_form(mail, version):
            return None  # a corrected form: a new version, through the normal submission path
        sender = mail.from_address.lower()
        detail: dict[str, Any] = {
            "sender": sender,
            "request": request.id,
            "version": request.version,
            "matched_by": matched.how,
        }
        why = self._not_theirs(sender, request, unit)
        if why:
            if matched.how != "thread":
                return None
            return self._review(unit, detail | {"why": why})
        newest = self.store.cosign_requests(self.campaign, unit.code)[-1]
        if newest.id != request.id:
            why = f"it answers the request about version {request.version}; version {newest.version} was asked about since"
            return self._review(unit, detail | {"why": why})
        no_answer = self._no_answer(mail, c, now)
        if no_answer is not None and no_answer.rule != "cap":
            return None  # not a person's answer (a no-reply address, a list…): the normal path
        by_leader = asked_leader(request, unit)
        reading = read_reply(mail, names=(unit.leader_name if by_leader else unit.verneombud_name,))
        detail |= {"reading": reading.verdict.value, "why_reading": reading.why}
        if reading.verdict is Verdict.EMPTY:
            return self._review(unit, detail | {"why": "an answer with nothing of their own to read"})
        answer = CosignAnswer(
            request_id=request.id,
            reading=reading.verdict.value,
            words=reading.words,
            answered_by=sender,
            answered_by_name=mail.from_name,
            at=received_at,
        )
        answers = (
            ()
            if no_answer is not None
            else self._answers(
                mail,
                unit,
                version=version,
                reading=reading,
                answer=answer,
                by_leader=by_leader,
                inbound_id=inbound_id,
                now=now,
            )
        )
        return Decision(
            MessageKind.COSIGN,
            f"cosign-{reading.verdict.value}" + ("-capped" if no_answer is not None else ""),
            self.folders.processed,
            unit.code,
            detail | ({"unanswered": no_answer.reason} if no_answer else {}),
            answers=answers,
            cosign_answer=answer,
        )

    # -- which request ------------------------------------------------------------------------

    def match(self, mail: InboundMail, c: Classification) -> Matched | None:
        """The request ``mail`` answers, if any (see the module docstring)."""
        ids = [m for m in (mail.in_reply_to, *mail.references) if m]
        named = self._units_named(c)
        if not self.store.cosign_may_answer(self.campaign, ids, mail.from_address, named):
            return None  # most messages: no request in their thread, to their sender or about their unit
        found = self.store.cosign_request_for(self.campaign, ids)
        if found is not None:
            return Matched(found, "thread")
        if mail.in_reply_to and self.store.outbox_message(mail.in_reply_to) is not None:
            return None  # an answer to another mail of ours (a receipt, the invitation)
        for code in named:
            requests = self.store.cosign_requests(self.campaign, code)
            if requests:
                return Matched(requests[-1], "reference")
        asked = self.store.cosign_requests_to(self.campaign, mail.from_address)
        if len({r.unit_code for r in asked}) == 1:
            return Matched(asked[0], "sender")
        return None

    def _units_named(self, c: Classification) -> list[str]:
        codes = []
        for ref in c.references:
            try:
                code = self.dir.unit_of_reference(ref)
            except TokenError:
                continue
            if code and code not in codes:
                codes.append(code)
        return codes

    def _not_theirs(self, sender: str, request: CosignRequest, unit: Unit) -> str:
        """Why ``sender`` cannot answer ``request`` ("" when they can): the person asked, or
        someone else in the institution, but never the other party (the one whose version it is)."""
        if sender == request.asked_to:
            return ""
        to_leader = request.asked_to == unit.leader_email.lower()
        other = unit.verneombud_email if to_leader else unit.leader_email
        if sender == other.lower():
            return f"{sender} answered the request to {request.asked_to} about their own version"
        if sender.rpartition("@")[2] not in self.config.campaign.institution_domains:
            return f"{sender} was not asked and is not in the institution's domains"
        return ""

    def _no_answer(self, mail: InboundMail, c: Classification, now: dt.datetime) -> NoAnswer | None:
        since = now - dt.timedelta(hours=1)
        return refusal(
            mail,
            c,
            sent_last_hour=lambda address: self.store.sent_to_since(self.campaign, address, since),
            per_hour=self.config.mail.max_per_address_per_hour,
        )

    # -- what follows -------------------------------------------------------------------------

    def _answers(
        self,
        mail: InboundMail,
        unit: Unit,
        *,
        version: CosignVersion,
        reading: Reading,
        answer: CosignAnswer,
        by_leader: bool,
        inbound_id: int,
        now: dt.datetime,
    ) -> tuple[NewMail, ...]:
        """The acknowledgement; for a comment, the leader's mail and the coordinator's notice."""
        asked = asked_about(self.form, version, unit)
        who = f"{mail.from_name} ({answer.answered_by})" if mail.from_name else answer.answered_by
        told = Answer(reading.verdict.value, reading.words, answer.at, who, by_leader=by_leader)
        reply = Reply(
            Mailbox(answer_address(mail), mail.from_name),
            f"inbound{inbound_id}:{unit.code}:cosign-ack",
            mail.message_id,
        )
        out = [self.mails.ack(unit, asked, told, reply, now=now)]
        if reading.verdict is not Verdict.DISPUTED or is_closed(now, self.config.campaign):
            return tuple(out)  # after the closing, nobody else is told any more
        if not by_leader:
            out.append(
                self.mails.leader_comment(
                    unit,
                    asked,
                    told,
                    key=f"{unit.code}:cosign-comment:inbound{inbound_id}",
                    now=now,
                    in_reply_to=version.message_id
                    if version.sender.lower() == unit.leader_email.lower()
                    else "",
                )
            )
        notice = self.mails.coordinator_notice(
            unit, asked, told, key=f"{unit.code}:cosign-notice:inbound{inbound_id}", now=now
        )
        if notice is not None:
            out.append(notice)
        return tuple(out)

    def _review(self, unit: Unit, detail: dict[str, Any]) -> Decision:
        """For a person to read: nothing is answered, nothing recorded."""
        return Decision(MessageKind.COSIGN, "review", self.folders.review, unit.code, detail)


def asked_leader(request: CosignRequest, unit: Unit) -> bool:
    """``request`` went to the unit's leader (``to_leader``: the verneombud sent the version),
    not to its verneombud."""
    return request.asked_to == unit.leader_email.lower() != unit.verneombud_email.lower()


def asked_about(form: FormDef, version: CosignVersion, unit: Unit, *, updated: bool = False) -> Asked:
    """The version a request is about as the mails show it: the answers read back in the unit's
    language (as the leader's receipt shows them), and who sent it when that was neither the
    leader nor the verneombud (a deputy)."""
    own = {unit.leader_email.lower(), unit.verneombud_email.lower()} - {""}
    return Asked(
        version=version.version,
        received_at=version.received_at,
        summary=summary(form, from_json(form, version.answers), unit.language),
        updated=updated,
        sent_by="" if version.sender.lower() in own else version.sender,
    )


def _new_form(mail: InboundMail, version: CosignVersion) -> bool:
    """``mail`` carries a spreadsheet other than the file of the version asked about."""
    return any(hashlib.sha256(att.data).hexdigest() != version.file_sha256 for att in spreadsheets(mail))
