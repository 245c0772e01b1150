"""Weekly digests: one per faculty for its coordinators, one for HR, one for the observers.

- The coordinators' digest is complete for their faculty: every unit that still needs something,
  grouped by where it stands, the flagged answers (most serious first, with the unit's own words),
  the forms that came since the last one, and the verneombud's confirmations (counted; every unit
  whose verneombud has a comment, with their words; those still awaited; those not asked and why).
- HR's digest is short: one line per faculty (units, delivered, share, to correct, no form,
  flagged, and the confirmations counted), then *only* the units that need someone to act
  (``_actions``: a verneombud's comment and a verneombud not asked for want of an address are
  among them), and where the rest is (the workbook, the web page).
- The observers' digest (``[[observers]]``: HVO and the unions, copied on the letter) holds numbers
  only: per faculty, how many units raised each kind of flag and how many verneombud confirmed.
  No unit and no person is named, and no verneombud's words are quoted: a unit's name is
  organisational, but a department has one head, so a unit named beside "not fully satisfactory"
  names its leader too.

The co-signature is counted and worded by ``jobs.confirmations``, as on every other surface; with
``[cosign] mode = "off"`` each digest's ``cosign`` is None and its templates leave it out.

Each digest is a mail in the outbox with a dedupe key per ISO week (``digest:IE:2020-W50``), so a
runner restarted on digest day never sends it twice. The first goes on ``plan.first_digest_day``
(when the invitations have had time to be answered); none once the campaign is closed
(``plan.is_closed``), when HR gets its final summary instead (``jobs.closing``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.campaign.cosign import NotAsked
from service.campaign.plan import is_closed
from service.campaign.state import Stage, UnitState, unit_states
from service.clock import local
from service.config.settings import Config
from service.forms.model import FormDef
from service.jobs import confirmations
from service.jobs.confirmations import Bucket
from service.jobs.flagged import flag_counts, flag_rows
from service.jobs.notices import challenge_answers, unrouted_help
from service.mail.compose import Attachment, Envelope, Mailbox
from service.mail.letters import Letters, unit_mapping
from service.models import LANGUAGES, Language, NewMail, Unit, share_percent
from service.store.database import Store
from service.store.reports import FacultyProgress

#: a form still to correct this long after it came needs more than the reminders: HR sees it
LONG_OPEN = dt.timedelta(days=7)
#: the services a unit may ask for help, as HR reads them (``notices.AUDIENCES``)
SERVICES = {
    "hr_hms": {"nb": "HR- og HMS-avdelingen", "en": "the HR and HSE Division"},
    "bht": {"nb": "Bedriftshelsetjenesten", "en": "the occupational health service"},
}


@dataclass(frozen=True)
class DigestWeek:
    """The week a digest covers: since the previous one of its kind (or the opening) until today."""

    key: str  # 2020-W50
    start: dt.date
    end: dt.date
    since: dt.datetime


def week_of(store: Store, config: Config, now: dt.datetime, scope: str, kind: str = "") -> DigestWeek:
    """This ISO week's key, and the period since the last digest of ``scope`` (a faculty, "hr",
    "observers-nb"), or since the opening day for the first one."""
    tz = config.campaign.timezone
    today = local(now, tz).date()
    year, week, _ = today.isocalendar()
    kind = kind or ("hr-digest" if scope == "hr" else "coordinator-digest")
    last = store.last_mail_of_kind(config.campaign.id, kind, f"{config.campaign.id}:digest:{scope}:")
    opening = dt.datetime.combine(config.campaign.opens, dt.time(), dt.UTC)
    since = last or opening
    return DigestWeek(f"{year}-W{week:02d}", local(since, tz).date(), today, since)


def faculty_lines(
    rows: Sequence[FacultyProgress], states: Iterable[UnitState]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The progress in total and one line per faculty (by name), each with its forms to correct
    (``Stage.NEEDS_CORRECTION``): HR's and the observers' digests and the final summary."""
    corrections = Counter(s.faculty for s in states if s.stage is Stage.NEEDS_CORRECTION)
    total = progress(rows) | {"corrections": sum(corrections[r.faculty] for r in rows)}
    lines = [
        {"faculty": r.faculty, **progress([r]), "corrections": corrections[r.faculty]}
        for r in sorted(rows, key=lambda r: r.faculty)
    ]
    return total, lines


def progress(rows: Sequence[FacultyProgress]) -> dict[str, Any]:
    """The numbers of ``rows`` together: units, submitted, valid, missing and the share valid."""
    units = sum(r.units for r in rows)
    valid = sum(r.valid for r in rows)
    return {
        "units": units,
        "submitted": sum(r.submitted for r in rows),
        "valid": valid,
        "missing": units - valid,
        "percent": share_percent(valid, units),  # as on every surface
    }


class _Facts:
    """What the digests of one run share, read once: progress, unit states (with their flags),
    reviews, each unit's current valid answers; and the forms received since a starting point,
    read once per starting point (usually one for every faculty)."""

    def __init__(self, store: Store, config: Config, now: dt.datetime) -> None:
        campaign_id = config.campaign.id
        self.store, self.cid = store, campaign_id
        self.progress = store.faculty_progress(campaign_id)
        self.states = unit_states(
            store, config.campaign, config.schedule, now, include_inactive=False, cosign=config.cosign
        )
        self.reviews = store.review_counts(campaign_id)
        self.answers: dict[str, Mapping[str, object]] = {
            row["code"]: row["answers"] or {} for row in store.current_versions(campaign_id)
        }
        self._since: dict[dt.datetime, list[dict[str, Any]]] = {}

    def new_versions(self, when: dt.datetime) -> list[dict[str, Any]]:
        if when not in self._since:
            self._since[when] = self.store.new_submissions(self.cid, when)
        return self._since[when]


# -- the coordinators' digest: complete for one faculty --------------------------------------------


def _context(
    facts: _Facts,
    config: Config,
    form: FormDef,
    units: dict[str, Unit],
    faculties: set[str],
    *,
    week: DigestWeek,
    lang: Language,
) -> dict[str, Any]:
    mine = {code for code, u in units.items() if u.faculty in faculties}
    rows = [r for r in facts.progress if r.faculty in faculties]
    states = [s for s in facts.states if s.code in mine]
    tz = config.campaign.timezone
    versions = facts.new_versions(week.since)
    return {
        "period_start": week.start,
        "period_end": week.end,
        "progress": progress(rows),
        "new_submissions": [
            {
                "unit": unit_mapping(units[v["code"]]),
                "received_at": v["received_at"],
                "version": v["version"],
                "updated": v["version"] > 1,
                "valid": v["valid"],
            }
            for v in versions
            if v["code"] in mine
        ],
        "corrections_pending": [
            {
                "unit": unit_mapping(units[s.code]),
                "received_on": local(s.received_on, tz).date() if s.received_on else None,
                "problems": len(s.problems),
                "reminders": [local(r, tz).date() for r in s.reminders],
                "escalated_on": local(s.escalated_at, tz).date() if s.escalated_at else None,
            }
            for s in states
            if s.stage is Stage.NEEDS_CORRECTION
        ],
        "missing_units": [
            {
                "unit": unit_mapping(units[s.code]),
                "state": s.stage.value,
                "reminders": [local(r, tz).date() for r in s.reminders],
                "escalated_on": local(s.escalated_at, tz).date() if s.escalated_at else None,
                "back_on": s.back_on,
                "address_fails": s.failing,
            }
            for s in states
            if s.stage in (Stage.INVITED, Stage.NOT_INVITED, Stage.AWAY, Stage.ADDRESS_FAILING)
        ],
        "away": [
            {"unit": unit_mapping(units[s.code]), "back_on": s.back_on}
            for s in states
            if s.back_on is not None and not s.has_valid
        ],
        "flags": flag_rows(form, states, facts.answers, units, lang),
        # persistent: every address that fails now, until the roster corrects it
        "bounces": [
            {
                "unit": unit_mapping(units[s.code]),
                "address": s.failure.address,
                "at": s.failure.since,
                "reason": s.failure.reason,
            }
            for s in states
            if s.failure is not None and not s.has_valid
        ],
        "review_count": sum(n for f, n in facts.reviews.items() if f in faculties),
        "cosign": _cosign_units(config, states, units, ", ".join(sorted(faculties))),
    }


# -- the verneombud's confirmations ----------------------------------------------------------------


def _cosign_units(
    config: Config, states: Sequence[UnitState], units: dict[str, Unit], faculty: str
) -> dict[str, Any] | None:
    """The coordinators' view of the co-signature: the faculty's count, then every unit whose
    verneombud has a comment (their words, verbatim), is still to answer, or was not asked (and
    why). None when the co-signature is off."""
    if config.cosign.mode == "off":
        return None
    disputed, pending, not_asked = [], [], []
    for s in sorted(states, key=confirmations.attention_order):
        cosign, where = s.cosign, confirmations.bucket(s)
        if cosign is None or where is None:
            continue
        unit = unit_mapping(units[s.code])
        if where is Bucket.DISPUTED:
            disputed.append(
                {
                    "unit": unit,
                    "words": cosign.words,
                    "answered_at": cosign.answered_at,
                    "version": cosign.version,
                }
            )
        elif where is Bucket.PENDING:
            pending.append(
                {
                    "unit": unit,
                    "version": cosign.version,
                    "asked_at": cosign.asked_at,
                    "reminded_at": cosign.reminded_at,
                    "back_on": cosign.back_on,
                }
            )
        elif where is Bucket.NOT_ASKED:
            not_asked.append({"unit": unit, "reason": str(cosign.reason or NotAsked.NO_ADDRESS)})
    return {
        "required": config.cosign.mode == "required",
        "count": confirmations.count(states, faculty).as_dict(),
        "disputed": disputed,
        "pending": pending,
        "not_asked": not_asked,
    }


def _cosign_counts(
    config: Config, states: Sequence[UnitState], faculties: Sequence[str]
) -> dict[str, Any] | None:
    """The confirmations counted per faculty and in total (HR's and the observers' digests): numbers
    only. None when the co-signature is off."""
    if config.cosign.mode == "off":
        return None
    per = confirmations.per_faculty(states, faculties)
    return {
        "required": config.cosign.mode == "required",
        "total": confirmations.total(per).as_dict(),
        "faculties": {f: c.as_dict() for f, c in per.items()},
    }


# -- HR's digest: per faculty, then only what needs someone to act ---------------------------------


def _actions(
    facts: _Facts,
    config: Config,
    letters: Letters,
    units: dict[str, Unit],
    *,
    now: dt.datetime,
    lang: Language,
) -> list[dict[str, Any]]:
    """The units someone must act on, each once with every reason, by faculty and code:

    - ``address``: the leader's address fails (fix it in the roster);
    - ``escalated``: no valid form after the escalation went to the superior and the coordinator;
    - ``correction``: a form to correct has been open ``LONG_OPEN`` or more, or past the deadline;
    - ``challenges``: a form says the work environment is not (or maybe not) fully satisfactory
      and nobody was told (no superior leader or coordinator address, or notices are off);
    - ``help``: a form asks a service for help that has no address in ``[notices]`` (pass it on).
    """
    tz = config.campaign.timezone
    today = local(now, tz).date()
    out = []
    for s in sorted(facts.states, key=lambda s: (s.faculty, s.code)):
        if s.code not in units:
            continue
        unit, why = units[s.code], []
        if s.failure is not None and not s.has_valid:
            why.append(
                {
                    "kind": "address",
                    "address": s.failure.address,
                    "reason": s.failure.reason,
                    "since": local(s.failure.since, tz).date(),
                }
            )
        if s.escalated_at is not None and not s.has_valid:
            why.append({"kind": "escalated", "on": local(s.escalated_at, tz).date()})
        if s.stage is Stage.NEEDS_CORRECTION and s.received_on is not None:
            received = local(s.received_on, tz).date()
            if today - received >= LONG_OPEN or today > config.campaign.deadline:
                why.append({"kind": "correction", "received_on": received, "problems": len(s.problems)})
        answers = facts.answers.get(s.code, {}) if s.has_valid else {}
        told = config.notices.special_challenges and bool(letters.superior_and_coordinators(unit))
        if answers and not told and challenge_answers(letters.form, answers):
            why.append({"kind": "challenges"})
        wanted = (
            unrouted_help(config, letters.form, answers) if answers and config.notices.help_requests else ()
        )
        if wanted:
            why.append({"kind": "help", "wanted": [SERVICES[a][lang] for a in wanted if a in SERVICES]})
        why += _cosign_actions(s, unit)
        if why:
            out.append({"unit": unit_mapping(unit), "why": why})
    return out


def _cosign_actions(s: UnitState, unit: Unit) -> list[dict[str, Any]]:
    """HR must act on a valid form's co-signature when the verneombud has a comment (someone
    follows it up with the leader) or was never asked for want of a working address (fix it in
    the roster)."""
    cosign, where = s.cosign, confirmations.bucket(s)
    if cosign is None or where is None:
        return []
    if where is Bucket.DISPUTED:
        return [{"kind": "cosign-disputed", "words": cosign.words, "answered_at": cosign.answered_at}]
    if confirmations.lacks_address(cosign):
        reason = str(cosign.reason or NotAsked.NO_ADDRESS)
        return [
            {
                "kind": "cosign-no-address",
                "reason": reason,
                "address": cosign.asked_to or unit.verneombud_email,
            }
        ]
    return []


def _hr_context(
    facts: _Facts,
    config: Config,
    letters: Letters,
    units: dict[str, Unit],
    *,
    now: dt.datetime,
    week: DigestWeek,
    lang: Language,
) -> dict[str, Any]:
    flagged = Counter(s.faculty for s in facts.states if s.flags)
    faculties = [
        line | {"flagged": flagged[line["faculty"]]}
        for line in faculty_lines(facts.progress, facts.states)[1]
    ]
    return {
        "period_start": week.start,
        "period_end": week.end,
        "progress": progress(facts.progress),
        "faculties": faculties,
        "actions": _actions(facts, config, letters, units, now=now, lang=lang),
        "flag_counts": flag_counts(letters.form, facts.states, lang),
        "new_count": sum(1 for v in facts.new_versions(week.since) if v["valid"]),
        "review_count": sum(facts.reviews.values()),
        "web_url": config.web.public_url,
        "cosign": _cosign_counts(config, facts.states, [r.faculty for r in facts.progress]),
    }


# -- the observers' digest: numbers only -----------------------------------------------------------


def _observer_context(
    facts: _Facts, config: Config, form: FormDef, week: DigestWeek, lang: Language
) -> dict[str, Any]:
    """Per faculty and in total: units, delivered, share, to correct; flags counted by kind; the
    verneombud's confirmations counted; the forms that came this period. Nothing that names a
    unit or a person, and no one's words."""
    total, faculties = faculty_lines(facts.progress, facts.states)
    return {
        "period_start": week.start,
        "period_end": week.end,
        "progress": total,
        "faculties": faculties,
        "flag_counts": flag_counts(form, facts.states, lang),
        "new_count": sum(1 for v in facts.new_versions(week.since) if v["valid"]),
        "cosign": _cosign_counts(config, facts.states, [r.faculty for r in facts.progress]),
    }


def digests(
    store: Store,
    config: Config,
    letters: Letters,
    now: dt.datetime,
    *,
    include_sent: bool = False,
    attachments: Callable[[str], Sequence[Attachment]] = lambda faculty: (),
) -> list[NewMail]:
    """This week's digests not yet queued (or all, for a preview): each faculty's, HR's and the
    observers' (one per language). None once the campaign is closed, unless for a preview."""
    if is_closed(now, config.campaign) and not include_sent:
        return []
    cid = config.campaign.id
    lang: Language = config.campaign.default_language
    units = {u.code: u for u in store.units(cid, include_inactive=True)}
    active = {u.faculty for u in store.units(cid)}
    facts = _Facts(store, config, now)
    out = []
    for faculty in sorted(active):
        coordinators = config.coordinators_for(faculty)
        if not coordinators:
            continue
        week = week_of(store, config, now, faculty)
        ctx = (
            letters.base_context()
            | _context(facts, config, letters.form, units, {faculty}, week=week, lang=lang)
            | {"faculty": faculty, "coordinators": [{"name": c.name, "email": c.email} for c in coordinators]}
        )
        envelope = Envelope(to=tuple(Mailbox(c.email, c.name) for c in coordinators))
        key = f"digest:{faculty}:{week.key}"
        if not include_sent and store.existing_keys(cid, [f"{cid}:{key}"]):
            continue  # this week's went out already: do not build its attachment again
        out.append(
            letters.mail(
                "coordinator-digest", key, lang, ctx, envelope, now=now, attachments=attachments(faculty)
            )
        )
    if config.hr_recipients:
        week = week_of(store, config, now, "hr")
        ctx = letters.base_context() | _hr_context(
            facts, config, letters, units, now=now, week=week, lang=lang
        )
        envelope = Envelope(to=tuple(Mailbox(a) for a in config.hr_recipients))
        out.append(letters.mail("hr-digest", f"digest:hr:{week.key}", lang, ctx, envelope, now=now))
    for olang in LANGUAGES:
        readers = [o for o in config.observers if o.language == olang]
        if not readers:
            continue
        scope = f"observers-{olang}"
        week = week_of(store, config, now, scope, "observer-digest")
        ctx = (
            letters.base_context(olang)  # the title and the sender's name in the readers' language
            | _observer_context(facts, config, letters.form, week, olang)
            | {"observers": [{"name": o.name} for o in readers]}
        )
        envelope = Envelope(to=tuple(Mailbox(o.email, o.name) for o in readers))
        out.append(
            letters.mail("observer-digest", f"digest:{scope}:{week.key}", olang, ctx, envelope, now=now)
        )
    if include_sent:
        return out
    existing = store.existing_keys(cid, (m.dedupe_key for m in out))
    return [m for m in out if m.dedupe_key not in existing]
