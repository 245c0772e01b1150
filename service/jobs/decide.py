"""Deciding what one inbound message is and what to do about it. No I/O of its own: the store
is read for facts (a unit's earlier forms, our own sent mail) and the decision goes back as one
``Decision`` that the poller commits in one transaction, then acts on (moves the message).

Exact signals first (DESIGN.md, "Mail"): the token inside the attachment, then the reference in
the subject or body, then the sender's address. A machine is never answered: every answer to the
sender passes ``mail/answerable.refusal`` first (``_no_answer``), the one place that rule lives.
Anything that cannot be matched with confidence goes to a person ("needs review"), never silently
dropped and never silently accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from service.config.settings import Config, ImapFolders
from service.errors import FormReadError, TokenError
from service.forms.answers import flags_for, problem_rows, raised_flags, summary, to_json
from service.forms.intake import Converter, Limits, Rejection, open_attachment
from service.forms.model import FormDef, FormReading
from service.forms.read import read_form
from service.forms.validate import validate
from service.jobs.cosignreply import CosignReplies
from service.jobs.match import Directory, match_form
from service.jobs.notices import challenge_answers, challenge_lines, notices
from service.mail.answerable import NoAnswer, answer_address, refusal
from service.mail.classifier import Classification, classify, is_machine, spreadsheets
from service.mail.compose import Attachment, Mailbox
from service.mail.letters import Letters, Reply
from service.mail.parser import AttachmentFile, InboundMail
from service.models import Decision, MessageKind, NewMail, NewSubmission
from service.store.database import Store


@dataclass
class _Found:
    """One form found in a reply, and what we learned about it."""

    attachment: AttachmentFile
    reading: FormReading | None = None
    unit: str | None = None
    how: str = ""
    trouble: str = ""  # why it cannot be accepted as it is
    rejection: Rejection | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Processor:
    def __init__(
        self,
        config: Config,
        form: FormDef,
        letters: Letters,
        store: Store,
        directory: Directory,
        *,
        converter: Converter | None = None,
    ) -> None:
        self.config, self.form, self.letters, self.store = config, form, letters, store
        self.dir = directory
        self.folders: ImapFolders = config.imap.folders
        i = config.inbox
        self.limits = Limits(
            max_attachment_bytes=i.max_attachment_mb * 1_000_000,
            max_unpacked_bytes=i.max_unpacked_mb * 1_000_000,
            max_rows=i.max_rows,
        )
        self.converter = converter
        self.cosign = CosignReplies(config, form, letters, store, directory)

    @property
    def campaign(self) -> str:
        return self.config.campaign.id

    def decide(
        self,
        mail: InboundMail,
        inbound_id: int,
        received_at: dt.datetime,
        now: dt.datetime,
        force_unit: str | None = None,
    ) -> Decision:
        """What ``mail`` is and what follows from it. ``force_unit``: a person assigned it."""
        c = classify(mail)
        if is_machine(c):
            return self._machine(mail, c)  # recorded, never answered (``answerable`` says so too)
        if force_unit is None and (cosign := self.cosign.decide(mail, c, inbound_id, received_at, now)):
            return cosign  # a verneombud's answer to the request to confirm the form (docs/COSIGN.md)
        return self._person(mail, c, inbound_id, received_at, now, force_unit=force_unit)

    # -- machines ---------------------------------------------------------------------------

    def _machine(self, mail: InboundMail, c: Classification) -> Decision:
        f = self.folders
        if c.kind == "own":
            return Decision(MessageKind.OWN, "sent-copy", f.sent or f.processed)
        unit = self._unit_of_our_mail(c.original_message_id or mail.in_reply_to)
        if c.kind == "bounce":
            failed = tuple(a.lower() for a in c.failed_recipients)
            unit = unit or next((self.dir.by_address[a][0] for a in failed if a in self.dir.by_address), None)
            reason = c.diagnostic or ", ".join(c.status) or c.reason
            return Decision(
                MessageKind.BOUNCE,
                "bounce-recorded",
                f.processed,
                unit,
                {"failed": list(failed), "reason": reason, "signal": c.reason},
                failing_addresses=tuple((a, reason) for a in failed),
                bounced_message_id=c.original_message_id,
            )
        if c.kind == "delay":
            return Decision(
                MessageKind.DELAY,
                "delay-noted",
                f.ignored,
                unit,
                {"recipients": list(c.failed_recipients), "signal": c.reason},
            )
        if c.kind is MessageKind.AUTO_REPLY:
            sender = mail.from_address
            unit = unit or next(iter(self.dir.by_address.get(sender, [])), None)
            return Decision(
                MessageKind.AUTO_REPLY,
                "auto-reply-noted",
                f.ignored,
                unit,
                {
                    "address": sender,
                    "signal": c.reason,
                    "returns_on": c.returns_on.isoformat() if c.returns_on else None,
                },
            )
        return Decision(c.kind, "ignored", f.ignored, unit, {"signal": c.reason})

    def _unit_of_our_mail(self, message_id: str) -> str | None:
        found = self.store.outbox_message(message_id) if message_id else None
        return found[1] if found else None

    # -- people -----------------------------------------------------------------------------

    def _person(
        self,
        mail: InboundMail,
        c: Classification,
        inbound_id: int,
        received_at: dt.datetime,
        now: dt.datetime,
        *,
        force_unit: str | None,
    ) -> Decision:
        sender = mail.from_address
        found = [self._open(att) for att in spreadsheets(mail)]
        forms = [x for x in found if x.reading is not None]
        thread_unit = force_unit or self._unit_from_text(c) or self._unit_from_sender(sender)
        for x in forms:
            self._match(x, sender, thread_unit, force_unit)
        detail: dict[str, Any] = {"sender": sender, "forms": [_describe(x) for x in found]}
        if not forms:
            rejected = [x for x in found if x.rejection is not None]
            if rejected and thread_unit and self._speaks_for(sender, thread_unit):
                return self._rejected(
                    mail,
                    rejected,
                    thread_unit,
                    inbound_id=inbound_id,
                    received_at=received_at,
                    now=now,
                    detail=detail,
                    no_answer=self._no_answer(mail, c, now),
                )
            kind = MessageKind.SUBMISSION if found else MessageKind.QUESTION
            why = "no readable form" if found else "a message without a form"
            if thread_unit is None and sender not in self.dir.by_address:
                return Decision(
                    MessageKind.UNKNOWN,
                    "review",
                    self.folders.review,
                    None,
                    detail | {"why": f"{why}, from an unknown sender"},
                )
            return Decision(kind, "review", self.folders.review, thread_unit, detail | {"why": why})
        _one_form_per_unit(forms)
        troubled = [x for x in forms if x.trouble]
        if troubled:
            return Decision(
                MessageKind.SUBMISSION,
                "review",
                self.folders.review,
                troubled[0].unit or thread_unit,
                detail | {"why": "; ".join(x.trouble for x in troubled)},
            )
        no_answer = self._no_answer(mail, c, now)
        subs, answers, told = [], [], []
        for x in forms:
            sub, answer = self._submission(
                mail, x, inbound_id, received_at=received_at, now=now, no_answer=no_answer
            )
            subs.append(sub)
            if answer is not None:
                answers.append(answer)
            if sub.valid:
                told += self._notices(sub, received_at, now)
        outcome = "receipt" if all(s.valid for s in subs) else "correction"
        answers += told
        return Decision(
            MessageKind.SUBMISSION,
            outcome + _suffix(no_answer),
            self.folders.processed,
            subs[0].unit_code,
            detail | {"units": [s.unit_code for s in subs]} | _unanswered(no_answer),
            submissions=tuple(subs),
            answers=tuple(answers),
        )

    def _open(self, att: AttachmentFile) -> _Found:
        x = _Found(att)
        opened = open_attachment(
            att.filename, att.content_type, att.data, self.limits, converter=self.converter
        )
        if isinstance(opened, Rejection):
            x.rejection = opened
            return x
        try:
            x.reading = read_form(opened.xlsx, self.form, workbook=opened.workbook)
        except FormReadError as exc:
            x.rejection = Rejection(exc.code, _NOT_OUR_FORM["nb"], _NOT_OUR_FORM["en"])
        return x

    def _unit_from_text(self, c: Classification) -> str | None:
        for ref in c.references:
            try:
                code = self.dir.unit_of_reference(ref)
            except TokenError:
                continue
            if code:
                return code
        return None

    def _unit_from_sender(self, sender: str) -> str | None:
        codes = self.dir.by_address.get(sender, [])
        if len(codes) == 1:
            return codes[0]
        return self.dir.former_leaders.get(sender) if not codes else None

    def _match(self, x: _Found, sender: str, thread_unit: str | None, force_unit: str | None) -> None:
        """Find the form's unit (stamp, then its reference, then the thread) and judge the sender."""
        r = x.reading
        assert r is not None
        if force_unit:
            x.unit, x.how = force_unit, "assigned by a person"
            return
        found = match_form(r, self.dir)
        if found.trouble and found.how:
            x.trouble = found.trouble
            return
        if found.unit is not None:
            x.unit, x.how = found.unit, found.how
        else:  # neither stamp nor reference in the form: the thread tells
            x.unit, x.how = thread_unit, "subject, body or sender"
        if x.unit is None or x.unit not in self.dir.units:
            x.trouble = "the form matches no unit"
            x.unit = None
            return
        if self.dir.may_send_for(sender, x.unit):
            return
        if sender in self.dir.by_address or sender in self.dir.former_leaders:
            # a known person of another unit: most likely the wrong file attached
            x.trouble = f"{sender} sent the form of {x.unit}, which is not their unit"
        elif _domain(sender) in self.config.campaign.institution_domains:
            x.details["sent_by"] = sender  # a deputy or assistant in the institution
        else:
            x.trouble = f"{sender} is not known and not in the institution's domains"

    def _speaks_for(self, sender: str, code: str) -> bool:
        """Whether ``sender`` is someone to tell why the unit's files could not be read."""
        return (
            self.dir.may_send_for(sender, code) or _domain(sender) in self.config.campaign.institution_domains
        )

    def _no_answer(self, mail: InboundMail, c: Classification, now: dt.datetime) -> NoAnswer | None:
        """Why ``mail``'s sender gets no answer (``answerable.refusal``), or None. The loop guard
        counts what went to the address in the hour before ``now``."""
        since = now - dt.timedelta(hours=1)
        return refusal(
            mail,
            c,
            sent_last_hour=lambda address: self.store.sent_to_since(self.campaign, address, since),
            per_hour=self.config.mail.max_per_address_per_hour,
        )

    def _notices(self, sub: NewSubmission, received_at: dt.datetime, now: dt.datetime) -> list[NewMail]:
        """Who else hears of a valid form at once (``notices``): the superior leader and the
        coordinator of a unit with special challenges, and whoever it asks for help. Compared with
        the unit's previous valid version, so the same answers are told once."""
        before = self.store.current_submission(self.campaign, sub.unit_code)
        return notices(
            self.config,
            self.form,
            self.letters,
            self.dir.units[sub.unit_code],
            answers=sub.answers,
            before=before["answers"] if before else None,
            received_at=received_at,
            now=now,
        )

    def _submission(
        self,
        mail: InboundMail,
        x: _Found,
        inbound_id: int,
        *,
        received_at: dt.datetime,
        now: dt.datetime,
        no_answer: NoAnswer | None,
    ) -> tuple[NewSubmission, NewMail | None]:
        assert x.reading is not None and x.unit is not None
        unit = self.dir.units[x.unit]
        lang = unit.language
        problems = validate(self.form, x.reading, lang)
        valid = not problems
        flags = raised_flags(self.form, x.reading.answers) if valid else []
        sub = NewSubmission(
            unit.code,
            received_at,
            mail.from_address,
            valid,
            to_json(x.reading.answers),
            tuple(problem_rows(self.form, x.reading, problems, lang)),
            tuple(flags),
            x.attachment.filename,
            hashlib.sha256(x.attachment.data).hexdigest(),
            sent_by=x.details.get("sent_by", ""),
        )
        if no_answer is not None:
            return sub, None
        to = Mailbox(answer_address(mail), mail.from_name)
        reply = Reply(
            to, f"inbound{inbound_id}:{unit.code}:{'receipt' if valid else 'correction'}", mail.message_id
        )
        if valid:
            history = self.store.unit_history(self.campaign, unit.code)
            challenges = challenge_answers(self.form, sub.answers)
            # told at once by a notice (``notices``) when there is anyone to tell
            shared = self.config.notices.special_challenges and bool(
                self.letters.superior_and_coordinators(unit)
            )
            answer = self.letters.receipt(
                unit,
                reply,
                {
                    "version": history.versions + 1,
                    "updated": history.has_valid,
                    "received_at": received_at,
                    "sent_by": f"{mail.from_name} ({mail.from_address})".strip() if sub.sent_by else "",
                    "summary": summary(self.form, x.reading.answers, lang),
                    "flags": flags_for(flags, lang),
                    "challenges": challenge_lines(self.form, challenges, lang),
                    "challenges_shared": shared and bool(challenges),
                },
                now,
            )
        else:
            answer = self.letters.correction(
                unit,
                reply,
                problem_rows(self.form, x.reading, problems, lang),
                received_at=received_at,
                attachment=Attachment(x.attachment.filename, x.attachment.data),
                now=now,
            )
        return sub, answer

    def _rejected(
        self,
        mail: InboundMail,
        rejected: list[_Found],
        code: str,
        *,
        inbound_id: int,
        received_at: dt.datetime,
        now: dt.datetime,
        detail: dict[str, Any],
        no_answer: NoAnswer | None,
    ) -> Decision:
        """Files we cannot read: tell the sender what to do, with a fresh form attached."""
        unit = self.dir.units[code]
        lang = unit.language
        problems = [
            {
                "label": x.attachment.filename,
                "cell": "",
                "message": x.rejection.message_nb if lang == "nb" else x.rejection.message_en,
            }
            for x in rejected
            if x.rejection is not None
        ]
        to = Mailbox(answer_address(mail), mail.from_name)
        answers: tuple[NewMail, ...] = ()
        if no_answer is None:
            answers = (
                self.letters.correction(
                    unit,
                    Reply(to, f"inbound{inbound_id}:{code}:rejected", mail.message_id),
                    problems,
                    received_at=received_at,
                    attachment=None,
                    now=now,
                ),
            )
        return Decision(
            MessageKind.SUBMISSION,
            "rejected" + _suffix(no_answer),
            self.folders.processed,
            code,
            detail | {"codes": [x.rejection.code for x in rejected if x.rejection]} | _unanswered(no_answer),
            answers=answers,
        )


_NOT_OUR_FORM = {
    "nb": "Filen er ikke skjemaet «Oppsummering og evaluering» slik vi sendte det. Bruk skjemaet "
    "som er vedlagt denne e-posten, og send det tilbake utfylt.",
    "en": "The file is not the form «Oppsummering og evaluering» as we sent it. Please use the form "
    "attached to this email and send it back filled in.",
}


def _one_form_per_unit(forms: list[_Found]) -> None:
    """The same file attached twice counts once; two different files for one unit are a
    question for a person (which one is meant?)."""
    first: dict[str, _Found] = {}
    for x in list(forms):
        if x.unit is None or x.trouble:
            continue
        earlier = first.setdefault(x.unit, x)
        if earlier is x:
            continue
        if earlier.attachment.data == x.attachment.data:
            forms.remove(x)
        else:
            x.trouble = f"two different forms for {x.unit} in one message"


def _suffix(no_answer: NoAnswer | None) -> str:
    """What an outcome adds when its answer was withheld: "-capped" for the hourly cap, else
    "-unanswered" (the reason stands in the detail)."""
    if no_answer is None:
        return ""
    return "-capped" if no_answer.rule == "cap" else "-unanswered"


def _unanswered(no_answer: NoAnswer | None) -> dict[str, Any]:
    return {"unanswered": no_answer.reason} if no_answer else {}


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _describe(x: _Found) -> dict[str, Any]:
    out: dict[str, Any] = {"file": x.attachment.filename, "origin": x.attachment.origin}
    if x.unit:
        out["unit"], out["matched_by"] = x.unit, x.how
    if x.rejection:
        out["rejected"] = x.rejection.code
    if x.trouble:
        out["trouble"] = x.trouble
    return out | x.details
