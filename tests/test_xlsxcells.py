"""The direct .xlsx cell reader: every kind of value, dates by style, the caps, hostile XML."""

from __future__ import annotations

import datetime
import zipfile
from io import BytesIO
from pathlib import Path

import openpyxl
import pytest

from service.forms.build import build_form
from service.forms.definition import load_form
from service.models import Unit
from service.xlsx.cells import XlsxError, open_workbook
from service.xlsx.dates import from_serial
from service.xlsx.safezip import ZipLimits

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
D, DT = datetime.date, datetime.datetime


def package(
    rows: str,
    *,
    strings: str | None = None,
    styles: str | None = None,
    date1904: bool = False,
    names: str = "",
    dimension: str = "A1:E9",
    extra_sheets: tuple[str, ...] = (),
    ns: str = MAIN,
) -> bytes:
    """A minimal .xlsx: sheet «Data» holding ``rows`` (the inside of <sheetData>)."""
    sheets = [("Data", "visible")] + [(name, "veryHidden") for name in extra_sheets]
    rels = [
        f'<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    ]
    if strings is not None:
        rels.append(f'<Relationship Id="rS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>')
    if styles is not None:
        rels.append(f'<Relationship Id="rT" Type="{REL}/styles" Target="/xl/styles.xml"/>')
    members = {
        "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"/>',
        "_rels/.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="r1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>',
        "xl/workbook.xml": (
            f'<workbook xmlns="{ns}" xmlns:r="{REL}"><workbookPr date1904="{int(date1904)}"/>'
            "<sheets>"
            + "".join(
                f'<sheet name="{n}" sheetId="{i}" state="{s}" r:id="rId{i}"/>'
                for i, (n, s) in enumerate(sheets, 1)
            )
            + f"</sheets><definedNames>{names}</definedNames></workbook>"
        ),
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{ns}"><dimension ref="{dimension}"/>'
        f"<sheetData>{rows}</sheetData><pageMargins/></worksheet>",
    }
    for i in range(2, len(sheets) + 1):
        members[f"xl/worksheets/sheet{i}.xml"] = (
            f'<worksheet xmlns="{ns}"><sheetData><row r="1">'
            f'<c r="A1"><v>{i}</v></c></row></sheetData></worksheet>'
        )
    if strings is not None:
        members["xl/sharedStrings.xml"] = f'<sst xmlns="{ns}">{strings}</sst>'
    if styles is not None:
        members["xl/styles.xml"] = f'<styleSheet xmlns="{ns}">{styles}</styleSheet>'
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return out.getvalue()


def grid(data: bytes, **caps: int):
    with open_workbook(data) as wb:
        return wb.read("Data", **caps)


STYLES = """<numFmts count="5"><numFmt numFmtId="164" formatCode="DD.MM.YYYY"/>
<numFmt numFmtId="165" formatCode="dd.mm.yyyy hh:mm"/>
<numFmt numFmtId="166" formatCode="[$-414]d. mmmm yyyy"/>
<numFmt numFmtId="167" formatCode="&quot;day &quot;0"/>
<numFmt numFmtId="168" formatCode="#,##0\\ &quot;kr&quot;"/>
</numFmts><cellXfs count="11"><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="164"/>
<xf numFmtId="165" applyNumberFormat="1"><alignment wrapText="1"/></xf><xf numFmtId="20"/>
<xf numFmtId="46"/><xf numFmtId="166"/><xf numFmtId="167"/><xf numFmtId="168"/><xf numFmtId="2"/>
<xf numFmtId="22"/></cellXfs>"""


def test_shared_and_inline_strings_read_the_same():
    """A shared string (t=s) and an inline string (t=inlineStr) give the same text, æøå included."""
    rows = (
        '<row r="1"><c r="A1" t="s"><v>1</v></c><c r="B1" t="inlineStr"><is><t>Blåbær &amp; '
        '&lt;ost&gt;</t></is></c><c r="C1" t="s"><v>0</v></c></row>'
    )
    g = grid(package(rows, strings="<si><t>første</t></si><si><t>Blåbær &amp; &lt;ost&gt;</t></si>"))
    assert g.cells == {(1, 1): "Blåbær & <ost>", (1, 2): "Blåbær & <ost>", (1, 3): "første"}


def test_rich_text_runs_are_joined_and_phonetic_runs_left_out():
    """Rich-text runs are concatenated in order; a phonetic guide (rPh) is not part of the text."""
    rich = (
        '<r><rPr><b/></rPr><t>Hel</t></r><r><t xml:space="preserve">lo </t></r><r><t>verden</t></r>'
        '<rPh sb="0" eb="1"><t>XX</t></rPh>'
    )
    rows = f'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is>{rich}</is></c></row>'
    assert grid(package(rows, strings=f"<si>{rich}</si>")).cells == {
        (1, 1): "Hello verden",
        (1, 2): "Hello verden",
    }


def test_escaped_characters_in_text_are_decoded():
    """Excel's _x000D_ escapes become the character, an escaped escape stays literal, others stay."""
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>a_x000D_\nb _x005F_x0041_ _x0041_ _x0000_'
        "</t></is></c></row>"
    )
    assert grid(package(rows)).value(1, 1) == "a\r\nb _x0041_ _x0041_ _x0000_"


@pytest.mark.parametrize(
    ("style", "raw", "expected"),
    [
        (1, "44138", D(2020, 11, 3)),  # built-in 14, mm-dd-yy
        (2, "44138", D(2020, 11, 3)),  # custom DD.MM.YYYY (LibreOffice writes upper case)
        (2, "44138.75", D(2020, 11, 3)),  # a time part under a date-only format is dropped
        (3, "44138.75", DT(2020, 11, 3, 18, 0)),  # date and time
        (6, "44138", D(2020, 11, 3)),  # locale prefix [$-414] is not part of the format
        (10, "44138.5", DT(2020, 11, 3, 12, 0)),  # built-in 22, m/d/yy h:mm
        (4, "0.5", datetime.time(12, 0)),  # built-in 20, h:mm
        (2, "0", datetime.time(0, 0)),  # day zero under a date format is a time, as in openpyxl
        (5, "1.5", datetime.timedelta(hours=36)),  # built-in 46, [h]:mm:ss: elapsed time
        (0, "44138", 44138),  # General: a number stays a number
        (7, "44138", 44138),  # "day "0: a d inside quotes is literal text, not a day
        (8, "1200", 1200),  # #,##0\ "kr"
        (9, "2.50", 2.5),  # 0.00
        (99, "7", 7),  # a style index past cellXfs: no format
    ],
)
def test_numbers_become_dates_by_their_style(style, raw, expected):
    """A number is a date, date-time, time or duration exactly when its cell style's format says so."""
    rows = f'<row r="1"><c r="A1" s="{style}"><v>{raw}</v></c></row>'
    value = grid(package(rows, styles=STYLES)).value(1, 1)
    assert value == expected and type(value) is type(expected)


def test_date1904_workbooks_count_from_1904():
    """With date1904 the same serial is 1,462 days later than in the 1900 system."""
    rows = '<row r="1"><c r="A1" s="2"><v>42000</v></c></row>'
    assert grid(package(rows, styles=STYLES)).value(1, 1) == D(2014, 12, 27)
    assert grid(package(rows, styles=STYLES, date1904=True)).value(1, 1) == D(2018, 12, 28)


def test_excel_1900_leap_year_bug_is_honoured():
    """Serials before 1 March 1900 shift by the day Excel invented; 61 is 1 March 1900."""
    assert from_serial(1, "date") == D(1900, 1, 1)
    assert from_serial(59, "date") == D(1900, 2, 28)
    assert from_serial(61, "date") == D(1900, 3, 1)
    assert from_serial(10**9, "date") == 10**9  # beyond Python's dates: stays a number


def test_booleans_numbers_errors_and_formula_results():
    """Booleans, ints vs floats, error values, and the cached result of formulas (never evaluated)."""
    rows = (
        '<row r="1"><c r="A1" t="b"><v>1</v></c><c r="B1" t="b"><v>0</v></c>'
        '<c r="C1"><v>19</v></c><c r="D1"><v>19.0</v></c><c r="E1"><v>1E3</v></c></row>'
        '<row r="2"><c r="A2" t="str"><f>A1&amp;"x"</f><v>TRUEx</v></c>'
        '<c r="B2"><f>C1*2</f><v>38</v></c><c r="C2"><f>NOW()</f></c>'
        '<c r="D2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="E2" t="d"><v>2020-11-03</v></c></row>'
    )
    g = grid(package(rows))
    assert g.cells == {
        (1, 1): True,
        (1, 2): False,
        (1, 3): 19,
        (1, 4): 19.0,
        (1, 5): 1000.0,
        (2, 1): "TRUEx",
        (2, 2): 38,
        (2, 4): "#DIV/0!",
        (2, 5): D(2020, 11, 3),
    }
    assert type(g.value(1, 3)) is int and type(g.value(1, 4)) is float


def test_cells_and_rows_without_references_are_counted():
    """Rows and cells without an r attribute follow the previous one, as the spec says."""
    rows = (
        '<row><c t="inlineStr"><is><t>a</t></is></c><c t="inlineStr"><is><t>b</t></is></c></row>'
        '<row r="4"><c r="C4"><v>1</v></c><c><v>2</v></c></row>'
    )
    assert grid(package(rows)).cells == {(1, 1): "a", (1, 2): "b", (4, 3): 1, (4, 4): 2}


def test_row_cap_stops_reading():
    """Rows past max_row are never read: the grid says it was truncated."""
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(1, 1501))
    g = grid(package(rows), max_row=1000)
    assert g.rows == 1000 and g.truncated and g.value(1000, 1) == 1000 and g.value(1001, 1) is None
    assert len(g.cells) == 1000


def test_claimed_dimension_of_a_million_rows_allocates_nothing():
    """A sheet claiming A1:Z1048576 holds three cells: only those are read, and the far one is cut."""
    rows = (
        '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="Z2"><v>2</v></c></row>'
        '<row r="1048576"><c r="Z1048576"><v>3</v></c></row>'
    )
    g = grid(package(rows, dimension="A1:Z1048576"), max_row=1000, max_col=30)
    assert g.cells == {(1, 1): 1, (2, 26): 2} and g.rows == 2 and g.truncated


def test_column_cap_drops_far_columns():
    """Cells past max_col are skipped, and a three-letter column is understood."""
    rows = '<row r="1"><c r="AD1"><v>30</v></c><c r="AE1"><v>31</v></c><c r="XFD1"><v>9</v></c></row>'
    assert grid(package(rows), max_col=30).cells == {(1, 30): 30}
    assert grid(package(rows), max_col=20_000).value(1, 16384) == 9


def test_sheets_names_and_states():
    """Sheets keep their order and state; defined names keep their text and sheet scope."""
    names = (
        '<definedName name="sp_x">Data!$C$7</definedName><definedName name="sp_stamp">'
        '"ab""c"</definedName><definedName name="local" localSheetId="1">Meta!$A$1'
        '</definedName><definedName name="gone" localSheetId="7">x</definedName>'
    )
    with open_workbook(package("", names=names, extra_sheets=("Meta",))) as wb:
        assert [(s.name, s.state) for s in wb.sheets] == [("Data", "visible"), ("Meta", "veryHidden")]
        assert [(n.name, n.text, n.sheet) for n in wb.names] == [
            ("sp_x", "Data!$C$7", None),
            ("sp_stamp", '"ab""c"', None),
            ("local", "Meta!$A$1", "Meta"),
        ]
        assert wb.read("Meta").cells == {(1, 1): 2}


def test_strict_ooxml_namespace_is_read():
    """A workbook saved as Strict Open XML (another namespace) reads the same."""
    strict = "http://purl.oclc.org/ooxml/spreadsheetml/main"
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    assert grid(package(rows, strings="<si><t>strict</t></si>", ns=strict)).cells == {(1, 1): "strict"}


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;">'
    f'<!ENTITY c "&b;&b;&b;&b;&b;&b;">]><sst xmlns="{MAIN}"><si><t>&c;</t></si></sst>'
)


def test_billion_laughs_is_refused_before_parsing():
    """A DTD with entities in sharedStrings.xml is refused as xml_attack, never expanded."""
    data = package('<row r="1"><c r="A1" t="s"><v>0</v></c></row>', strings="")
    data = replace_member(data, "xl/sharedStrings.xml", LAUGHS.encode())
    with pytest.raises(XlsxError) as info:
        grid(data)
    assert info.value.code == "xml_attack"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_a_dtd_hidden_in_utf16_is_still_refused(encoding):
    """An external-entity DTD in a UTF-16 workbook.xml is found and refused."""
    xxe = (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE w [<!ENTITY x SYSTEM '
        f'"file:///etc/passwd">]><workbook xmlns="{MAIN}"><sheets/>&x;</workbook>'
    )
    data = replace_member(package(""), "xl/workbook.xml", xxe.encode(encoding))
    with pytest.raises(XlsxError) as info:
        open_workbook(data)
    assert info.value.code == "xml_attack"


def test_a_memory_bomb_of_tags_is_refused():
    """A sheet with more tags than any form could need is refused unparsed as a bomb."""
    rows = '<row r="1">' + "<c/>" * 2_100_000 + "</row>"
    with pytest.raises(XlsxError) as info:
        grid(package(rows))
    assert info.value.code == "bomb"


def test_bad_bytes_raise_xlsx_error_with_a_code():
    """Not a zip, a missing workbook and a bad shared-string index each raise XlsxError."""
    cases = [
        (b"not a zip", "not_zip"),
        (replace_member(package(""), "xl/workbook.xml", None), "corrupt"),
        (package('<row r="1"><c r="A1" t="s"><v>5</v></c></row>', strings=""), "corrupt"),
        (package('<row r="1"><c r="1A"><v>5</v></c></row>'), "corrupt"),
    ]
    for data, code in cases:
        with pytest.raises(XlsxError) as info, open_workbook(data) as wb:
            wb.read("Data")
        assert info.value.code == code, data[:40]


def test_the_unpacked_budget_is_enforced():
    """A package larger than the unpacked limit is refused from its directory as a bomb."""
    rows = '<row r="1"><c r="A1" t="inlineStr"><is><t>' + "x" * 5000 + "</t></is></c></row>"
    with pytest.raises(XlsxError) as info:
        open_workbook(package(rows), ZipLimits(max_unpacked=4000))
    assert info.value.code == "bomb"


def replace_member(data: bytes, name: str, content: bytes | None) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
        if content is not None:
            dst.writestr(name, content)
    return out.getvalue()


def test_agrees_with_openpyxl_on_every_cell_of_a_filled_form(tmp_path: Path):
    """On a real form filled and saved by openpyxl, every cell matches openpyxl's data_only value."""
    form = load_form(Path(__file__).parent.parent / "forms" / "oppsummering-og-evaluering.toml")
    unit = Unit(
        "IE-IDI",
        "Institutt for datateknologi og informatikk",
        "IE",
        "Kari Nordmann",
        "kari@example.test",
        "nb",
    )
    wb = openpyxl.load_workbook(
        BytesIO(
            build_form(
                form,
                unit,
                lang="nb",
                reference="KQ7M-3XWD",
                stamp="st1.x",
                campaign_title="ARK",
                deadline=D(2020, 12, 16),
            )
        )
    )
    ws = wb["Skjema"]
    ws["C14"], ws["C15"], ws["C17"], ws["C19"], ws["E27"] = 23, D(2020, 11, 3), 19.5, True, "Ja"
    ws["C49"] = "=1+1"
    out = BytesIO()
    wb.save(out)
    expected = openpyxl.load_workbook(BytesIO(out.getvalue()), data_only=True)
    with open_workbook(out.getvalue()) as book:
        for sheet in expected.worksheets:
            cells = book.read(sheet.title, max_row=10_000, max_col=100).cells
            theirs = {
                (c.row, c.column): c.value.date() if isinstance(c.value, DT) else c.value
                for row in sheet.iter_rows()
                for c in row
                if c.value is not None
            }
            assert cells == theirs, sheet.title
