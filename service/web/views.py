"""What each web page shows, for one user: the role decides the faculties, here and only here.

The web app asks this module for values and renders them; it never reads the store itself. A
coordinator's view is narrowed to their faculty before anything is read, so no page or download
can carry another faculty's rows whatever the request says. The numbers are the ones
`skjemapost status` prints (``App.status``), and the missing units and flags come from the same
``collate`` sources and sheets as the master workbook (the flags from the store's query that the
digest uses), so the page and the workbook agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.app.mailing import Mailing
from service.app.operations import Operations
from service.app.setup import Setup
from service.app.wiring import App
from service.clock import local
from service.forms.answers import flags_for
from service.forms.model import FormDef
from service.jobs import collate
from service.models import Language, Unit
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
        return self.valid * 100 // self.units if self.units else 0


@dataclass(frozen=True)
class MissingUnit:
    code: str
    name: str
    faculty: str
    status: str  # "mangler" (nothing received) or "ugyldig" (only invalid forms)
    leader: str
    leader_email: str
    reminders: int
    last_reminder: dt.date | None
    failing: str  # failing addresses and why, "" if none


@dataclass(frozen=True)
class FlagLine:
    code: str
    name: str
    faculty: str
    field: str
    answer: str
    message: str


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
        src = collate.load(app.store, app.campaign_id, {}, cfg.campaign.timezone, faculty)
        codes = {u.code for u in src.units}
        review = sum(
            1
            for r in Mailing(app).review_queue()
            if faculty is None or (r.unit_code is not None and r.unit_code in codes)
        )
        return Dashboard(
            cfg.campaign.title,
            cfg.campaign.deadline,
            local(app.clock.now(), cfg.campaign.timezone),
            faculty,
            lines,
            total,
            _missing(src, app.form),
            _flags(src.units, app.store.current_flags(app.campaign_id), lang),
            review,
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


def _missing(src: collate.Sources, form: FormDef) -> list[MissingUnit]:
    """The workbook's «Mangler» sheet, row for row."""
    sheet = next(s for s in collate.sheets(src, form) if s.name == "Mangler")
    titles = [c.title for c in sheet.columns]
    out = []
    for row in sheet.rows:
        r: Mapping[str, object] = dict(zip(titles, row, strict=True))
        last = r["Siste purring"]
        out.append(
            MissingUnit(
                str(r["Enhetskode"]),
                str(r["Enhet"]),
                str(r["Fakultet"]),
                str(r["Status"]),
                str(r["Leder"] or ""),
                str(r["Leders e-post"] or ""),
                int(r["Purringer sendt"] or 0),  # type: ignore[call-overload]
                last if isinstance(last, dt.date) else None,
                str(r["Feilende adresse"] or ""),
            )
        )
    return out


def _flags(
    units: Sequence[Unit], stored: Sequence[tuple[str, list[dict[str, str]]]], lang: Language
) -> list[FlagLine]:
    """The workbook's «Flagg» rows (the current valid versions' flags, as the digest reads them,
    without their answers), for ``units`` in their order, in the reader's language."""
    flags = dict(stored)
    return [
        FlagLine(unit.code, unit.name, unit.faculty, f["label"] or "", f["value"] or "", f["message"] or "")
        for unit in units
        for f in flags_for(flags.get(unit.code, []), lang)
    ]
