"""Reading the roster: who leads which unit. Pure: a file in, units out, or every problem at once.

The roster comes from HR as .xlsx or .csv. CSV may be UTF-8 with or without a BOM (Excel's
"CSV UTF-8") or, when it is not UTF-8 at all, Windows-1252 (Excel's plain "CSV" on a Norwegian
PC); it may be separated by commas or semicolons (Norwegian Excel writes semicolons). Headers may
be in English or Norwegian. Row numbers in problems are the spreadsheet's own (the header is row 1).
A roster with any bad row is rejected whole: nothing is half-imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from email_validator import EmailNotValidError, validate_email

from service.errors import Problem, RosterError
from service.models import LANGUAGES, Language, Unit
from service.xlsx.cells import column_letters

# column id -> accepted header spellings (compared case-insensitively, spaces/dashes as "_")
COLUMNS: dict[str, tuple[str, ...]] = {
    "unit_code": ("unit_code", "code", "enhetskode", "enhet_kode", "kode"),
    "unit_name": ("unit_name", "name", "enhetsnavn", "enhet", "navn"),
    "faculty": ("faculty", "fakultet"),
    "leader_name": ("leader_name", "leader", "leder", "ledernavn", "leders_navn"),
    "leader_email": ("leader_email", "leder_epost", "leders_epost", "leder_e_post"),
    "language": ("language", "lang", "språk", "sprak"),
    "verneombud_name": ("verneombud_name", "verneombud", "verneombud_navn", "safety_rep"),
    "verneombud_email": ("verneombud_email", "verneombud_epost", "verneombud_e_post"),
    "superior_email": ("superior_email", "superior", "overordnet_epost", "overordnet_leder"),
}
REQUIRED = ("unit_code", "unit_name", "faculty", "leader_name", "leader_email")
EMAIL_COLUMNS = ("leader_email", "verneombud_email", "superior_email")
LANGUAGE_ALIASES = {"no": "nb", "nob": "nb", "norsk": "nb", "bokmål": "nb", "english": "en", "eng": "en"}
MAX_ROWS = 20_000  # a university has hundreds of units; more than this is a wrong file


@dataclass(frozen=True)
class Roster:
    units: tuple[Unit, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def read_roster(path: Path, default_language: Language = "nb") -> Roster:
    """Read a roster file (.csv or .xlsx); raise RosterError listing every bad row and column."""
    suffix = path.suffix.lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterError([Problem(str(path), f"cannot read: {exc.strerror}")], str(path)) from None
    warnings: list[str] = []
    if suffix == ".csv":
        rows = _csv_rows(data, warnings)
    elif suffix in (".xlsx", ".xlsm"):
        rows = _xlsx_rows(data, path)
    else:
        raise RosterError([Problem(str(path), "a roster must be .csv or .xlsx")], str(path))
    return Roster(parse_rows(rows, default_language, str(path)), tuple(warnings))


def _csv_rows(data: bytes, warnings: list[str]) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        warnings.append("the file is not UTF-8; it was read as Windows-1252 (Excel's plain CSV)")
    first = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first.count)
    return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _xlsx_rows(data: bytes, path: Path) -> list[list[str]]:
    import openpyxl  # only for .xlsx rosters; keeps CSV imports light

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise RosterError([Problem(str(path), f"not a readable .xlsx: {exc}")], str(path)) from None
    try:
        rows = []
        for i, row in enumerate(wb.worksheets[0].iter_rows(values_only=True)):
            if i > MAX_ROWS:
                raise RosterError([Problem(str(path), f"more than {MAX_ROWS} rows")], str(path))
            rows.append(["" if v is None else str(v) for v in row])
        return rows
    finally:
        wb.close()


def _header_key(text: str) -> str:
    return "_".join(text.strip().lower().replace("-", " ").split())


def parse_rows(rows: Sequence[Sequence[str]], default_language: Language, source: str) -> tuple[Unit, ...]:
    """Turn a header row plus data rows into units, or raise RosterError with every problem."""
    if not rows:
        raise RosterError([Problem("row 1", "the roster is empty; expected a header row")], source)
    where = _columns(rows[0], source)
    # a spreadsheet user finds a column by its letter and its header, not by our internal id
    names = {col: f"{column_letters(i + 1)} «{rows[0][i].strip()}»" for col, i in where.items()}
    problems: list[Problem] = []
    units: list[Unit] = []
    first_row_of: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        values = {col: (row[i].strip() if i < len(row) else "") for col, i in where.items()}
        if not any(values.values()):
            continue  # blank lines at the end of an Excel export
        unit = _unit(values, number, default_language, problems, names)
        if unit is None:
            continue
        key = unit.code.upper()
        if key in first_row_of:
            problems.append(
                Problem(
                    f"row {number}, column {names['unit_code']}",
                    f"duplicate unit code {unit.code!r} (first on row {first_row_of[key]})",
                )
            )
            continue
        first_row_of[key] = number
        units.append(unit)
    if problems:
        raise RosterError(problems, source)
    if not units:
        raise RosterError([Problem("row 2", "the roster has a header but no units")], source)
    return tuple(units)


def _columns(header_row: Sequence[str], source: str) -> dict[str, int]:
    """Where each known column stands in the header row, or RosterError naming every problem."""
    header = [_header_key(h) for h in header_row]
    where: dict[str, int] = {}
    problems: list[Problem] = []
    for col, names in COLUMNS.items():
        hits = [i for i, h in enumerate(header) if h in names]
        if len(hits) > 1:
            where_ = " and ".join(f"{column_letters(i + 1)} ({header_row[i].strip()!r})" for i in hits)
            problems.append(Problem("row 1", f"column {col} appears twice: columns {where_}"))
        if hits:
            where[col] = hits[0]
        elif col in REQUIRED:
            problems.append(Problem("row 1", f"missing column {col}"))
    if problems:
        raise RosterError(problems, source)
    return where


def _unit(
    values: dict[str, str],
    number: int,
    default_language: Language,
    problems: list[Problem],
    names: dict[str, str],
) -> Unit | None:
    before = len(problems)

    def bad(col: str, message: str) -> None:
        problems.append(Problem(f"row {number}, column {names.get(col, col)}", message))

    for col in REQUIRED:
        if not values.get(col):
            bad(col, "is empty")
    for col in EMAIL_COLUMNS:
        if values.get(col):
            try:
                # no DNS lookups at import; test_environment admits the reserved .test domain
                # (which no real roster holds) so test deployments use real validation too
                values[col] = validate_email(
                    values[col], check_deliverability=False, test_environment=True
                ).normalized
            except EmailNotValidError as exc:
                bad(col, f"{values[col]!r} is not a valid email address: {exc}")
    lang = values.get("language", "").lower() or default_language
    lang = LANGUAGE_ALIASES.get(lang, lang)
    if lang not in LANGUAGES:
        bad("language", f"unknown language {values['language']!r}; use nb or en")
    if values.get("verneombud_email") and not values.get("verneombud_name"):
        bad("verneombud_name", "is empty while verneombud_email is given")
    if len(problems) > before:
        return None
    return Unit(
        code=values["unit_code"],
        name=values["unit_name"],
        faculty=values["faculty"],
        leader_name=values["leader_name"],
        leader_email=values["leader_email"],
        language=cast(Language, lang),
        verneombud_name=values.get("verneombud_name", ""),
        verneombud_email=values.get("verneombud_email", ""),
        superior_email=values.get("superior_email", ""),
    )


def write_csv(units: Iterable[Unit]) -> str:
    """The roster as CSV in the canonical column order (for exports and test fixtures)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for u in units:
        w.writerow(
            [
                u.code,
                u.name,
                u.faculty,
                u.leader_name,
                u.leader_email,
                u.language,
                u.verneombud_name,
                u.verneombud_email,
                u.superior_email,
            ]
        )
    return out.getvalue()
