"""Opening attachments: each rejection from a small generated file, and .ods/.xls through LibreOffice."""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from test_formread import blank, complete, fill

from service.forms.intake import Limits, Rejection, Spreadsheet, cfb_names, open_attachment, soffice_converter
from service.forms.read import read_form

LIMITS = Limits()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def filled(form):
    """An openpyxl-filled form and the answers it holds."""
    typed, answers = complete(form)
    return fill(blank(form), typed), answers


def zipped(members: dict[str, bytes | str]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes | str]:
    with zipfile.ZipFile(BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def cfb(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE compound file (v3, 512-byte sectors) with ``streams`` under its root.

    Streams of 4096 bytes or more are stored in regular sectors; smaller ones are only listed
    (a reader of the directory never needs their bytes).
    """
    end, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    names = ["Root Entry", *streams]
    dir_sectors = math.ceil(len(names) / 4)
    fat = [fat_sector] + [n + 2 if n + 1 < dir_sectors else end for n in range(dir_sectors)]
    body, entries = b"", []
    for i, name in enumerate(names):
        content = streams.get(name, b"") if i else b""
        start, count = end, math.ceil(len(content) / 512)
        if len(content) >= 4096:
            start = len(fat)
            fat += [start + k + 1 for k in range(count - 1)] + [end]
            body += content.ljust(count * 512, b"\0")
        raw = name.encode("utf-16-le")
        entries.append(
            raw.ljust(64, b"\0")
            + struct.pack(
                "<HBBIII16sIQQIQ",
                len(raw) + 2,
                5 if i == 0 else 2,
                1,
                free,
                free,
                1 if i == 0 and len(names) > 1 else free,
                b"\0" * 16,
                0,
                0,
                0,
                start,
                len(content),
            )
        )
    directory = b"".join(entries).ljust(dir_sectors * 512, b"\0")
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + b"\0" * 16
        + struct.pack("<HHHHH6sIIIIIIIII", 0x3E, 3, 0xFFFE, 9, 6, b"\0" * 6, 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<109I", 0, *[free] * 108)
    )
    return header + struct.pack("<128I", *fat, *[free] * (128 - len(fat))) + directory + body


def opened(
    data: bytes, name: str = "skjema.xlsx", content_type: str = XLSX, **kw: object
) -> Spreadsheet | Rejection:
    return open_attachment(name, content_type, data, LIMITS, **kw)  # type: ignore[arg-type]


def rejected(result: Spreadsheet | Rejection, code: str) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.code == code, (result.code, result.detail)
    assert result.message_nb and result.message_en and result.message("nb") == result.message_nb
    return result


# ---- what is accepted -------------------------------------------------------------------------


def test_a_filled_xlsx_is_accepted_unchanged(filled):
    """A normal .xlsx comes back as the same bytes, not converted, without macros."""
    data, _ = filled
    result = opened(data)
    assert result == Spreadsheet(data, "xlsx", converted=False, had_macros=False)


def test_the_opened_workbook_reads_like_the_bytes(form, filled):
    """read_form given intake's opened workbook reads what it reads from the bytes alone."""
    data, answers = filled
    result = opened(data)
    assert isinstance(result, Spreadsheet) and result.workbook is not None
    reading = read_form(result.xlsx, form, workbook=result.workbook)
    assert reading == read_form(data, form) and reading.answers == answers


def test_xlsm_is_read_like_xlsx_and_its_macros_are_noted(form, filled):
    """An .xlsm (VBA project + macro-enabled type) is accepted, had_macros set, answers unchanged."""
    data, answers = filled
    parts = members(data)
    parts["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0 pretend VBA that must never run"
    parts["[Content_Types].xml"] = str(parts["[Content_Types].xml"], "utf-8").replace(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    )
    xlsm = zipped(parts)
    result = opened(xlsm, "skjema.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12")
    assert isinstance(result, Spreadsheet)
    assert (result.original_format, result.had_macros, result.converted) == ("xlsm", True, False)
    assert read_form(result.xlsx, form).answers == answers


def test_a_given_converter_turns_ods_into_xlsx(filled):
    """With a converter, an .ods is handed to it and its .xlsx output is checked and returned."""
    data, _ = filled
    ods = zipped(
        {
            "mimetype": "application/vnd.oasis.opendocument.spreadsheet",
            "content.xml": "<office:document-content/>",
        }
    )
    calls = []

    def converter(blob: bytes, fmt: str) -> bytes:
        calls.append(fmt)
        return data

    result = opened(ods, "skjema.ods", "application/vnd.oasis.opendocument.spreadsheet", converter=converter)
    assert result == Spreadsheet(data, "ods", converted=True) and calls == ["ods"]


# ---- each rejection ----------------------------------------------------------------------------


def test_a_30_mb_blob_is_too_large():
    """Anything over max_attachment_bytes is refused before it is looked at."""
    result = rejected(opened(b"\0" * 30_000_000), "too_large")
    assert "30.0 MB" in result.message_en and "skjema.xlsx" in result.message_nb


def zip_with_zeros(size: int, *, filled: bytes) -> bytes:
    """The filled form plus xl/media/image1.png: ``size`` bytes of zeros, written in chunks."""
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members(filled).items():
            zf.writestr(name, content)
        with zf.open("xl/media/image1.png", "w") as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(size >> 20):
                fh.write(chunk)
    return out.getvalue()


def test_a_zip_bomb_is_refused_from_its_directory(filled):
    """A member of 200 MB of zeros (~200 KB packed) exceeds the unpacked limit: bomb."""
    data = zip_with_zeros(200 << 20, filled=filled[0])
    assert len(data) < 1_000_000
    assert "unpacks" in rejected(opened(data), "bomb").detail


def test_a_member_packed_too_tightly_is_a_bomb_even_under_the_total(filled):
    """40 MB of zeros stays under the 50 MB total, but its 1000:1 ratio marks it a bomb."""
    assert "compressed" in rejected(opened(zip_with_zeros(40 << 20, filled=filled[0])), "bomb").detail


def test_a_member_that_lies_about_its_size_is_never_unpacked_past_it(filled):
    """A directory claiming 1 KB for a 5 MB member: reading stops at 1 KB and the file is refused."""
    data = bytearray(zip_with_zeros(5 << 20, filled=filled[0]))
    at = data.rfind(b"PK\x01\x02")  # the last central directory entry: the zeros
    data[at + 24 : at + 28] = struct.pack("<I", 1024)  # its uncompressed size
    assert rejected(opened(bytes(data)), "corrupt")


def test_too_many_members_is_a_bomb():
    """A zip of 500 tiny members is refused before any is read."""
    assert rejected(opened(zipped({f"xl/m{i}.xml": "<a/>" for i in range(500)})), "bomb")


def test_billion_laughs_in_shared_strings_is_an_xml_attack(filled):
    """A DTD with nested entities in xl/sharedStrings.xml is refused before anything parses it."""
    parts = members(filled[0])
    parts["xl/sharedStrings.xml"] = (
        '<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "lol">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
        + ']><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&i;'
        "</t></si></sst>"
    )
    assert rejected(opened(zipped(parts)), "xml_attack")


def test_an_external_entity_anywhere_is_an_xml_attack(filled):
    """An external entity (XXE) in docProps/core.xml, a part we never read, is refused too."""
    parts = members(filled[0])
    parts["docProps/core.xml"] = (
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><cp:coreProperties>&e;</cp:coreProperties>'
    )
    assert rejected(opened(zipped(parts)), "xml_attack")


def test_a_password_protected_office_file_is_encrypted():
    """An OLE container with EncryptionInfo and EncryptedPackage streams is an encrypted workbook."""
    data = cfb({"EncryptionInfo": b"\4\0\4\0", "EncryptedPackage": b"\0" * 5000, "\x06DataSpaces": b""})
    assert {"EncryptionInfo", "EncryptedPackage"} <= set(cfb_names(data))
    result = rejected(opened(data), "encrypted")
    assert "passordbeskyttet" in result.message_nb and "Fjern passordet" in result.message_nb
    assert "password" in result.message_en


def test_a_password_protected_xls_is_encrypted():
    """An .xls whose workbook stream starts with BOF then FILEPASS is encrypted, not just old."""
    bof = struct.pack("<HH", 0x809, 16) + b"\0" * 16
    filepass = struct.pack("<HH", 0x2F, 6) + b"\0" * 6
    assert rejected(opened(cfb({"Workbook": (bof + filepass).ljust(5000, b"\0")}), "a.xls"), "encrypted")


def test_an_encrypted_ods_is_encrypted():
    """An .ods whose manifest carries encryption data is reported as password-protected."""
    ods = zipped(
        {
            "mimetype": "application/vnd.oasis.opendocument.spreadsheet",
            "META-INF/manifest.xml": "<manifest><file-entry><encryption-data/></file-entry></manifest>",
            "content.xml": b"\x8f\x02 ciphertext",
        }
    )
    assert rejected(opened(ods, "a.ods"), "encrypted")


def test_old_xls_without_a_converter_asks_for_xlsx():
    """An .xls (a Workbook stream) with no converter is refused with a request to save as .xlsx."""
    bof = struct.pack("<HH", 0x809, 16) + b"\0" * 16
    result = rejected(opened(cfb({"Workbook": bof.ljust(5000, b"\0")}), "skjema.xls"), "xls_old")
    assert ".xlsx" in result.message_nb and "Save As" in result.message_en


def test_ods_without_a_converter_asks_for_xlsx():
    """An .ods with no converter is refused with a request to save it as .xlsx."""
    ods = zipped(
        {
            "mimetype": "application/vnd.oasis.opendocument.spreadsheet",
            "content.xml": "<office:document-content/>",
        }
    )
    result = rejected(opened(ods, "skjema.ods"), "ods")
    assert "Excel 2007-365" in result.message_nb


def test_a_converter_without_soffice_means_no_conversion():
    """A converter that returns None (no LibreOffice) leads to the same clear request."""
    ods = zipped({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"})
    assert rejected(opened(ods, "s.ods", converter=lambda data, fmt: None), "ods")


@pytest.mark.parametrize(
    "converter",
    [
        lambda data, fmt: (_ for _ in ()).throw(RuntimeError("LibreOffice crashed")),
        lambda data, fmt: b"PK\x03\x04 not really a zip",
    ],
)
def test_a_failing_converter_is_corrupt_never_an_exception(converter):
    """A converter that raises or returns garbage gives corrupt for that attachment."""
    ods = zipped({"mimetype": "application/vnd.oasis.opendocument.spreadsheet"})
    assert rejected(opened(ods, "s.ods", converter=converter), "corrupt")


def test_a_docx_named_xlsx_is_not_a_spreadsheet():
    """A Word document is recognised by its parts even when it is named .xlsx."""
    docx = zipped(
        {
            "[Content_Types].xml": "<Types/>",
            "_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="r" Type="http://schemas.openxmlformats.org'
            '/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
            "</Relationships>",
            "word/document.xml": "<w:document/>",
        }
    )
    result = rejected(opened(docx, "skjema.xlsx"), "not_spreadsheet")
    assert "Word" in result.message_nb and "Word document" in result.message_en


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 100, "image"),
        (b"Enhet;Svar\nIE-IDI;Ja\n", "text file"),
        (cfb({"WordDocument": b""}), "Word"),
    ],
)
def test_other_files_are_not_spreadsheets(data, what):
    """PDFs, images, text and an old Word file are refused as not_spreadsheet, saying what they are."""
    result = rejected(opened(data, "vedlegg.bin", "application/octet-stream"), "not_spreadsheet")
    assert what in result.message_en


def test_excel_2003_xml_with_a_dtd_never_reaches_the_converter():
    """An XML spreadsheet (2003 format, often named .xls) carrying a DTD is refused unconverted."""
    data = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">&e;</Workbook>'
    )

    def converter(blob: bytes, fmt: str) -> bytes:
        raise AssertionError("the converter must not be called")

    assert rejected(opened(data, "skjema.xls", converter=converter), "xml_attack")


def test_a_truncated_xlsx_is_corrupt(filled):
    """The first half of an .xlsx (its zip directory missing) is corrupt."""
    assert rejected(opened(filled[0][: len(filled[0]) // 2]), "corrupt")


def test_garbage_named_xlsx_is_corrupt_and_garbage_named_otherwise_is_not_a_spreadsheet():
    """Unknown bytes under a spreadsheet's name are a damaged spreadsheet; under another, not one."""
    noise = bytes(range(256)) * 4
    assert rejected(opened(noise, "skjema.xlsx"), "corrupt")
    assert rejected(opened(noise, "noe.bin", "application/octet-stream"), "not_spreadsheet")


def test_a_package_without_its_workbook_is_corrupt(filled):
    """An .xlsx missing xl/workbook.xml is corrupt (missing parts)."""
    parts = members(filled[0])
    del parts["xl/workbook.xml"]
    assert rejected(opened(zipped(parts)), "corrupt")


def xlsb() -> bytes:
    """An Excel binary workbook as Excel saves one: the package of an .xlsx, but the workbook and
    its sheets are BIFF12 records (.bin), not XML."""
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    return zipped(
        {
            "[Content_Types].xml": '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.'
            'binary.macroEnabled.main"/><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Override PartName="/xl/worksheets/sheet1.bin" '
            'ContentType="application/vnd.ms-excel.worksheet"/></Types>',
            "_rels/.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            'Target="xl/workbook.bin"/></Relationships>',
            "xl/_rels/workbook.bin.rels": '<Relationships xmlns="http://schemas.openxmlformats.org/'
            f'package/2006/relationships"><Relationship Id="rId1" Type="{rel}/worksheet" '
            'Target="worksheets/sheet1.bin"/></Relationships>',
            # BrtBeginBook, BrtFileVersion ("xl"), BrtBeginBundleShs, BrtBundleSh, BrtEndBook
            "xl/workbook.bin": bytes.fromhex("8301 00 8001 0c 0000000002000000786c0000")
            + bytes.fromhex("8f01 00 9c01 10 000000000100000003000000720049006400 8401 00"),
            "xl/worksheets/sheet1.bin": bytes.fromhex(
                "8101 00 9401 10 0000000000000000ff000000ff000000 8201 00"
            ),
        }
    )


def test_an_xlsb_is_refused_with_a_request_for_xlsx():
    """An .xlsb is named for what it is (not "damaged"), whatever it is called, and the sender is
    asked to save it as .xlsx."""
    for name in ("skjema.xlsb", "skjema.xlsx"):
        result = rejected(opened(xlsb(), name), "xlsb")
        assert (
            ".xlsb" in result.message_nb and "Save As" in result.message_en and ".xlsx" in result.message_en
        )


def test_sender_file_names_are_cleaned_in_messages():
    """Control characters and very long names never reach the message."""
    result = opened(b"%PDF-1.4", "a\r\nBcc: x@y\x00" + "z" * 200 + ".pdf", "application/pdf")
    assert isinstance(result, Rejection)
    assert "\n" not in result.message_en and "\x00" not in result.message_nb
    assert len(result.message_en) < 400


# ---- real LibreOffice ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def libreoffice():
    if shutil.which("soffice") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("soffice is not installed (apt-get install libreoffice-calc-nogui)")
        pytest.skip("soffice is not installed")


def save_as(data: bytes, fmt: str) -> bytes:
    """What a leader's LibreOffice would send: ``data`` saved as .ods or .xls."""
    work = Path(tempfile.mkdtemp(prefix="lo-intake-", dir="/tmp"))
    try:
        work.chmod(0o755)
        (work / "skjema.xlsx").write_bytes(data)
        subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{work}/profile",
                "--headless",
                "--norestore",
                "--convert-to",
                fmt,
                "--outdir",
                str(work / "out"),
                str(work / "skjema.xlsx"),
            ],
            env=dict(os.environ, HOME=str(work)),
            capture_output=True,
            timeout=180,
            check=True,
        )
        return (work / "out" / f"skjema.{fmt}").read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.libreoffice
@pytest.mark.parametrize("fmt", ["ods", "xls"])
def test_ods_and_xls_are_converted_by_libreoffice_and_read_back(libreoffice, form, filled, fmt):
    """An .ods or .xls saved by LibreOffice converts to .xlsx and reads back the same answers."""
    data, answers = filled
    original = save_as(data, fmt)
    assert original[:2] != b"PK" if fmt == "xls" else original[:2] == b"PK"
    result = opened(original, f"skjema.{fmt}", "application/octet-stream", converter=soffice_converter)
    assert isinstance(result, Spreadsheet), result
    assert (result.original_format, result.converted) == (fmt, True)
    reading = read_form(result.xlsx, form)
    assert reading.answers == answers and reading.problems == []
    assert (reading.reference, reading.stamp) == (
        read_form(data, form).reference,
        read_form(data, form).stamp,
    )
