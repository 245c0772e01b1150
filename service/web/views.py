"""What each web page shows, for one user: the role decides the faculties, here and only here.

The web app asks this module for values and renders them; it never reads the store itself. A
coordinator's view is narrowed to their faculty before anything is read, so no page or download
can carry another faculty's rows whatever the request says. The numbers are the ones
`skjemapost status` prints (``Setup.status``); the missing units are the workbook's «Mangler» rows,
built from the same ``collate`` sources (each unit's ``UnitState``) and worded in the reader's
language; the flags are the same states' flags the digest reads; the co-signature is each
state's, counted and worded by ``jobs.confirmations`` as the digests and the workbook do. So the
page and the workbook agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from service.app.mailing import Mailing
from service.app.operations import Operations
from service.app.setup import Setup
from service.app.wiring import App
from service.campaign.cosign import CoSign
from service.campaign.state import Stage
from service.clock import local
from service.forms.answers import flags_for
from service.jobs import collate, confirmations
from service.jobs.confirmations import Bucket, Count
from service.mail.smtpreason import humane
from service.models import Language, share_percent
from service.web.users import WebUser


@dataclass(frozen=True)
class FacultyLine:
    faculty: str
    units: int
    submitted: int  # with at least one form received, valid or not
    valid: int
    missing: int

    @property
    def percent(self) -> int:
        """Whole percent delivered (valid), rounded down so 99.6 % is not shown as done."""
        return share_percent(self.valid, self.units)


@dataclass(frozen=True)
class Sent:
    """One mail the leader got, on a local day."""

    what: str  # invitation, reminder, correction, receipt
    on: dt.date
    bounced: bool


@dataclass(frozen=True)
class MissingUnit:
    """A unit without a valid form: the workbook's «Mangler» row, in the reader's language."""

    code: str
    name: str
    faculty: str
    stage: Stage
    state: str  # the stage in the reader's words: "må rettes", "to be corrected"
    leader: str
    leader_email: str
    received_on: dt.date | None  # the first form received, if any
    problems: Sequence[str]  # still to fix when the stage is needs-correction: "Skjema!C14: …"
    outreach: Sequence[Sent]  # oldest first
    reminders: int
    last_reminder: dt.date | None
    escalated_on: dt.date | None
    back_on: dt.date | None  # the leader's first day back, while they are away
    failing: str  # the leader's failing address and what the server's refusal means; "" if none

    @property
    def needs_correction(self) -> bool:
        return self.stage is Stage.NEEDS_CORRECTION


@dataclass(frozen=True)
class FlagLine:
    code: str
    name: str
    faculty: str
    field: str
    answer: str
    message: str


@dataclass(frozen=True)
class CosignLine:
    """A unit with a valid form and where its verneombud's confirmation stands."""

    code: str
    name: str
    faculty: str
    stage: CoSign
    bucket: Bucket
    state: str  # in the reader's words: "bekreftet", "not asked: no address"
    verneombud: str  # their name, or their address when the roster has no name
    verneombud_email: str
    version: int | None  # the version they were asked about
    asked_on: dt.date | None
    reminded_on: dt.date | None
    answered_on: dt.date | None
    back_on: dt.date | None  # the verneombud is away until this day
    words: str  # their comment, verbatim (disputed)


@dataclass(frozen=True)
class Dashboard:
    title: str
    deadline: dt.date
    as_of: dt.datetime  # local time in the campaign's zone
    faculty: str | None  # the coordinator's faculty; None = every faculty
    faculties: Sequence[FacultyLine]
    total: FacultyLine
    missing: Sequence[MissingUnit]
    flags: Sequence[FlagLine]
    review: int  # messages waiting for a person (a coordinator: those matched to their units)
    # the co-signature (None while it is off): counted per faculty as the lines above, the total,
    # and every unit with a valid form, what needs a person first
    cosign_counts: dict[str, Count] | None = None
    cosign_total: Count | None = None
    cosign: Sequence[CosignLine] = ()


# the stages in English; in Norwegian they are the words of the workbook's «Mangler» sheet
STAGE_EN = {
    Stage.NOT_INVITED: "not invited",
    Stage.INVITED: "not sent",
    Stage.AWAY: "away",
    Stage.ADDRESS_FAILING: "address not working",
    Stage.NEEDS_CORRECTION: "to be corrected",
    Stage.VALID: "delivered",
    Stage.INACTIVE: "inactive",
}


def stage_word(stage: Stage, lang: Language) -> str:
    """Where a unit stands, in ``lang``: "må rettes" / "to be corrected"."""
    return collate.STAGE_NB[stage] if lang == "nb" else STAGE_EN[stage]


def scope(user: WebUser, wanted: str | None = None) -> str | None:
    """The one faculty a user may see, or None for all. The only place a role becomes a filter:
    HR may narrow it to the faculty they ``wanted``; a coordinator's wish changes nothing."""
    if user.role == "hr":
        return wanted or None
    return user.faculty or "\x00no faculty"


class Views:
    def __init__(self, app: App) -> None:
        self.app = app

    def dashboard(self, user: WebUser, lang: Language) -> Dashboard:
        app, faculty = self.app, scope(user)
        cfg = app.config
        progress = [p for p in Setup(app).status() if faculty is None or p.faculty == faculty]
        lines = [FacultyLine(p.faculty, p.units, p.submitted, p.valid, p.missing) for p in progress]
        total = FacultyLine(
            "", *(sum(getattr(x, k) for x in lines) for k in ("units", "submitted", "valid", "missing"))
        )
        now = app.clock.now()
        src = collate.load(
            app.store,
            campaign=cfg.campaign,
            schedule=cfg.schedule,
            now=now,
            coordinators={},
            faculty=faculty,
            cosign=cfg.cosign,
        )
        codes = {u.code for u in src.units}
        review = sum(
            1
            for r in Mailing(app).review_queue()
            if faculty is None or (r.unit_code is not None and r.unit_code in codes)
        )
        counts = (
            confirmations.per_faculty((src.state(u) for u in src.units), (x.faculty for x in lines))
            if src.cosign
            else None
        )
        return Dashboard(
            cfg.campaign.title,
            cfg.campaign.deadline,
            local(now, cfg.campaign.timezone),
            faculty,
            lines,
            total,
            _missing(src, lang),
            _flags(src, lang),
            review,
            counts,
            confirmations.total(counts) if counts is not None else None,
            _cosign(src, lang),
        )

    def workbook(self, user: WebUser, folder: Path, wanted: str | None = None) -> tuple[Path, str]:
        """The master workbook this user may have (HR: all, or the faculty ``wanted``), written
        into ``folder``; (path, download name). An unknown faculty raises CompileError."""
        faculty = scope(user, wanted)
        day = local(self.app.clock.now(), self.app.config.campaign.timezone)
        name = f"{self.app.campaign_id}-{faculty or 'alle'}-{day:%Y%m%d-%H%M}.xlsx"
        path, _ = Operations(self.app).compile(folder / name, faculty)
        return path, name

    def health(self) -> None:
        """Raise unless the database answers and its schema is current."""
        self.app.store.require_current()


def _missing(src: collate.Sources, lang: Language) -> list[MissingUnit]:
    """The workbook's «Mangler» rows (``collate.missing``), from each unit's state."""
    tz = src.timezone

    def day(at: dt.datetime | None) -> dt.date | None:
        return local(at, tz).date() if at is not None else None

    out = []
    for unit, state in collate.missing(src):
        reminders = sorted(state.reminders)
        failure = state.failure
        out.append(
            MissingUnit(
                unit.code,
                unit.name,
                unit.faculty,
                state.stage,
                stage_word(state.stage, lang),
                unit.leader_name,
                unit.leader_email,
                day(state.received_on),
                tuple(collate.problem_line(p) for p in state.problems),
                tuple(
                    Sent(o.what, local(o.at, tz).date(), o.bounced)
                    for o in sorted(state.outreach, key=lambda o: o.at)
                ),
                len(reminders),
                day(reminders[-1]) if reminders else None,
                day(state.escalated_at),
                state.back_on,
                f"{failure.address}: {humane(failure.reason, lang)}" if failure else "",
            )
        )
    return out


def _cosign(src: collate.Sources, lang: Language) -> list[CosignLine]:
    """Every active unit with a valid form and its co-signature, in the order a reader acts on
    them (``confirmations.attention_order``); none while the co-signature is off."""
    tz = src.timezone

    def day(at: dt.datetime | None) -> dt.date | None:
        return local(at, tz).date() if at is not None else None

    units = {u.code: u for u in src.units}
    out = []
    for state in sorted((src.state(u) for u in src.units), key=confirmations.attention_order):
        cosign, where = state.cosign, confirmations.bucket(state)
        if cosign is None or where is None:
            continue
        unit = units[state.code]
        out.append(
            CosignLine(
                unit.code,
                unit.name,
                unit.faculty,
                cosign.stage,
                where,
                confirmations.words(cosign, lang),
                unit.verneombud_name or unit.verneombud_email,
                unit.verneombud_email,
                cosign.version,
                day(cosign.asked_at),
                day(cosign.reminded_at),
                day(cosign.answered_at),
                cosign.back_on,
                cosign.words if cosign.stage is CoSign.DISPUTED else "",
            )
        )
    return out


def _flags(src: collate.Sources, lang: Language) -> list[FlagLine]:
    """The workbook's «Flagg» rows (the current valid versions' flags, as the digest reads them,
    without their answers), for the units in their order, in the reader's language."""
    return [
        FlagLine(unit.code, unit.name, unit.faculty, f["label"] or "", f["value"] or "", f["message"] or "")
        for unit in src.units
        for f in flags_for(list(src.state(unit).flags), lang)
    ]
