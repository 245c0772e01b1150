"""Every mail skjemapost sends, as a value: who gets it, what it says, and its exact bytes.

``Letters`` knows the campaign (config, form definition, templates, the token secret) and turns
"unit X is due its invitation" into a ``NewMail`` ready for the outbox. Pure: the time and all
data come in as arguments, so a campaign replayed with ``--as-of`` writes what it would have.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from service.campaign.plan import is_closed
from service.campaign.state import UnitState
from service.clock import local
from service.config.settings import Config
from service.forms.build import build_form
from service.forms.model import FormDef
from service.mail import tokens
from service.mail.compose import Attachment, Envelope, Headers, Mailbox, compose
from service.mail.msgid import make_message_id
from service.mail.render import Renderer
from service.models import Language, NewMail, Unit

# Machine mail (RFC 3834 Auto-Submitted); outreach is not, unless configured: the service wants
# the out-of-office replies to invitations and reminders, to learn who is away.
MACHINE_KINDS = frozenset(
    {
        "leader-receipt",
        "leader-correction",
        "coordinator-digest",
        "hr-digest",
        "challenges-notice",
        "help-notice",
        "observer-digest",
        "hr-final",
        "leader-after-closing",
        # the co-signature's answers and notices; its request and reminder are outreach
        # (mail/cosignletters.py: COSIGN_MACHINE_KINDS)
        "verneombud-ack",
        "leader-cosign-comment",
        "coordinator-cosign-notice",
    }
)


@dataclass(frozen=True)
class Reply:
    """Where an answer to an inbound message goes: its sender, the outbox key, the thread."""

    to: Mailbox
    key: str
    in_reply_to: str = ""


@dataclass(frozen=True)
class Letters:
    config: Config
    form: FormDef
    renderer: Renderer
    secret: bytes

    # -- pieces ---------------------------------------------------------------------------------

    @property
    def campaign_id(self) -> str:
        return self.config.campaign.id

    def reference(self, unit: Unit) -> str:
        return tokens.reference(self.secret, self.campaign_id, unit.code)

    def attachment_name(self, unit: Unit, lang: Language) -> str:
        return f"{self.form.title.get(lang)} – {unit.code}.xlsx"

    def form_for(self, unit: Unit, lang: Language) -> Attachment:
        data = build_form(
            self.form,
            unit,
            lang=lang,
            reference=self.reference(unit),
            stamp=tokens.stamp(self.secret, self.campaign_id, unit.code),
            campaign_title=self.config.campaign.title_for(lang),
            deadline=self.config.campaign.deadline,
        )
        return Attachment(self.attachment_name(unit, lang), data)

    def base_context(self, lang: Language | None = None) -> dict[str, Any]:
        """What every kind is given: the campaign and the sender, their names in ``lang`` (the
        mail's language; the campaign's default language when not given)."""
        c, m = self.config.campaign, self.config.mail
        lang = lang or c.default_language
        return {
            "campaign": {
                "id": c.id,
                "title": c.title_for(lang),
                "opens": c.opens,
                "deadline": c.deadline,
                "guidance_url": c.guidance_url,
            },
            "sender": {"name": m.from_name_for(lang), "address": m.inbox_address},
        }

    def unit_context(self, unit: Unit, lang: Language) -> dict[str, Any]:
        return self.base_context(lang) | {
            "unit": unit_mapping(unit),
            "reference": self.reference(unit),
            "coordinators": [
                {"name": co.name, "email": co.email} for co in self.config.coordinators_for(unit.faculty)
            ],
            "attachment_name": self.attachment_name(unit, lang),
        }

    def reply_to(self, unit: Unit | None) -> str:
        address = self.config.mail.inbox_address
        if unit is None or not self.config.mail.reply_to_plus_token:
            return address
        local, _, domain = address.partition("@")
        return f"{local}+{self.reference(unit)}@{domain}"

    def answer(
        self,
        kind: str,
        reply: Reply,
        unit: Unit,
        context: Mapping[str, Any],
        *,
        now: dt.datetime,
        attachments: Sequence[Attachment] = (),
    ) -> NewMail:
        """``kind`` as the answer to a person's message (``reply``): to them alone, in their
        unit's language, threaded under what they sent."""
        return self.mail(
            kind,
            reply.key,
            unit.language,
            context,
            Envelope(to=(reply.to,)),
            now=now,
            unit=unit,
            attachments=attachments,
            in_reply_to=reply.in_reply_to,
        )

    def mail(
        self,
        kind: str,
        key: str,
        lang: Language,
        context: Mapping[str, Any],
        envelope: Envelope,
        *,
        now: dt.datetime,
        unit: Unit | None = None,
        attachments: Sequence[Attachment] = (),
        in_reply_to: str = "",
    ) -> NewMail:
        """Render ``kind`` and compose it into a NewMail with dedupe key ``campaign:key``."""
        m = self.config.mail
        rendered = self.renderer.render(kind, lang, context)
        message_id = make_message_id(m.from_address.rpartition("@")[2])
        headers = Headers(
            sender=Mailbox(m.from_address, m.from_name_for(lang)),  # the name the mail is signed with
            message_id=message_id,
            date=now,
            reply_to=self.reply_to(unit),
            auto_submitted=kind in MACHINE_KINDS or m.auto_submitted_on_outreach,
            # answers thread under the leader's own reply in every mail client
            extra=(("In-Reply-To", in_reply_to), ("References", in_reply_to)) if in_reply_to else (),
        )
        raw = compose(rendered, envelope, headers, attachments)
        return NewMail(
            kind,
            unit.code if unit else None,
            f"{self.campaign_id}:{key}",
            message_id,
            envelope.recipients,
            rendered.subject,
            raw,
        )

    def superior_and_coordinators(self, unit: Unit) -> list[Mailbox]:
        """Who hears of a unit beyond its leader: its superior leader, then its coordinators."""
        to = [Mailbox(co.email, co.name) for co in self.config.coordinators_for(unit.faculty)]
        return [Mailbox(unit.superior_email), *to] if unit.superior_email else to

    def copies_verneombud(self, unit: Unit) -> bool:
        """Invitations and reminders copy the unit's verneombud (``mail.cc_verneombud``, when the
        roster has their address): the form is filled in by the leader i samråd med verneombud."""
        return self.config.mail.cc_verneombud and bool(unit.verneombud_email)

    def leader_envelope(self, unit: Unit) -> Envelope:
        cc: tuple[Mailbox, ...] = ()
        if self.copies_verneombud(unit):
            cc = (Mailbox(unit.verneombud_email, unit.verneombud_name),)
        return Envelope(to=(Mailbox(unit.leader_email, unit.leader_name),), cc=cc)

    def cosign_asked(self, unit: Unit, sender: str) -> str:
        """Who is asked to confirm a valid form that ``sender`` sent ([cosign], docs/COSIGN.md):
        "verneombud"; "leader" when the verneombud sent it; "" when nobody is (the co-signature
        is off, or the roster has no verneombud address). The receipt says so."""
        if self.config.cosign.mode == "off" or not unit.verneombud_email:
            return ""
        return "leader" if sender.lower() == unit.verneombud_email.lower() else "verneombud"

    def leader_context(self, unit: Unit, lang: Language) -> dict[str, Any]:
        """``unit_context`` for the mails ``leader_envelope`` addresses: they say so when the
        verneombud reads a copy."""
        return self.unit_context(unit, lang) | {"verneombud_copied": self.copies_verneombud(unit)}

    # -- the mails to a unit's leader ---------------------------------------------------------

    def invitation(self, unit: Unit, now: dt.datetime) -> NewMail:
        lang = unit.language
        return self.mail(
            "leader-invitation",
            f"{unit.code}:invitation",
            lang,
            self.leader_context(unit, lang),
            self.leader_envelope(unit),
            now=now,
            unit=unit,
            attachments=[self.form_for(unit, lang)],
        )

    def reminder_before(
        self, unit: Unit, number: int, days_left: int, invited_on: dt.date, now: dt.datetime
    ) -> NewMail:
        lang = unit.language
        ctx = self.leader_context(unit, lang) | {
            "days_left": days_left,
            "reminder_number": number,
            "invited_on": invited_on,
        }
        return self.mail(
            "leader-reminder-before",
            f"{unit.code}:reminder-before:{number}",
            lang,
            ctx,
            self.leader_envelope(unit),
            now=now,
            unit=unit,
            attachments=[self.form_for(unit, lang)],
        )

    def reminder_after(self, unit: Unit, days_overdue: int, now: dt.datetime) -> NewMail:
        lang = unit.language
        ctx = self.leader_context(unit, lang) | {"days_overdue": days_overdue}
        return self.mail(
            "leader-reminder-after",
            f"{unit.code}:reminder-after",
            lang,
            ctx,
            self.leader_envelope(unit),
            now=now,
            unit=unit,
            attachments=[self.form_for(unit, lang)],
        )

    def reminder_correction(
        self,
        unit: Unit,
        state: UnitState,
        step: str,
        *,
        days_left: int,
        own: Attachment | None,
        now: dt.datetime,
    ) -> NewMail:
        """A reminder to a unit whose form came in with mistakes: never "not received". It says
        when the form came, lists what is still to fix, and sends the leader's own filled copy
        back (a fresh form only if that copy cannot be found)."""
        lang = unit.language
        att = own or self.form_for(unit, lang)
        tz = self.config.campaign.timezone
        ctx = self.leader_context(unit, lang) | {
            "received_on": local(state.received_on or now, tz).date(),
            "problems": [asdict(p) for p in state.problems],
            "days_left": days_left,
            "attachment_name": att.filename,
            "answers_kept": own is not None,
        }
        return self.mail(
            "leader-reminder-correction",
            f"{unit.code}:{step}",
            lang,
            ctx,
            self.leader_envelope(unit),
            now=now,
            unit=unit,
            attachments=[att],
        )

    def escalation(self, unit: Unit, state: UnitState, days_overdue: int, now: dt.datetime) -> NewMail:
        """To the superior leader and the coordinators (the verneombud copied): where the unit
        stands, in their words, with every mail its leader was sent. In the institution's language
        (the campaign's default): these readers are not the leader."""
        lang = self.config.campaign.default_language
        tz = self.config.campaign.timezone
        to = self.superior_and_coordinators(unit)
        cc = (Mailbox(unit.verneombud_email, unit.verneombud_name),) if unit.verneombud_email else ()
        failure = state.failure
        ctx = self.unit_context(unit, lang) | {
            "days_overdue": days_overdue,
            "stage": state.stage.value,
            "has_superior": bool(unit.superior_email),
            "received_on": local(state.received_on, tz).date() if state.received_on else None,
            "problems": [asdict(p) for p in state.problems],
            "failure": {
                "address": failure.address,
                "reason": failure.reason,
                "since": local(failure.since, tz).date(),
            }
            if failure
            else None,
            "back_on": state.back_on,
            "mails": [
                {"day": local(o.at, tz).date(), "what": o.what, "bounced": o.bounced}
                for o in state.outreach
                if o.what != "receipt"
            ],
        }
        return self.mail(
            "escalation",
            f"{unit.code}:escalation",
            lang,
            ctx,
            Envelope(to=tuple(to), cc=cc),
            now=now,
            unit=unit,
        )

    # -- notices about a unit's answers -------------------------------------------------------

    def challenges_notice(
        self,
        unit: Unit,
        *,
        answers: Sequence[Mapping[str, str]],
        words: Sequence[Mapping[str, str]],
        received_at: dt.datetime,
        changed: bool,
        key: str,
        now: dt.datetime,
    ) -> NewMail | None:
        """To the superior leader and the coordinators: the unit's form says its work environment
        is not (or maybe not) fully satisfactory. ``answers`` are the answers that say so,
        ``words`` the unit's own descriptions. None when there is nobody to tell."""
        to = self.superior_and_coordinators(unit)
        if not to:
            return None
        lang = self.config.campaign.default_language
        ctx = self.unit_context(unit, lang) | {
            "answers": [dict(a) for a in answers],
            "words": [dict(w) for w in words],
            "received_at": received_at,
            "changed": changed,
            "has_superior": bool(unit.superior_email),
        }
        return self.mail("challenges-notice", key, lang, ctx, Envelope(to=tuple(to)), now=now, unit=unit)

    def help_notice(
        self,
        unit: Unit,
        *,
        audience: str,
        to: Sequence[Mailbox],
        wanted: Sequence[str],
        words: Sequence[Mapping[str, str]],
        received_at: dt.datetime,
        key: str,
        now: dt.datetime,
    ) -> NewMail:
        """To whoever the unit asked for help (``audience``: coordinator, hr_hms or bht): the unit,
        its leader and verneombud, what help it wants (``wanted``, labels) and its own words."""
        lang = self.config.campaign.default_language
        ctx = self.unit_context(unit, lang) | {
            "audience": audience,
            "wanted": list(wanted),
            "words": [dict(w) for w in words],
            "received_at": received_at,
        }
        return self.mail("help-notice", key, lang, ctx, Envelope(to=tuple(to)), now=now, unit=unit)

    # -- answers to a reply -------------------------------------------------------------------

    def receipt(self, unit: Unit, reply: Reply, submission: Mapping[str, Any], now: dt.datetime) -> NewMail:
        """The receipt for a valid form; ``submission`` as templates/email/README.md says. Once the
        campaign is closed, the answer to a late form instead (``after_closing``)."""
        if is_closed(now, self.config.campaign):
            late = {"received_at": submission["received_at"], "challenges": submission.get("challenges", [])}
            return self.after_closing(unit, reply, late, [], now)
        lang = unit.language
        ctx = self.unit_context(unit, lang) | {
            "submission": dict(submission),
            "cosign_asked": self.cosign_asked(unit, reply.to.address),
        }
        return self.answer("leader-receipt", reply, unit, ctx, now=now)

    def correction(
        self,
        unit: Unit,
        reply: Reply,
        problems: Sequence[Mapping[str, str]],
        *,
        received_at: dt.datetime,
        attachment: Attachment | None,
        now: dt.datetime,
    ) -> NewMail:
        """What to fix, with the sender's own file attached again (``attachment``), or a fresh
        form when their file could not be read at all (None). Once the campaign is closed, the
        answer to a late form instead (``after_closing``)."""
        if is_closed(now, self.config.campaign):
            return self.after_closing(
                unit, reply, {"received_at": received_at, "challenges": []}, problems, now
            )
        lang = unit.language
        today = local(now, self.config.campaign.timezone).date()
        kept = attachment is not None
        att = attachment or self.form_for(unit, lang)
        ctx = self.unit_context(unit, lang) | {
            "submission": {"received_at": received_at},
            "problems": [dict(p) for p in problems],
            "attachment_name": att.filename,
            "answers_kept": kept,
            "days_left": (self.config.campaign.deadline - today).days,
        }
        return self.answer("leader-correction", reply, unit, ctx, now=now, attachments=[att])

    def after_closing(
        self,
        unit: Unit,
        reply: Reply,
        submission: Mapping[str, Any],
        problems: Sequence[Mapping[str, str]],
        now: dt.datetime,
    ) -> NewMail:
        """The answer to a form that came after ``campaign.closes``: it is kept with the campaign's
        answers (HR's workbook has it), nobody else is told any more, and what it still lacks
        (``problems``) or says about the work environment (``submission["challenges"]``) is for
        the leader to take up directly. Never silence: it is an answer to a person."""
        lang = unit.language
        ctx = self.unit_context(unit, lang) | {
            "submission": {
                "received_at": submission["received_at"],
                "challenges": list(submission["challenges"]),
            },
            "problems": [dict(p) for p in problems],
            "closes_on": self.config.campaign.closes_on,
        }
        return self.answer("leader-after-closing", reply, unit, ctx, now=now)


def unit_mapping(unit: Unit) -> dict[str, str]:
    """A unit as the templates see it."""
    return {
        "code": unit.code,
        "name": unit.name,
        "faculty": unit.faculty,
        "leader_name": unit.leader_name,
        "leader_email": unit.leader_email,
        "verneombud_name": unit.verneombud_name,
        "verneombud_email": unit.verneombud_email,
    }
