"""Reading the roster: CSV and .xlsx, every bad row named, nothing half-imported."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from service.campaign.roster import read_roster, write_csv
from service.errors import RosterError

EXAMPLE = Path(__file__).parent.parent / "config" / "roster.example.csv"
HEADER = (
    "unit_code;unit_name;faculty;leader_name;leader_email;language;"
    "verneombud_name;verneombud_email;superior_email"
)


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_example_roster_has_about_twenty_units_in_three_faculties():
    """The shipped example roster reads cleanly."""
    roster = read_roster(EXAMPLE)
    assert 18 <= len(roster.units) <= 25
    assert {u.faculty for u in roster.units} == {"IE", "NV", "HF"}
    assert {u.language for u in roster.units} == {"nb", "en"}
    assert roster.warnings == ()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
@pytest.mark.parametrize("sep", [";", ","])
def test_csv_with_or_without_bom_and_either_separator(tmp_path, encoding, sep):
    """UTF-8 with or without BOM, commas or semicolons: the same units, æøå intact."""
    text = (HEADER + "\nX-1;Institutt for språk;HF;Øystein Ås;oa@example.edu;nb;;;\n").replace(";", sep)
    units = read_roster(write(tmp_path, text, encoding)).units
    assert [(u.code, u.name, u.leader_name) for u in units] == [("X-1", "Institutt for språk", "Øystein Ås")]


def test_windows_1252_csv_is_read_with_a_warning(tmp_path):
    """Excel's plain CSV on a Norwegian PC (cp1252) still reads, and says so."""
    text = HEADER + "\nX-1;Kjøkken;HF;Åse;ase@example.edu;nb;;;\n"
    roster = read_roster(write(tmp_path, text, "cp1252"))
    assert roster.units[0].leader_name == "Åse"
    assert roster.warnings and "Windows-1252" in roster.warnings[0]


def test_norwegian_headers_and_default_language(tmp_path):
    """Norwegian header names are understood, and an empty language takes the default."""
    text = "Enhetskode;Enhetsnavn;Fakultet;Leder;Leder e-post;Språk\nX-1;Navn;HF;Per;per@example.edu;\n"
    unit = read_roster(write(tmp_path, text), default_language="en").units[0]
    assert (unit.code, unit.leader_email, unit.language) == ("X-1", "per@example.edu", "en")


def test_every_bad_row_is_reported_with_row_and_column(tmp_path):
    """Duplicate code, invalid email and unknown language are each reported by row and column."""
    text = (
        HEADER
        + "\n"
        + "\n".join(
            [
                "A-1;Ok;IE;Leder;a@example.edu;nb;;;",
                "A-2;Bad mail;IE;Leder;not-an-address;nb;;;",
                "A-1;Duplicate;IE;Leder;b@example.edu;en;;;",
                "A-3;Bad language;IE;Leder;c@example.edu;de;;;",
                "A-4;;IE;Leder;d@example.edu;nb;Vo;vo@@example.edu;",
            ]
        )
    )
    with pytest.raises(RosterError) as err:
        read_roster(write(tmp_path, text))
    where = [p.where for p in err.value.problems]
    assert where == [
        "row 3, column E «leader_email»",
        "row 4, column A «unit_code»",
        "row 5, column F «language»",
        "row 6, column B «unit_name»",
        "row 6, column H «verneombud_email»",
    ]
    assert "duplicate unit code 'A-1' (first on row 2)" in str(err.value)


def test_a_row_error_names_the_column_by_letter_and_header(tmp_path):
    """A roster with Norwegian headers: the error points at the column the person sees (C «Leder e-post»)."""
    text = "Enhetskode;Enhet;Leder e-post;Fakultet;Leder\nA;B;ikke-en-adresse;C;D\n"
    with pytest.raises(RosterError) as err:
        read_roster(write(tmp_path, text))
    assert [p.where for p in err.value.problems] == ["row 2, column C «Leder e-post»"]


def test_missing_required_column_is_reported(tmp_path):
    """A roster without a leader_email column names the column."""
    with pytest.raises(RosterError, match="missing column leader_email"):
        read_roster(write(tmp_path, "unit_code;unit_name;faculty;leader_name\nA;B;C;D\n"))


def test_a_column_given_twice_is_named_as_a_spreadsheet_shows_it(tmp_path):
    """Columns by their letters and header text, as the person who fixes the file sees them."""
    text = "unit_code;unit_name;leader_email;faculty;leader_name;leder_epost\nA;B;a@x.no;C;D;b@x.no\n"
    with pytest.raises(RosterError) as err:
        read_roster(write(tmp_path, text))
    assert "column leader_email appears twice: columns C ('leader_email') and F ('leder_epost')" in str(
        err.value
    )


def test_xlsx_roster_reads_the_same_as_csv(tmp_path):
    """An .xlsx roster with the same rows gives the same units."""
    csv_units = read_roster(EXAMPLE).units
    wb = openpyxl.Workbook()
    for line in write_csv(csv_units).splitlines():
        wb.active.append(line.split(","))
    path = tmp_path / "roster.xlsx"
    wb.save(path)
    assert read_roster(path).units == csv_units


def test_other_file_types_are_refused(tmp_path):
    """A roster must be .csv or .xlsx."""
    with pytest.raises(RosterError, match=r"\.csv or \.xlsx"):
        read_roster(write(tmp_path, "x", name="roster.txt"))
