"""The master workbook: the campaign's data as sheets of typed rows, and the .xlsx written from them.

Three parts, kept apart so each can be tested and measured alone:

- ``Sources``: what the workbook is made of (active units, the current valid versions, every
  version received, each unit's ``UnitState``, coordinators). ``load`` reads it from the store,
  the answers as *streams*, so 10,000 answer sets never sit in memory at once.
- ``sheets``: pure. Sources + FormDef -> six ``Sheet`` values (Oversikt, Svar, Tiltak, Mangler,
  Flagg, Logg) whose rows are lazy iterables of Python values (str, int, float, date, datetime).
- ``write_xlsx``: the only writer, xlsxwriter in ``constant_memory`` mode. Every ``str`` goes
  through ``write_string``, so nothing a leader typed (``=HYPERLINK(...)``, ``+47…``, ``@x``) can
  ever become a formula; such cells also carry Excel's quote prefix, so editing keeps them text.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import xlsxwriter  # type: ignore[import-untyped]

from service.campaign.state import Problem, Stage, UnitState, unit_states
from service.config.settings import Campaign, Schedule
from service.forms.answers import from_json, table_text, value_text
from service.forms.model import Field, FormDef, Item
from service.mail.smtpreason import humane
from service.models import Unit
from service.store.database import Store

Value = str | int | float | dt.date | dt.datetime | None
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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


@dataclass(frozen=True)
class Col:
    title: str
    width: float = 14
    percent: bool = False


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: tuple[Col, ...]
    rows: Iterable[Sequence[Value]]
    total: Sequence[Value] | None = None  # a bold last row, outside the filter
    chart: tuple[str, int] | None = None  # (title, column) of a bar chart over the rows


# -- the pure part ----------------------------------------------------------------------------


def sheets(src: Sources, form: FormDef) -> list[Sheet]:
    """The six sheets, in order; rows are produced when the writer asks for them."""
    tz = ZoneInfo(src.timezone)

    def local(at: dt.datetime) -> dt.datetime:
        return at.astimezone(tz).replace(tzinfo=None, microsecond=0)

    measures = next((f for f in form.fields() if f.type == "table"), None)
    return [
        _overview(src),
        _answers(src, form, local),
        _measures(src, form, measures),
        _missing(src, local),
        _flags(src),
        _log(src, local),
    ]


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
    rows: list[list[Value]] = [[f, n, sent, ok, n - ok, ok / n] for f, n, sent, ok in counts]
    n, sent, ok = (sum(int(c[i]) for c in counts) for i in (1, 2, 3))
    total: list[Value] = ["Totalt", n, sent, ok, n - ok, ok / n if n else 0.0]
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


def _answers(src: Sources, form: FormDef, local: Callable[[dt.datetime], dt.datetime]) -> Sheet:
    fields = form.fields()
    cols: list[Col] = [
        Col("Enhetskode", 14),
        Col("Enhet", 32),
        Col("Fakultet", 10),
        Col("Leder", 22),
        Col("Leders e-post", 28),
        Col("Status", 10),
        Col("Mottatt", 17),
        Col("Versjoner", 10),
    ]
    for f in fields:
        if f.type == "table":
            cols += [Col(f"{f.label.nb} (antall)", 12), Col(f.label.nb, 50)]
        else:
            cols.append(Col(f.label.nb, 40 if f.type == "longtext" else min(max(len(f.label.nb), 12), 30)))

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
            ]
            answers = from_json(form, cur.answers) if cur else {}
            for f in fields:
                value = answers.get(f.id)
                if f.type == "table":
                    n = len(value) if isinstance(value, list) else 0
                    row += [n if cur else None, table_text(f, value, "nb") or None]
                else:
                    row.append(cell(f, value))
            yield row

    return Sheet("Svar", _unique(cols), rows())


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

    return Sheet("Mangler", cols, rows())


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
) -> Sources:
    """The sources of ``campaign`` at ``now`` (of one faculty if given), answers streamed."""
    campaign_id = campaign.id
    units = [x for x in store.units(campaign_id) if faculty is None or x.faculty == faculty]
    codes = {u.code for u in units}
    states = {
        s.code: s
        for s in unit_states(store, campaign, schedule, now, include_inactive=False)
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
    )


# -- the writer -------------------------------------------------------------------------------


def write_xlsx(book_sheets: Iterable[Sheet], path: Path) -> dict[str, int]:
    """Write the sheets to ``path`` (atomically); returns the data rows written per sheet."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    wb = xlsxwriter.Workbook(
        str(tmp),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    header = wb.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": True, "valign": "top"}
    )
    guarded = wb.add_format({"quote_prefix": True})
    date_f = wb.add_format({"num_format": "dd.mm.yyyy"})
    stamp_f = wb.add_format({"num_format": "dd.mm.yyyy hh:mm"})
    pct_f = wb.add_format({"num_format": "0.0%"})
    bold = {
        k: wb.add_format({"bold": True, "top": 1, **({"num_format": "0.0%"} if k else {})})
        for k in (False, True)
    }
    counts: dict[str, int] = {}
    try:
        for sheet in book_sheets:
            ws = wb.add_worksheet(sheet.name)
            for c, col in enumerate(sheet.columns):
                ws.set_column(c, c, col.width, pct_f if col.percent else None)
                ws.write_string(0, c, col.title, header)
            ws.freeze_panes(1, 0)
            r = 0
            for r, row in enumerate(sheet.rows, start=1):
                _write_row(
                    ws, r, row, sheet.columns, date_f=date_f, stamp_f=stamp_f, pct_f=pct_f, guarded=guarded
                )
            ncols = len(sheet.columns)
            ws.autofilter(0, 0, max(r, 1), ncols - 1)
            counts[sheet.name] = r
            if sheet.total is not None:
                for c, value in enumerate(sheet.total):
                    style = bold[sheet.columns[c].percent]
                    if isinstance(value, str):
                        ws.write_string(r + 1, c, value, style)
                    elif value is not None:
                        ws.write_number(r + 1, c, value, style)
            if sheet.chart and r:
                chart = wb.add_chart({"type": "bar"})
                chart.add_series(
                    {
                        "name": sheet.chart[0],
                        "categories": [sheet.name, 1, 0, r, 0],
                        "values": [sheet.name, 1, sheet.chart[1], r, sheet.chart[1]],
                        "data_labels": {"value": True, "num_format": "0%"},
                    }
                )
                chart.set_title({"name": sheet.chart[0]})
                chart.set_legend({"none": True})
                chart.set_x_axis({"min": 0, "max": 1, "num_format": "0%"})
                ws.insert_chart(1, ncols + 1, chart)
        wb.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return counts


def _write_row(
    ws: Any,
    r: int,
    row: Sequence[Value],
    columns: Sequence[Col],
    *,
    date_f: Any,
    stamp_f: Any,
    pct_f: Any,
    guarded: Any,
) -> None:
    for c, value in enumerate(row):
        if value is None:
            continue
        if isinstance(value, str):  # always text, whatever it starts with
            ws.write_string(r, c, value, guarded if value.startswith(FORMULA_START) else None)
        elif isinstance(value, bool):
            ws.write_string(r, c, "ja" if value else "nei")
        elif isinstance(value, int | float):
            ws.write_number(r, c, value, pct_f if columns[c].percent else None)
        elif isinstance(value, dt.datetime):
            ws.write_datetime(r, c, value, stamp_f)
        else:
            ws.write_datetime(r, c, value, date_f)
