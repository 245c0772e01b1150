"""A zip package (.xlsx, .xlsm, .ods) and its XML parts, opened as hostile input.

Every attachment is untrusted, so before anything parses it:

- zip bombs: the member count, each member's unpacked size and ratio, and the total are checked
  in the central directory, and again while reading - a member never yields more than it
  declared (zipfile stops there and checks the CRC), and the bytes actually unpacked are counted
  against the budget, whatever the directory said;
- XML attacks: a part containing ``<!DOCTYPE`` or ``<!ENTITY`` is refused before it is parsed.
  The part is decoded first and the *text* is searched and then parsed (expat reads a ``str`` as
  UTF-8 whatever its declaration says), so no encoding trick - UTF-16, a declared EBCDIC codec -
  can hide a DTD from the check. Without a DTD no entity can be declared, so neither billion
  laughs nor external entities are possible;
- memory: a part with more tags than any spreadsheet we read could need is refused unparsed.

Every failure is a ``PackageError`` whose ``code`` says which it was. ``xlsx.cells`` reads cells
on top of this; ``intake`` uses it to look inside any attachment that is a zip.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from types import TracebackType
from typing import Literal
from xml.etree import ElementTree as ET

from service.errors import SkjemapostError

ErrorCode = Literal["not_zip", "corrupt", "bomb", "xml_attack", "encrypted"]
#: tags one parse may hold; a parsed element costs ~100 bytes, so past this a part is a memory
#: bomb (a filled form's sheet has ~1,000 tags, 1,000 rows x 30 filled columns ~100,000)
MAX_TAGS = 2_000_000
_XMLISH = (".xml", ".rels", ".vml")


class PackageError(SkjemapostError, ValueError):
    """The bytes are not a readable package, or are hostile; ``code`` says which."""

    def __init__(self, message: str, *, code: ErrorCode, part: str = "") -> None:
        self.code: ErrorCode = code
        self.part = part
        super().__init__(f"{part}: {message}" if part else message)


@dataclass(frozen=True)
class ZipLimits:
    max_unpacked: int = 50_000_000
    max_ratio: float = 100  # unpacked/compressed, per member
    max_members: int = 200
    #: a member smaller than this is never a bomb for its ratio: small, repetitive XML may
    #: compress 100:1 and is harmless, while the total still holds
    ratio_floor: int = 1_000_000


@contextmanager
def guarded(part: str = "") -> Iterator[None]:
    """Turn whatever zipfile, zlib and the XML parser raise on bad input into PackageError."""
    try:
        yield
    except PackageError:
        raise
    except RuntimeError as exc:  # zipfile: "File ... is encrypted, password required"
        raise PackageError(f"cannot be read: {exc}", code="encrypted", part=part) from exc
    except (
        ET.ParseError,
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        LookupError,
        NotImplementedError,
        OverflowError,
        TypeError,
    ) as exc:
        raise PackageError(f"cannot be read: {type(exc).__name__}: {exc}", code="corrupt", part=part) from exc


class Package:
    """A zip opened within limits; part names are case-insensitive (as OPC says)."""

    def __init__(self, data: bytes, limits: ZipLimits = ZipLimits()) -> None:
        try:
            self._zf = zipfile.ZipFile(BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise PackageError(f"not a zip archive: {exc}", code="not_zip") from exc
        self.limits = limits
        infos = self._zf.infolist()
        with guarded():
            _check_sizes(infos, limits)
        self._infos = {i.filename.lower(): i for i in infos}
        self._spent: dict[str, int] = {}  # bytes actually unpacked, per member
        #: XML parts already decoded and checked, by lower-case name: intake checks every part
        #: and the reader then reads the same parts, so each is inflated and scanned only once
        #: (the cost: the package's XML text is held while it lives, at most ``max_unpacked``)
        self._texts: dict[str, str] = {}

    @property
    def names(self) -> list[str]:
        return [i.filename for i in self._infos.values()]

    def has(self, name: str) -> bool:
        return name.lower() in self._infos

    def read(self, name: str) -> bytes:
        info = self._infos.get(name.lower())
        if info is None:
            raise PackageError("missing from the archive", code="corrupt", part=name)
        budget = self.limits.max_unpacked - sum(n for k, n in self._spent.items() if k != info.filename)
        with guarded(name), self._zf.open(info) as fh:
            data = fh.read(min(info.file_size, budget) + 1)
        if len(data) > budget:
            raise PackageError("unpacks to more than allowed", code="bomb", part=name)
        if len(data) != info.file_size:
            raise PackageError("unpacks to another size than it declares", code="corrupt", part=name)
        self._spent[info.filename] = len(data)
        return data

    def xml(self, name: str) -> str:
        """The part as text, refused if it carries a DTD (see ``xml_text``); decoded once."""
        key = name.lower()
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = xml_text(self.read(name), name)
        return text

    def check_sizes(self, limits: ZipLimits) -> None:
        """Check the directory against ``limits`` as well as those it was opened with.

        For a reader handed a package someone else opened: its own limits must hold as they
        would had it opened the bytes itself.
        """
        with guarded():
            _check_sizes(self._zf.infolist(), limits)

    def check_members(self) -> None:
        """Unpack every member within the budget; refuse any XML part that carries a DTD.

        For a package that another program (LibreOffice) will open, or that is kept: this
        checks what the directory claims against what the members really hold. The XML parts'
        text is kept (see ``xml``), so reading them afterwards unpacks nothing again.
        """
        for name in self.names:
            if name.lower().endswith(_XMLISH):
                self.xml(name)
            elif not name.endswith("/"):
                self.read(name)

    def rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (type, target part) of ``part`` ("" for the package's own)."""
        folder, base = posixpath.split(part)
        rels_part = posixpath.join(folder, "_rels", base + ".rels")
        out: dict[str, tuple[str, str]] = {}
        for rel in parse(self.xml(rels_part), rels_part) if self.has(rels_part) else ():
            target, rid = rel.get("Target"), rel.get("Id")
            if rel.get("TargetMode") != "External" and target and rid:
                path = target if target.startswith("/") else posixpath.join("/", folder, target)
                out[rid] = (rel.get("Type") or "", posixpath.normpath(path).lstrip("/"))
        return out

    def office_document(self) -> str | None:
        """The main part (xl/workbook.xml, word/document.xml...) named by the package's rels."""
        for kind, target in self.rels("").values():
            if kind.endswith("/officeDocument") and self.has(target):
                return target
        return None

    def close(self) -> None:
        self._zf.close()

    def __enter__(self) -> Package:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _check_sizes(infos: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    if len(infos) > limits.max_members:
        raise PackageError(f"{len(infos)} members, more than {limits.max_members}", code="bomb")
    for info in infos:
        if info.flag_bits & 0x1:
            raise PackageError("the zip is password-protected", code="encrypted", part=info.filename)
    total = sum(info.file_size for info in infos)
    if total > limits.max_unpacked:
        raise PackageError(f"unpacks to {total} bytes, more than {limits.max_unpacked}", code="bomb")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_floor and ratio > limits.max_ratio:
            raise PackageError(f"compressed {ratio:.0f}:1", code="bomb", part=info.filename)


_DECLARED = re.compile(rb"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")


def xml_text(data: bytes, part: str = "") -> str:
    """Decode an XML part; refuse it if it declares a DTD or an entity."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        encoding = "utf-16"
    elif data[:4] in (b"<\0?\0", b"\0<\0?"):
        encoding = "utf-16-le" if data[0] else "utf-16-be"
    else:
        m = _DECLARED.match(data)
        encoding = m[1].decode("ascii") if m else "utf-8"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise PackageError(f"cannot be decoded: {exc}", code="corrupt", part=part) from exc
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise PackageError("declares a DTD or entities; refused unparsed", code="xml_attack", part=part)
    return text


def parse(text: str, part: str = "") -> ET.Element:
    """Parse text that came through ``xml_text``, refusing a memory bomb first."""
    if text.count("<") > MAX_TAGS:
        raise PackageError(f"more than {MAX_TAGS} tags", code="bomb", part=part)
    return ET.fromstring(text)
