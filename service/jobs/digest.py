"""Weekly digests: one per faculty for its coordinators, one for HR with every faculty.

Each digest is a mail in the outbox with a dedupe key per ISO week (``digest:IE:2020-W50``), so a
runner restarted on digest day never sends it twice. The numbers come from the same queries as
``status``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.campaign.state import Stage, unit_states
from service.clock import local
from service.config.settings import Config
from service.forms.answers import flags_for
from service.jobs.notices import unrouted_help
from service.mail.compose import Attachment, Envelope, Mailbox
from service.mail.letters import Letters, unit_mapping
from service.models import Language, NewMail, Unit
from service.store.database import Store
from service.store.reports import FacultyProgress


@dataclass(frozen=True)
class DigestWeek:
    """The week a digest covers: since the previous one (or the opening) until today."""

    key: str  # 2020-W50
    start: dt.date
    end: dt.date
    since: dt.datetime


def week_of(store: Store, config: Config, now: dt.datetime, scope: str) -> DigestWeek:
    today = local(now, config.campaign.timezone).date()
    year, week, _ = today.isocalendar()
    last = store.last_mail_of_kind(
        config.campaign.id,
        "coordinator-digest" if scope != "hr" else "hr-digest",
        f"{config.campaign.id}:digest:{scope}:",
    )
    since = last or dt.datetime.combine(config.campaign.opens, dt.time(), dt.UTC)
    return DigestWeek(f"{year}-W{week:02d}", local(since, config.campaign.timezone).date(), today, since)


def _progress(rows: Sequence[FacultyProgress]) -> dict[str, Any]:
    units = sum(r.units for r in rows)
    valid = sum(r.valid for r in rows)
    return {
        "units": units,
        "submitted": sum(r.submitted for r in rows),
        "valid": valid,
        "missing": units - valid,
        "percent": valid * 100 // units if units else 0,
    }


class _Facts:
    """What the digests of one run share, read once: progress, unit states (with their flags),
    reviews; and
    the since-dependent lists, read once per starting point (usually one for every faculty)."""

    def __init__(self, store: Store, config: Config, now: dt.datetime) -> None:
        campaign_id = config.campaign.id
        self.store, self.cid = store, campaign_id
        self.progress = store.faculty_progress(campaign_id)
        self.states = unit_states(store, config.campaign, config.schedule, now, include_inactive=False)
        self.reviews = store.review_counts(campaign_id)
        self._since: dict[dt.datetime, list[dict[str, Any]]] = {}

    def new_versions(self, when: dt.datetime) -> list[dict[str, Any]]:
        """The forms received since ``when``, read once per starting point (usually one for
        every faculty)."""
        if when not in self._since:
            self._since[when] = self.store.new_submissions(self.cid, when)
        return self._since[when]


def _context(
    facts: _Facts, config: Config, units: dict[str, Unit], faculties: set[str], *, week: DigestWeek, lang: str
) -> dict[str, Any]:
    mine = {code for code, u in units.items() if u.faculty in faculties}
    rows = [r for r in facts.progress if r.faculty in faculties]
    states = [s for s in facts.states if s.code in mine]
    tz = config.campaign.timezone
    versions = facts.new_versions(week.since)
    return {
        "period_start": week.start,
        "period_end": week.end,
        "progress": _progress(rows),
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
        "flags": [
            {"unit": unit_mapping(units[s.code])} | f
            for s in states
            for f in flags_for(list(s.flags), "en" if lang == "en" else "nb")
        ],
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
    """This week's digests not yet queued (or all, for a preview): each faculty's, and HR's."""
    cid = config.campaign.id
    lang = config.campaign.default_language
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
            | _context(facts, config, units, {faculty}, week=week, lang=lang)
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
        ctx = (
            letters.base_context()
            | _context(facts, config, units, active, week=week, lang=lang)
            | {"faculties": [{"faculty": r.faculty, **_progress([r])} for r in facts.progress]}
            | {"help_unrouted": _unrouted_help(store, config, letters, units, lang)}
        )
        envelope = Envelope(to=tuple(Mailbox(a) for a in config.hr_recipients))
        out.append(letters.mail("hr-digest", f"digest:hr:{week.key}", lang, ctx, envelope, now=now))
    if include_sent:
        return out
    existing = store.existing_keys(cid, (m.dedupe_key for m in out))
    return [m for m in out if m.dedupe_key not in existing]


def _unrouted_help(
    store: Store, config: Config, letters: Letters, units: dict[str, Unit], lang: str
) -> list[dict[str, Any]]:
    """Units whose current form asks HR- og HMS-avdelingen or Bedriftshelsetjenesten for help
    while the config gives that service no address ([notices] hr_hms, bht): HR passes them on."""
    if not config.notices.help_requests:
        return []
    language: Language = "en" if lang == "en" else "nb"
    names = {
        "hr_hms": {"nb": "HR- og HMS-avdelingen", "en": "the HR and HSE Division"},
        "bht": {"nb": "Bedriftshelsetjenesten", "en": "the occupational health service"},
    }
    out = []
    for row in store.current_versions(config.campaign.id):
        wanted = unrouted_help(config, letters.form, row["answers"] or {})
        if wanted and row["code"] in units:
            out.append(
                {"unit": unit_mapping(units[row["code"]]), "wanted": [names[a][language] for a in wanted]}
            )
    return out
