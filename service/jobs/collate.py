"""The master workbook: the campaign's data as sheets of typed rows, and the .xlsx written from them.

Three parts, kept apart so each can be tested and measured alone:

- ``Sources``: what the workbook is made of (active units, the current valid versions, every
  version received, each unit's ``UnitState``, coordinators, the time it is read at). ``load``
  reads it from the store, the answers as *streams*, so 10,000 answer sets never sit in memory
  at once.
- ``sheets``: pure. Sources + FormDef -> the sheets in order: Oversikt (delivery per faculty),
  Oppsummering and Diagrammer (what the units answered, ``jobs.summary``), Svar, Tiltak,
  Mangler, Flagg, Logg; their rows are lazy iterables of Python values (str, int, float, date,
  datetime). With the co-signature on (``Sources.cosign``), Svar has each unit's co-signature and
  the verneombud's comment, and Oppsummering counts them per faculty (``jobs.confirmations``).
- ``write_xlsx`` (``jobs.xlsxout``): the only writer, xlsxwriter in ``constant_memory`` mode;
  nothing a leader typed can become a formula; every sheet prints landscape, fitted to its width.

Percentages are whole percents rounded down (``models.share_percent``), as `status`, the digests
and the web page show them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from service.campaign.cosign import CoSign
from service.campaign.state import Problem, Stage, UnitState, unit_states
from service.config.settings import Campaign, Cosign, Schedule
from service.forms.answers import from_json, table_text, value_text
from service.forms.model import SOURCES, Field, FormDef, Item
from service.jobs import confirmations, summary
from service.jobs.xlsxout import Col, Page, Sheet, Value, write_xlsx
from service.mail.smtpreason import humane
from service.models import Unit, share_percent
from service.store.database import Store

__all__ = ["Sources", "Version", "load", "missing", "problem_line", "sheets", "write_xlsx"]


@dataclass(frozen=True)
class Version:
    """One submission version; ``answers``/``flags`` are as stored (JSON), empty in the log."""

    unit_code: str
    version: int
    received_at: dt.datetime  # aware
    valid: bool
    sender: str = ""
    message_id: str = ""
    file_name: str = ""
    file_sha256: str = ""
    answers: Mapping[str, Any] = field(default_factory=dict)
    flags: Sequence[Mapping[str, str]] = ()
    problems: Sequence[Problem] = ()  # what was wrong with an invalid version, as the leader was told


@dataclass(frozen=True)
class Sources:
    """What the workbook is made of. ``current`` and ``log`` are called once per sheet that needs
    them and must yield in the order of ``units`` (faculty, code)."""

    units: Sequence[Unit]  # active, ordered by faculty then code
    versions: Mapping[str, tuple[int, dt.datetime]]  # code -> (versions received, newest)
    valid: frozenset[str]  # codes of units whose current version is valid
    current: Callable[[], Iterable[Version]]  # current valid versions of active units
    log: Callable[[], Iterable[Version]]  # every version, by unit then version
    states: Mapping[str, UnitState]  # code -> where the unit stands (``campaign.state``)
    coordinators: Mapping[str, str]  # faculty -> "Name <email>, ..."
    timezone: str = "Europe/Oslo"
    as_of: dt.datetime | None = None  # aware: when the store was read
    title: str = ""  # the campaign's
    cosign: bool = False  # the co-signature is on: its columns and its block are shown

    def state(self, unit: Unit) -> UnitState:
        """The unit's state; one the store had not yet when its states were read has had nothing."""
        return self.states.get(unit.code) or UnitState(code=unit.code, faculty=unit.faculty)


# the stages of a unit without a valid form, as the «Mangler» sheet words them
STAGE_NB = {
    Stage.NOT_INVITED: "ikke invitert",
    Stage.INVITED: "ikke sendt",
    Stage.AWAY: "borte",
    Stage.ADDRESS_FAILING: "adresse virker ikke",
    Stage.NEEDS_CORRECTION: "må rettes",
    Stage.VALID: "levert",
    Stage.INACTIVE: "inaktiv",
}
# what a mail to the leader was, as the «Mangler» sheet words it
OUTREACH_NB = {
    "invitation": "invitasjon",
    "reminder": "påminnelse",
    "correction": "retting",
    "receipt": "kvittering",
}


# -- the pure part ----------------------------------------------------------------------------


def sheets(src: Sources, form: FormDef) -> list[Page]:
    """The sheets, in order; table rows are produced when the writer asks for them."""
    tz = ZoneInfo(src.timezone)

    def local(at: dt.datetime) -> dt.datetime:
        return at.astimezone(tz).replace(tzinfo=None, microsecond=0)

    measures = next((f for f in form.fields() if f.type == "table"), None)
    faculties = Counter(u.faculty for u in sorted(src.units, key=lambda u: u.faculty))
    cosign = confirmations.per_faculty((src.state(u) for u in src.units), faculties) if src.cosign else None
    answers = summary.report(
        form,
        ((unit.faculty, from_json(form, cur.answers)) for unit, cur in _merged(src) if cur is not None),
        units=faculties,
        title=f"{src.title or form.title.get(summary.LANG)}: hva enhetene svarte",
        subtitle=_as_of(src, form, local),
        cosign=cosign,
    )
    return [
        _overview(src),
        answers,
        summary.charts(answers),
        _answers(src, form, local),
        _measures(src, form, measures),
        _missing(src, local),
        _flags(src),
        _log(src, local),
    ]


def _as_of(src: Sources, form: FormDef, local: Callable[[dt.datetime], dt.datetime]) -> str:
    """The summary's second line: when, and what was counted."""
    when = f"Per {local(src.as_of):%d.%m.%Y kl. %H:%M} ({src.timezone}). " if src.as_of else ""
    return (
        f"{when}Telt fra siste gyldige versjon av «{form.title.get(summary.LANG)}» fra hver enhet: "
        f"{len(src.valid)} av {len(src.units)} aktive enheter."
    )


def status_of(src: Sources, unit: Unit, has_valid: bool) -> str:
    if has_valid:
        return "levert"
    return "ugyldig" if unit.code in src.versions else "mangler"


def _overview(src: Sources) -> Sheet:
    valid = src.valid
    counts: list[tuple[str, int, int, int]] = []
    for faculty in sorted({u.faculty for u in src.units}):
        units = [u for u in src.units if u.faculty == faculty]
        counts.append(
            (
                faculty,
                len(units),
                sum(u.code in src.versions for u in units),
                sum(u.code in valid for u in units),
            )
        )
    rows: list[list[Value]] = [[f, n, sent, ok, n - ok, share_percent(ok, n)] for f, n, sent, ok in counts]
    n, sent, ok = (sum(int(c[i]) for c in counts) for i in (1, 2, 3))
    total: list[Value] = ["Totalt", n, sent, ok, n - ok, share_percent(ok, n)]
    cols = (
        Col("Fakultet", 14),
        Col("Enheter", 10),
        Col("Innsendt", 10),
        Col("Levert (gyldig)", 15),
        Col("Mangler", 10),
        Col("Andel levert", 13, percent=True),
    )
    return Sheet("Oversikt", cols, rows, total, chart=("Andel levert per fakultet", 5))


def _merged(src: Sources) -> Iterator[tuple[Unit, Version | None]]:
    """Each active unit with its current valid version, walking both streams in step."""
    stream = iter(src.current())
    pending = next(stream, None)
    for unit in src.units:
        if pending is not None and pending.unit_code == unit.code:
            yield unit, pending
            pending = next(stream, None)
        else:
            yield unit, None
    if pending is not None:
        raise RuntimeError(f"current version of {pending.unit_code} out of unit order")


def cell(item: Item, value: object) -> Value:
    """One answer as a typed cell: numbers as numbers, dates as dates, choices as nb labels."""
    if value is None or value in ((), []):
        return None
    if item.type in ("integer", "scale") and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if isinstance(value, dt.date):
        return value
    return value_text(item, value, "nb")


# the roster's facts Svar shows in its own columns; a form field filled in from one of them
# (``source = "unit.name"``) would only repeat it
UNIT_COLUMNS = frozenset({"code", "name", "faculty", "leader_name", "leader_email"})


def answer_columns(form: FormDef) -> list[tuple[Field, str]]:
    """The form's fields Svar shows, each with its column title, in the form's order. A field
    the roster fills in that Svar shows already is left out; a one-word label ("Dato") gets its
    section's title beside it ("Dato (bekreftelse)"), so the column says what it is."""
    out = []
    for section in form.sections:
        for f in section.fields:
            if f.source is not None and SOURCES.get(f.source) in UNIT_COLUMNS:
                continue
            label = f.label.get(summary.LANG)
            if len(label.split()) == 1:
                label = f"{label} ({section.title.get(summary.LANG).lower()})"
            out.append((f, label))
    return out


def _answers(src: Sources, form: FormDef, local: Callable[[dt.datetime], dt.datetime]) -> Sheet:
    fields = answer_columns(form)
    cols: list[Col] = [
        Col("Enhetskode", 14),
        Col("Enhet", 32),
        Col("Fakultet", 10),
        Col("Leder", 22),
        Col("Leders e-post", 28),
        Col("Status", 10),
        Col("Mottatt", 17),
        Col("Versjoner", 10),
        *((Col("Verneombudets bekreftelse", 18), Col("Verneombudets kommentar", 40)) if src.cosign else ()),
    ]
    for f, label in fields:
        if f.type == "table":
            cols += [Col(f"{label} (antall)", 12), Col(label, 50)]
        else:
            cols.append(Col(label, 40 if f.type == "longtext" else min(max(len(label), 12), 30)))

    def rows() -> Iterator[list[Value]]:
        for unit, cur in _merged(src):
            count, newest = src.versions.get(unit.code, (0, None))
            at = cur.received_at if cur else newest
            row: list[Value] = [
                unit.code,
                unit.name,
                unit.faculty,
                unit.leader_name,
                unit.leader_email,
                status_of(src, unit, cur is not None),
                local(at) if at else None,
                count,
                *(cosign_cells(src.state(unit)) if src.cosign else ()),
            ]
            answers = from_json(form, cur.answers) if cur else {}
            for f, _ in fields:
                value = answers.get(f.id)
                if f.type == "table":
                    n = len(value) if isinstance(value, list) else 0
                    row += [n if cur else None, table_text(f, value, "nb") or None]
                else:
                    row.append(cell(f, value))
            yield row

    return Sheet("Svar", _unique(cols), rows(), key_columns=2)


def cosign_cells(state: UnitState) -> tuple[Value, Value]:
    """Svar's co-signature pair: where it stands, in words, and the verneombud's comment
    (verbatim) when they have one."""
    cosign = state.cosign
    comment = cosign.words if cosign is not None and cosign.stage is CoSign.DISPUTED else ""
    return confirmations.words(cosign, "nb") or None, comment or None


def _unique(cols: list[Col]) -> tuple[Col, ...]:
    """Headers made unique (a prefilled field is labelled like a unit column): «X (skjema)»."""
    seen: set[str] = set()
    out = []
    for c in cols:
        title = c.title if c.title not in seen else f"{c.title} (skjema)"
        seen.add(title)
        out.append(Col(title, c.width, c.percent))
    return tuple(out)


def _measures(src: Sources, form: FormDef, table: Field | None) -> Sheet:
    columns = table.columns if table else ()
    cols = (
        Col("Enhetskode", 14),
        Col("Enhet", 32),
        Col("Fakultet", 10),
        Col("Nr.", 6),
        *(Col(c.label.nb, 40 if c.type in ("text", "longtext") else 16) for c in columns),
    )

    def rows() -> Iterator[list[Value]]:
        if table is None:
            return
        for unit, cur in _merged(src):
            if cur is None:
                continue
            value = from_json(form, cur.answers).get(table.id)
            for i, measure in enumerate(value if isinstance(value, list) else [], start=1):
                if isinstance(measure, Mapping):
                    yield [
                        unit.code,
                        unit.name,
                        unit.faculty,
                        i,
                        *(cell(c, measure.get(c.id)) for c in columns),
                    ]

    return Sheet("Tiltak", cols, rows())


def missing(src: Sources) -> Iterator[tuple[Unit, UnitState]]:
    """Every active unit without a valid form, in the order of ``units``, with its state: the
    «Mangler» sheet's rows and the web page's list."""
    for unit in src.units:
        if unit.code not in src.valid:
            yield unit, src.state(unit)


def problem_line(problem: Problem) -> str:
    """One problem still to fix, where it is first: "Skjema!C14: …"."""
    return f"{problem.cell}: {problem.message}" if problem.cell else problem.message


def _missing(src: Sources, local: Callable[[dt.datetime], dt.datetime]) -> Sheet:
    cols = (
        Col("Enhetskode", 14),
        Col("Enhet", 32),
        Col("Fakultet", 10),
        Col("Status", 18),
        Col("Leder", 22),
        Col("Leders e-post", 28),
        Col("Koordinator(er)", 40),
        Col("Skjema mottatt", 14),
        Col("Feil å rette", 10),
        Col("Feilene", 60),
        Col("Sendt til leder", 44),
        Col("Purringer sendt", 15),
        Col("Siste purring", 14),
        Col("Eskalert", 12),
        Col("Tilbake", 12),
        Col("Feilende adresse", 50),
    )

    def day(at: dt.datetime | None) -> dt.date | None:
        return local(at).date() if at is not None else None

    def rows() -> Iterator[list[Value]]:
        for unit, state in missing(src):
            reminders = sorted(state.reminders)
            sent = "; ".join(
                f"{local(o.at):%d.%m} {OUTREACH_NB.get(o.what, o.what)}{' (i retur)' if o.bounced else ''}"
                for o in sorted(state.outreach, key=lambda o: o.at)
            )
            failure = state.failure
            yield [
                unit.code,
                unit.name,
                unit.faculty,
                STAGE_NB[state.stage],
                unit.leader_name,
                unit.leader_email,
                src.coordinators.get(unit.faculty) or None,
                day(state.received_on),
                len(state.problems) if state.needs_correction else None,
                "; ".join(problem_line(p) for p in state.problems) or None,
                sent or None,
                len(reminders),
                day(reminders[-1]) if reminders else None,
                day(state.escalated_at),
                state.back_on,
                f"{failure.address}: {humane(failure.reason, 'nb')}" if failure else None,
            ]

    return Sheet("Mangler", cols, rows(), key_columns=2)


def _flags(src: Sources) -> Sheet:
    cols = (
        Col("Enhetskode", 14),
        Col("Enhet", 32),
        Col("Fakultet", 10),
        Col("Felt", 40),
        Col("Svar", 30),
        Col("Melding", 60),
    )

    def rows() -> Iterator[list[Value]]:
        for unit, cur in _merged(src):
            for flag in cur.flags if cur else ():
                yield [
                    unit.code,
                    unit.name,
                    unit.faculty,
                    flag.get("label_nb") or flag.get("label"),
                    flag.get("value_nb") or flag.get("value"),
                    flag.get("message_nb"),
                ]

    return Sheet("Flagg", cols, rows())


def _log(src: Sources, local: Callable[[dt.datetime], dt.datetime]) -> Sheet:
    cols = (
        Col("Enhetskode", 14),
        Col("Versjon", 9),
        Col("Mottatt", 17),
        Col("Gyldig", 8),
        Col("Feilene", 60),
        Col("Avsender", 30),
        Col("Message-ID", 40),
        Col("Filnavn", 30),
        Col("SHA-256", 66),
    )

    def rows() -> Iterator[list[Value]]:
        for v in src.log():
            yield [
                v.unit_code,
                v.version,
                local(v.received_at),
                "ja" if v.valid else "nei",
                "; ".join(problem_line(p) for p in v.problems) or None,  # what the leader was told
                v.sender,
                v.message_id or None,
                v.file_name,
                v.file_sha256,
            ]

    return Sheet("Logg", cols, rows())


# -- reading the store ------------------------------------------------------------------------


def load(
    store: Store,
    *,
    campaign: Campaign,
    schedule: Schedule,
    now: dt.datetime,
    coordinators: Mapping[str, str],
    faculty: str | None = None,
    cosign: Cosign = Cosign(),  # noqa: B008 - frozen: the config's default, "ask"
) -> Sources:
    """The sources of ``campaign`` at ``now`` (of one faculty if given), answers streamed; each
    unit's co-signature as ``cosign`` (the config's ``[cosign]``) has it."""
    campaign_id = campaign.id
    units = [x for x in store.units(campaign_id) if faculty is None or x.faculty == faculty]
    codes = {u.code for u in units}
    states = {
        s.code: s
        for s in unit_states(store, campaign, schedule, now, include_inactive=False, cosign=cosign)
        if s.code in codes
    }
    versions = {c: (s.versions, s.newest_at) for c, s in states.items() if s.versions and s.newest_at}
    valid = frozenset(c for c, s in states.items() if s.has_valid)
    never = dt.datetime.min.replace(tzinfo=dt.UTC)

    def current() -> Iterator[Version]:
        for r in store.current_versions(campaign_id, faculty):
            yield Version(
                r["code"],
                r["version"],
                r["received_at"] or never,
                True,
                answers=r["answers"] or {},
                flags=list(r["flags"] or ()),
            )

    def log() -> Iterator[Version]:
        for r in store.version_log(campaign_id, faculty):
            yield Version(
                r["code"],
                r["version"],
                r["received_at"] or never,
                bool(r["valid"]),
                r["sender"],
                r["message_id"] or "",
                r["file_name"],
                r["file_sha256"],
                problems=[Problem.stored(p) for p in r["problems"] or ()],
            )

    return Sources(
        units,
        versions,
        valid,
        current,
        log,
        states,
        coordinators,
        campaign.timezone,
        now,
        campaign.title,
        cosign=cosign.mode != "off",
    )
