"""Notices about a unit's answers: special challenges, and help asked for.

The letter behind the campaign asks more of a unit that is not sure its work environment is fully
satisfactory than a line in a weekly digest: such a unit should take its challenges up with its
superior leader and may seek advice from the coordinators; HR- og HMS-avdelingen and
Bedriftshelsetjenesten can help. So when a valid form comes in, the form's flags with a
``notice`` (``forms.model.Flag``) decide who hears of it at once:

- "challenges": the superior leader and the coordinators get one notice with the answers that
  say so and the unit's own words; again only when a newer version changes those answers;
- "help": whoever the unit asks for (its coordinators, HR- og HMS-avdelingen, Bedriftshelse-
  tjenesten; an external consultant goes through HR- og HMS-avdelingen) gets one notice, again
  only when what it asks for changes. Where the config names no address for a service, the HR
  digest carries the request instead.

Each notice's outbox key holds a digest of what it says, so the same answers never go twice and
changed answers go once more. Pure but for ``letters`` writing the mail: values in, mails out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence

from service.campaign.plan import is_closed
from service.config.settings import Config
from service.forms.answers import value_text, value_text_choice
from service.forms.model import Field, FormDef
from service.mail.compose import Mailbox
from service.mail.letters import Letters
from service.models import Language, NewMail, Unit

# the help options of a "help" flag, by the choice values the shipped form uses, and who is asked
AUDIENCES = {"koordinator": "coordinator", "hr_hms": "hr_hms", "bht": "bht", "ekstern": "hr_hms"}


def challenge_answers(form: FormDef, answers: Mapping[str, object]) -> dict[str, object]:
    """The answers that raise a "challenges" flag: field id -> value (empty when none do)."""
    return {
        f.id: answers[f.id]
        for f in form.flagged()
        if f.flag is not None and f.flag.notice == "challenges" and f.flag.when.holds(answers.get(f.id))
    }


def challenge_lines(form: FormDef, challenges: Mapping[str, object], lang: Language) -> list[dict[str, str]]:
    """The answers ``challenge_answers`` found, as people read them: [{label, value}]."""
    return [
        {"label": form.field(k).label.get(lang), "value": value_text(form.field(k), v, lang)}
        for k, v in challenges.items()
    ]


def help_wanted(form: FormDef, answers: Mapping[str, object]) -> dict[str, tuple[str, ...]]:
    """Who the unit asks for help (audience -> the options it ticked), from "help" flags."""
    out: dict[str, list[str]] = {}
    for f in form.flagged():
        if f.flag is None or f.flag.notice != "help" or not f.flag.when.holds(answers.get(f.id)):
            continue
        value = answers.get(f.id)
        for choice in value if isinstance(value, list | tuple) else [value]:
            audience = AUDIENCES.get(str(choice))
            if audience:
                out.setdefault(audience, []).append(str(choice))
    return {k: tuple(v) for k, v in out.items()}


def notices(
    config: Config,
    form: FormDef,
    letters: Letters,
    unit: Unit,
    *,
    answers: Mapping[str, object],
    before: Mapping[str, object] | None,
    received_at: dt.datetime,
    now: dt.datetime,
) -> list[NewMail]:
    """The notices a newly valid form of ``unit`` calls for. ``before``: the answers of the
    unit's previous valid version (None for its first). None once the campaign is closed: the
    leader's answer (``Letters.after_closing``) says to take it up directly."""
    if is_closed(now, config.campaign):
        return []
    lang = config.campaign.default_language
    out: list[NewMail] = []
    challenges = challenge_answers(form, answers)
    earlier = challenge_answers(form, before or {})
    if config.notices.special_challenges and challenges and challenges != earlier:
        mail = letters.challenges_notice(
            unit,
            answers=challenge_lines(form, challenges, lang),
            words=_words(form, [form.field(k) for k in challenges], answers, lang),
            received_at=received_at,
            changed=bool(earlier),
            key=f"{unit.code}:challenges:{_digest(challenges)}",
            now=now,
        )
        if mail is not None:
            out.append(mail)
    if config.notices.help_requests:
        wanted, asked_before = help_wanted(form, answers), help_wanted(form, before or {})
        helpers = [f for f in form.flagged() if f.flag is not None and f.flag.notice == "help"]
        for audience, choices in sorted(wanted.items()):
            to = _recipients(config, unit, audience)
            if not to or asked_before.get(audience) == choices:
                continue  # nobody to send it to (the HR digest says so), or asked already
            field = helpers[0]
            out.append(
                letters.help_notice(
                    unit,
                    audience=audience,
                    to=to,
                    wanted=[value_text_choice(field, c, lang) for c in choices],
                    words=_words(form, helpers, answers, lang),
                    received_at=received_at,
                    key=f"{unit.code}:help:{audience}:{_digest(choices)}",
                    now=now,
                )
            )
    return out


def unrouted_help(config: Config, form: FormDef, answers: Mapping[str, object]) -> tuple[str, ...]:
    """The audiences a unit asks for help that have no address in the config."""
    return tuple(a for a in help_wanted(form, answers) if a != "coordinator" and not _addresses(config, a))


def _recipients(config: Config, unit: Unit, audience: str) -> list[Mailbox]:
    if audience == "coordinator":
        return [Mailbox(c.email, c.name) for c in config.coordinators_for(unit.faculty)]
    return [Mailbox(a) for a in _addresses(config, audience)]


def _addresses(config: Config, audience: str) -> tuple[str, ...]:
    return config.notices.hr_hms if audience == "hr_hms" else config.notices.bht if audience == "bht" else ()


def _words(
    form: FormDef, fields: Sequence[Field], answers: Mapping[str, object], lang: Language
) -> list[dict[str, str]]:
    """The unit's own words that go with a notice: the flags' ``words`` fields, answered."""
    ids = list(dict.fromkeys(w for f in fields if f.flag is not None for w in f.flag.words))
    return [
        {"label": form.field(i).label.get(lang), "value": str(answers[i])}
        for i in ids
        if str(answers.get(i) or "").strip()
    ]


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:10]
