"""Open an emailed attachment as an .xlsx we can read, or say clearly why not.

Leaders reply from every kind of mail client and office suite, and an attachment is untrusted, so
every one gets a defined outcome (DESIGN.md "Mail"): a ``Spreadsheet`` holding .xlsx bytes that
``forms.read`` can read, or a ``Rejection`` whose code a program acts on and whose nb and en
messages tell a person what to do. Nothing here raises: whatever the zip, XML or converter code
throws on one attachment becomes ``corrupt`` for that attachment.

The kind is decided by content, never by name alone: an OLE compound file (.xls, an encrypted
.xlsx, .doc, .msg) by its directory, a zip by its parts (.xlsx/.xlsm, .ods, .docx, .pptx), and
PDF, images and text by their magic bytes. The name and content type only decide, for bytes that
are nothing known, whether they were a damaged spreadsheet or something else.

.xlsm is read like .xlsx; its macros are never run (``had_macros`` notes them). .ods and .xls are
converted when a converter is given (``soffice_converter``: LibreOffice headless, ~1.5 s);
without one they are refused with a request to send .xlsx, so the default path needs no
LibreOffice. An .xlsb (Excel's binary workbook, records instead of XML) is refused with the same
request. `poll` and `form check` open a file through here alike. A zip is checked for bombs and every member unpacked within the limits, and every
XML part for a DTD, before anything (LibreOffice included) parses it; see ``xlsx.safezip``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from service.models import Language
from service.xlsx.cells import Workbook
from service.xlsx.safezip import Package, PackageError, ZipLimits, xml_text

OriginalFormat = Literal["xlsx", "xlsm", "ods", "xls"]
RejectionCode = Literal[
    "too_large", "bomb", "encrypted", "xls_old", "xlsb", "ods", "not_spreadsheet", "corrupt", "xml_attack"
]
#: (bytes, "ods" or "xls") -> the same workbook as .xlsx bytes; None when it cannot convert at all
Converter = Callable[[bytes, str], bytes | None]


@dataclass(frozen=True)
class Limits:
    max_attachment_bytes: int = 10_000_000
    max_unpacked_bytes: int = 50_000_000
    #: unpacked/compressed per zip member, above 1 MB (see safezip.ZipLimits.ratio_floor)
    max_ratio: float = 100
    #: the rows a reader scans per sheet; intake reads no cells, forms.read caps at the same 1,000
    max_rows: int = 1000
    max_members: int = 200

    def zip_limits(self) -> ZipLimits:
        return ZipLimits(self.max_unpacked_bytes, self.max_ratio, self.max_members)


@dataclass(frozen=True)
class Spreadsheet:
    """An attachment as .xlsx bytes ready for ``forms.read.read_form``.

    ``workbook`` is those bytes as intake opened them, every member already unpacked and checked;
    ``read_form(xlsx, form, workbook=workbook)`` reads from it instead of unzipping it all again.
    """

    xlsx: bytes
    original_format: OriginalFormat
    converted: bool
    had_macros: bool = False  # an .xlsm's VBA project: kept in the bytes, never run
    workbook: Workbook | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Rejection:
    """Why an attachment cannot be read, for a program (``code``) and for the sender."""

    code: str  # one of RejectionCode here; callers may add their own (forms.read's codes)
    message_nb: str
    message_en: str
    detail: str = ""  # for the operator's log: what exactly was found

    def message(self, lang: Language) -> str:
        return self.message_nb if lang == "nb" else self.message_en


_MESSAGES: dict[RejectionCode, tuple[str, str]] = {
    "too_large": (
        "Vedlegget {name} er for stort ({size}; vi tar imot opptil {limit}). Send bare det "
        "utfylte skjemaet som .xlsx-fil, uten innlimte bilder eller ekstra ark.",
        "The attachment {name} is too large ({size}; we accept up to {limit}). Please send "
        "only the filled-in form as an .xlsx file, without pasted images or extra sheets.",
    ),
    "bomb": (
        "Vi åpnet ikke {name}: filen pakker seg ut til langt mer enn et utfylt skjema kan være. "
        "Fyll ut skjemaet du fikk fra oss, lagre det som .xlsx og send det på nytt.",
        "We did not open {name}: it unpacks to far more than a filled-in form can be. Please "
        "fill in the form we sent you, save it as .xlsx and send it again.",
    ),
    "encrypted": (
        "Filen {name} er passordbeskyttet, så vi kan ikke lese den. Fjern passordet (Excel: Fil > "
        "Info > Beskytt arbeidsbok > Krypter med passord, tøm feltet; LibreOffice: Fil > Lagre "
        "som, uten «Lagre med passord») og send skjemaet på nytt.",
        "The file {name} is password-protected, so we cannot read it. Please remove the password "
        "(Excel: File > Info > Protect Workbook > Encrypt with Password, clear the box; "
        "LibreOffice: File > Save As, without “Save with password”) and send the form again.",
    ),
    "xls_old": (
        "Filen {name} er i det gamle Excel-formatet (.xls), som vi ikke kan lese. Åpne den, velg "
        "Fil > Lagre som > Excel-arbeidsbok (*.xlsx), og send den nye filen.",
        "The file {name} is in the old Excel format (.xls), which we cannot read. Please open "
        "it, choose File > Save As > Excel Workbook (*.xlsx), and send the new file.",
    ),
    "xlsb": (
        "Filen {name} er en binær Excel-arbeidsbok (.xlsb), som vi ikke kan lese. Åpne den, velg "
        "Fil > Lagre som > Excel-arbeidsbok (*.xlsx), og send den nye filen.",
        "The file {name} is an Excel binary workbook (.xlsb), which we cannot read. Please open "
        "it, choose File > Save As > Excel Workbook (*.xlsx), and send the new file.",
    ),
    "ods": (
        "Filen {name} er i OpenDocument-format (.ods), som vi ikke kan lese. I LibreOffice: velg "
        "Fil > Lagre som, filtype «Excel 2007-365 (.xlsx)», svar «Bruk Excel 2007-365!», og "
        "send den nye filen.",
        "The file {name} is in OpenDocument format (.ods), which we cannot read. In "
        "LibreOffice, choose File > Save As, file type “Excel 2007-365 (.xlsx)”, answer “Use "
        "Excel 2007-365!”, and send the new file.",
    ),
    "not_spreadsheet": (
        "Vedlegget {name} er ikke et regneark (det ser ut som {what}). Send det utfylte "
        "skjemaet som .xlsx-fil, som vedlegg i svaret.",
        "The attachment {name} is not a spreadsheet (it looks like {what}). Please send the "
        "filled-in form as an .xlsx file, attached to your reply.",
    ),
    "corrupt": (
        "Vi klarte ikke å åpne {name}: filen ser ut til å være skadet eller ufullstendig. Åpne "
        "skjemaet, lagre det på nytt som .xlsx og send det igjen.",
        "We could not open {name}: the file seems damaged or incomplete. Please open the form, "
        "save it again as .xlsx and send it again.",
    ),
    "xml_attack": (
        "Vi åpnet ikke {name}, fordi filen inneholder noe et regneark ikke skal ha og som vi av "
        "sikkerhetsgrunner ikke leser. Fyll ut skjemaet du fikk fra oss i Excel eller "
        "LibreOffice, lagre det som .xlsx og send det på nytt.",
        "We did not open {name} because it contains something a spreadsheet should not have, "
        "which we do not read for security reasons. Please fill in the form we sent you in "
        "Excel or LibreOffice, save it as .xlsx and send it again.",
    ),
}
#: what a file that is not a spreadsheet looks like, in nb and en
_KINDS = {
    "word": ("et Word-dokument", "a Word document"),
    "pdf": ("en PDF", "a PDF"),
    "powerpoint": ("en PowerPoint-presentasjon", "a PowerPoint presentation"),
    "opendocument": ("et tekst- eller presentasjonsdokument", "a text or presentation document"),
    "image": ("et bilde", "an image"),
    "text": ("en tekstfil", "a text file"),
    "email": ("en e-post", "an email message"),
    "zip": ("et zip-arkiv", "a zip archive"),
    "other": ("en annen filtype", "another kind of file"),
}


def _reject(code: RejectionCode, filename: str, detail: str = "", **values: str) -> Rejection:
    # the name comes from the sender: no control characters, and short enough to read
    name = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", filename).split())[:80]
    nb, en = _MESSAGES[code]
    what = _KINDS.get(values.pop("what", "other"), _KINDS["other"])
    return Rejection(
        code,
        nb.format(name=f"«{name}»" if name else "(uten navn)", what=what[0], **values),
        en.format(name=f"“{name}”" if name else "(no name)", what=what[1], **values),
        detail,
    )


def open_attachment(
    filename: str, content_type: str, data: bytes, limits: Limits, *, converter: Converter | None = None
) -> Spreadsheet | Rejection:
    """The attachment as .xlsx bytes, or why it cannot be read (see the module doc)."""
    try:
        return _open(filename, content_type, data, limits, converter)
    except PackageError as exc:
        code: RejectionCode = "corrupt" if exc.code == "not_zip" else exc.code
        return _reject(code, filename, str(exc))
    except Exception as exc:  # one bad attachment must never stop the inbox
        return _reject("corrupt", filename, f"{type(exc).__name__}: {exc}")


def _open(
    filename: str, content_type: str, data: bytes, limits: Limits, converter: Converter | None
) -> Spreadsheet | Rejection:
    if len(data) > limits.max_attachment_bytes:
        return _reject(
            "too_large",
            filename,
            f"{len(data)} bytes",
            size=_mb(len(data)),
            limit=_mb(limits.max_attachment_bytes),
        )
    if data.startswith(_CFB_MAGIC):
        return _compound(filename, content_type, data, limits, converter)
    if data.startswith(b"PK"):
        return _zip(filename, content_type, data, limits, converter)
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return _reject("not_spreadsheet", filename, f"magic {magic!r}", what=what)
    if head.startswith(b"<") and b"urn:schemas-microsoft-com:office:spreadsheet" in head:
        xml_text(data, filename)  # Excel 2003 XML (often named .xls): no DTD may reach LibreOffice
        return _convert("xls", filename, data, limits, converter)
    if _looks_like_spreadsheet(filename, content_type):
        return _reject("corrupt", filename, "unknown content under a spreadsheet's name")
    what = "text" if _is_text(data[:4096]) else "other"
    return _reject("not_spreadsheet", filename, "unknown content", what=what)


def _zip(
    filename: str,
    content_type: str,
    data: bytes,
    limits: Limits,
    converter: Converter | None,
    *,
    converted_from: OriginalFormat | None = None,
) -> Spreadsheet | Rejection:
    # not closed: it holds only memory, and the Spreadsheet hands it on to the reader
    package = Package(data, limits.zip_limits())
    mimetype = package.read("mimetype")[:100] if package.has("mimetype") else b""
    main = package.office_document() or ("xl/workbook.xml" if package.has("xl/workbook.xml") else None)
    if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
        manifest = "META-INF/manifest.xml"
        if package.has(manifest) and "encryption-data" in package.xml(manifest):
            return _reject("encrypted", filename, "an encrypted OpenDocument file")
        package.check_members()  # LibreOffice will open it: nothing hostile may reach it
        return _convert("ods", filename, data, limits, converter)
    if mimetype.startswith(b"application/vnd.oasis.opendocument"):
        return _reject("not_spreadsheet", filename, mimetype.decode("ascii", "replace"), what="opendocument")
    if (main or "").endswith(".bin") or package.has("xl/workbook.bin"):
        # Excel's binary workbook: the same package, but its parts are records, not XML
        return _reject("xlsb", filename, main or "xl/workbook.bin")
    if main is None or not main.startswith("xl/"):
        for part, what in (("word/document.xml", "word"), ("ppt/presentation.xml", "powerpoint")):
            if package.has(part) or main == part:
                return _reject("not_spreadsheet", filename, part, what=what)
    if main is None:
        if package.has("[Content_Types].xml") or _looks_like_spreadsheet(filename, content_type):
            return _reject("corrupt", filename, "no workbook part")
        return _reject("not_spreadsheet", filename, "a zip without a workbook", what="zip")
    package.check_members()
    book = Workbook(package)
    if not book.sheets:
        return _reject("corrupt", filename, "the workbook lists no readable sheet")
    types = package.xml("[Content_Types].xml") if package.has("[Content_Types].xml") else ""
    macros = any(n.lower().endswith("vbaproject.bin") for n in package.names)
    macro_enabled = macros or "macroEnabled" in types or filename.lower().endswith(".xlsm")
    if converted_from is not None:
        return Spreadsheet(data, converted_from, converted=True, had_macros=macros, workbook=book)
    return Spreadsheet(
        data, "xlsm" if macro_enabled else "xlsx", converted=False, had_macros=macros, workbook=book
    )


def _convert(
    fmt: Literal["ods", "xls"], filename: str, data: bytes, limits: Limits, converter: Converter | None
) -> Spreadsheet | Rejection:
    code: RejectionCode = "ods" if fmt == "ods" else "xls_old"
    out = converter(data, fmt) if converter is not None else None
    if out is None:
        return _reject(code, filename, "no converter")
    result = _zip(filename, "", out, limits, None, converted_from=fmt)
    if isinstance(result, Rejection):
        return _reject("corrupt", filename, f"the converted file: {result.code} {result.detail}")
    return result


# ---- content sniffing -------------------------------------------------------------------------

_CFB_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
_MAGIC = [
    (b"%PDF", "pdf"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"II*\0", "image"),
    (b"MM\0*", "image"),
    (b"BM", "image"),
    (b"RIFF", "image"),
    (b"{\\rtf", "word"),
    (b"Received:", "email"),
    (b"From:", "email"),
    (b"Return-Path:", "email"),
    (b"MIME-Version:", "email"),
]


def _looks_like_spreadsheet(filename: str, content_type: str) -> bool:
    suffix = os.path.splitext(filename.lower().strip())[1]
    kind = content_type.lower()
    return suffix in {".xlsx", ".xlsm", ".xltx", ".xltm", ".xls", ".ods"} or any(
        word in kind for word in ("spreadsheet", "excel", "opendocument")
    )


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut in two at the end
            return False
    return b"\0" not in head


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def _compound(
    filename: str, content_type: str, data: bytes, limits: Limits, converter: Converter | None
) -> Spreadsheet | Rejection:
    """An OLE compound file: what its directory holds says what it is."""
    entries, sector = _cfb(data)
    names = {name.lower(): (start, size) for name, start, size in entries}
    if {"encryptioninfo", "encryptedpackage"} & names.keys():
        return _reject("encrypted", filename, "EncryptionInfo/EncryptedPackage streams")
    book = names.get("workbook") or names.get("book")
    if book is not None:
        # a password-protected .xls: a FILEPASS record (0x2F) right after the BOF (BIFF8)
        start, size = book
        head = sector(start) if size >= 4096 else b""  # smaller streams live in the mini stream
        after_bof = 4 + int.from_bytes(head[2:4], "little")
        if len(head) >= after_bof + 2 and head[after_bof : after_bof + 2] == b"\x2f\x00":
            return _reject("encrypted", filename, "FILEPASS in the .xls workbook stream")
        return _convert("xls", filename, data, limits, converter)
    for stream, what in (
        ("worddocument", "word"),
        ("powerpoint document", "powerpoint"),
        ("__properties_version1.0", "email"),
    ):
        if stream in names:
            return _reject("not_spreadsheet", filename, stream, what=what)
    code: RejectionCode = "corrupt" if _looks_like_spreadsheet(filename, content_type) else "not_spreadsheet"
    return _reject(code, filename, f"a compound file with {sorted(names)[:8]}")


def cfb_names(data: bytes) -> list[str]:
    """The stream and storage names in an OLE compound file; ValueError if it is too broken."""
    return [name for name, _start, _size in _cfb(data)[0]]


def _cfb(data: bytes) -> tuple[list[tuple[str, int, int]], Callable[[int], bytes]]:
    """The directory of an OLE compound file (MS-CFB): (name, first sector, size) per entry,
    and a reader of one sector. Only the FAT and the directory chain are walked."""
    if len(data) < 512 or not data.startswith(_CFB_MAGIC):
        raise ValueError("not a compound file")
    shift = int.from_bytes(data[30:32], "little")
    if shift not in (9, 12):
        raise ValueError(f"sector shift {shift}")
    size, words, end = 1 << shift, (1 << shift) // 4, 0xFFFFFFFE

    def sector(n: int) -> bytes:
        at = (n + 1) * size
        if n >= 0xFFFFFFFA or at + size > len(data):
            raise ValueError(f"sector {n} is outside the file")
        return data[at : at + size]

    difat = list(struct.unpack("<109I", data[76:512]))
    n, hops = int.from_bytes(data[68:72], "little"), 0
    while n < 0xFFFFFFFA:  # further DIFAT sectors, each ending with the next one's number
        hops += 1
        if hops > len(data) // size:
            raise ValueError("the DIFAT chain loops")
        more = struct.unpack(f"<{words}I", sector(n))
        difat, n = difat + list(more[:-1]), more[-1]
    fat: list[int] = []
    for n in difat[: int.from_bytes(data[44:48], "little")]:
        fat.extend(struct.unpack(f"<{words}I", sector(n)))
    entries, seen = [], set()
    n = int.from_bytes(data[48:52], "little")
    while n != end:
        if n in seen or n >= len(fat):
            raise ValueError("the directory chain is broken")
        seen.add(n)
        block = sector(n)
        for at in range(0, size, 128):
            entry = block[at : at + 128]
            length = int.from_bytes(entry[64:66], "little")
            if entry[66] in (1, 2, 5) and 2 <= length <= 64:
                entries.append(
                    (
                        entry[: length - 2].decode("utf-16-le", "replace"),
                        int.from_bytes(entry[116:120], "little"),
                        int.from_bytes(entry[120:124], "little"),
                    )
                )
        n = fat[n]
    return entries, sector


# ---- converting with LibreOffice ---------------------------------------------------------------

#: where soffice is looked for; fixed, so the service's environment does not decide what runs
SOFFICE_PATH = "/usr/local/bin:/usr/bin:/bin"


def soffice_converter(
    data: bytes, original_format: str, *, timeout: float = 60.0, executable: str = "soffice"
) -> bytes | None:
    """.ods or .xls bytes as .xlsx bytes, through LibreOffice headless; None without soffice.

    Each call gets a fresh folder under /tmp (mode 755, removed afterwards) holding the input, the
    output, LibreOffice's profile and its HOME, so calls share nothing and nothing lands in the
    service user's home. A run past ``timeout`` is killed with its process group. LibreOffice's
    default macro security does not run document macros, and nothing is updated from links.
    Raises RuntimeError when LibreOffice fails or produces nothing.
    """
    exe = shutil.which(executable, path=SOFFICE_PATH)
    if exe is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="skjemapost-lo-", dir="/tmp"))
    try:
        work.chmod(0o755)
        src = work / f"attachment.{'ods' if original_format == 'ods' else 'xls'}"
        src.write_bytes(data)
        command = [
            exe,
            f"-env:UserInstallation=file://{work}/profile",
            "--headless",
            "--norestore",
            "--nologo",
            "--nolockcheck",
            "--nodefault",
            "--convert-to",
            "xlsx:Calc MS Excel 2007 XML",
            "--outdir",
            str(work / "out"),
            str(src),
        ]
        env = {"HOME": str(work), "PATH": SOFFICE_PATH, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # soffice.bin is a grandchild: kill the group
            proc.wait()
            raise RuntimeError(f"LibreOffice took more than {timeout:.0f} s") from None
        result = work / "out" / "attachment.xlsx"
        if not result.is_file():
            raise RuntimeError(f"LibreOffice exited with {code} and wrote nothing")
        return result.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)
