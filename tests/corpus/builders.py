"""Byte-exact building blocks for the sample-mail corpus: MIME parts, header encodings the way
real clients write them, Outlook's TNEF (winmail.dat), OLE compound files, and the odd
attachments (zip bomb, billion laughs, encrypted, truncated). Everything is deterministic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import quopri
import re
import struct
import zipfile
from urllib.parse import quote

CRLF = "\r\n"
FIXED_ZIP_TIME = (2020, 12, 10, 9, 0, 0)


# ---- deterministic identifiers -----------------------------------------------------------------


def digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode()).digest()


def hexid(n: int, *parts: str) -> str:
    return digest(*parts).hex()[:n]


def upper_hex(n: int, *parts: str) -> str:
    return hexid(n, *parts).upper()


def guid(*parts: str) -> str:
    h = upper_hex(32, *parts)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def thread_index(*parts: str) -> str:
    """Outlook's Thread-Index: 22 bytes (FILETIME prefix + GUID), base64."""
    return base64.b64encode(b"\x01\xd6\xce" + digest("thread", *parts)[:19]).decode()


# ---- header encodings ----------------------------------------------------------------------------


def ew_b(text: str, charset: str = "utf-8", chunk: int = 36) -> str:
    """RFC 2047 B words, split every ``chunk`` bytes, even inside a character (as Outlook does)."""
    data = text.encode(charset)
    words = [
        f"=?{charset}?B?{base64.b64encode(data[i : i + chunk]).decode()}?="
        for i in range(0, len(data), chunk)
    ]
    return (CRLF + " ").join(words)


def ew_q(text: str, charset: str = "utf-8", chunk: int = 45) -> str:
    """RFC 2047 Q words (space as underscore)."""
    data = text.encode(charset)
    out, word = [], ""
    for byte in data:
        ch = chr(byte)
        enc = "_" if ch == " " else ch if (ch.isalnum() and byte < 128) or ch in "-.!*+/" else f"={byte:02X}"
        if len(word) + len(enc) > chunk:
            out.append(word)
            word = ""
        word += enc
    out.append(word)
    return (CRLF + " ").join(f"=?{charset}?Q?{w}?=" for w in out)


def rfc2231(name: str, value: str, continuation: int = 0, sep: str = ";" + CRLF + "\t") -> str:
    """``name*=utf-8''…`` or, with ``continuation`` > 0, ``name*0*=…; name*1*=…`` pieces."""
    encoded = quote(value, safe="")
    if not continuation:
        return f"{name}*=utf-8''{encoded}"
    pieces, at = [], 0
    while at < len(encoded):
        end = min(at + continuation, len(encoded))
        while "%" in encoded[max(at, end - 2) : end]:  # never cut a %XX escape
            end -= 1
        pieces.append(encoded[at:end])
        at = end
    return sep.join(f"{name}*{i}*={'utf-8' + chr(39) * 2 if i == 0 else ''}{p}" for i, p in enumerate(pieces))


# ---- bodies --------------------------------------------------------------------------------------


def qp(text: str, charset: str = "utf-8") -> bytes:
    data = quopri.encodestring(text.replace("\r\n", "\n").encode(charset))
    return data.replace(b"\n", b"\r\n")


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def eightbit(text: str, charset: str) -> bytes:
    return text.replace("\r\n", "\n").encode(charset).replace(b"\n", b"\r\n")


def part(headers: list[str], body: bytes) -> bytes:
    """A MIME part: its header lines, an empty line, the body (already encoded)."""
    return (CRLF.join(headers) + CRLF + CRLF).encode("utf-8") + body


def multipart(
    subtype: str,
    boundary: str,
    parts: list[bytes],
    *,
    params: str = "",
    preamble: str = "",
    extra: list[str] | None = None,
    fold: str = ";" + CRLF + "\t",
) -> bytes:
    head = [f'Content-Type: multipart/{subtype}{fold}boundary="{boundary}"{params}', *(extra or [])]
    body = preamble.encode()
    for p in parts:
        body += f"{CRLF}--{boundary}{CRLF}".encode() + p
    body += f"{CRLF}--{boundary}--{CRLF}".encode()
    return part(head, body)


def message(headers: list[str], body: bytes) -> bytes:
    """Top-level headers, then the top MIME part (which starts with its own Content-Type)."""
    return (CRLF.join(headers) + CRLF).encode("utf-8") + body


def quote_lines(text: str, prefix: str = "> ") -> str:
    return "\n".join((prefix + line).rstrip() for line in text.strip().splitlines())


# ---- workbooks and other files -------------------------------------------------------------------

_CORE_DATES = re.compile(rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)")


def stable_zip(data: bytes, when: tuple[int, int, int, int, int, int] = FIXED_ZIP_TIME) -> bytes:
    """The same zip with fixed member times and fixed document dates, so builds repeat exactly."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = src.read(info)
            if info.filename == "docProps/core.xml":
                member = _CORE_DATES.sub(rb"\g<1>2020-11-20T08:00:00Z\g<3>", member)
            fixed = zipfile.ZipInfo(info.filename, when)
            fixed.compress_type, fixed.external_attr = zipfile.ZIP_DEFLATED, info.external_attr
            dst.writestr(fixed, member, compresslevel=6)
    return out.getvalue()


def zip_of(members: list[tuple[str, bytes]], stored: tuple[str, ...] = ("mimetype",)) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return out.getvalue()


def replace_member(xlsx: bytes, name: str, change: object) -> bytes:
    """The workbook with member ``name`` passed through ``change`` (bytes -> bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == name:
                data = change(data)  # type: ignore[operator]
            dst.writestr(info, data)
    return out.getvalue()


def zip_bomb(unpacked: int = 101 * 2**20) -> bytes:
    """A small .xlsx whose worksheet inflates to ``unpacked`` bytes: one cell holding a string of
    that many "A"s, which deflate squeezes about a thousandfold."""
    out = io.BytesIO()
    chunk = b"A" * 2**20
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in _MINIMAL_XLSX:
            zf.writestr(zipfile.ZipInfo(name, FIXED_ZIP_TIME), data, compress_type=zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", FIXED_ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as sheet:
            head = (
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns='
                b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">'
                b'<c r="A1" t="inlineStr"><is><t>'
            )
            sheet.write(head)
            written = len(head)
            while written < unpacked:
                sheet.write(chunk)
                written += len(chunk)
            sheet.write(b"</t></is></c></row></sheetData></worksheet>")
    return out.getvalue()


LAUGHS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)


def billion_laughs(xlsx: bytes, member: str) -> bytes:
    """The workbook with an entity-expansion DTD in ``member`` and one cell that expands it."""

    def change(data: bytes) -> bytes:
        data = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", data)
        data = data.replace(b"<t>", b"<t>&lol9;", 1)
        return LAUGHS + data

    return replace_member(xlsx, member, change)


_MINIMAL_XLSX = [
    (
        "[Content_Types].xml",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types '
        b'xmlns="http://schemas.openxmlformats.org/'
        b'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        b'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override Part'
        b'Name="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sh'
        b'eet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlf'
        b'ormats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    ),
    (
        "_rels/.rels",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxml'
        b'formats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.'
        b'org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    ),
    (
        "xl/workbook.xml",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlfor'
        b'mats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/re'
        b'lationships"><sheets><sheet name="Skjema" sheetId="1" r:id="rId1"/></sheets></workbook>',
    ),
    (
        "xl/_rels/workbook.xml.rels",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxml'
        b'formats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.'
        b'org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    ),
]


def ods(rows: list[list[str]]) -> bytes:
    """A small but valid OpenDocument spreadsheet (what LibreOffice saves), one sheet of text."""

    def cell(v: str) -> str:
        v = v.replace("&", "&amp;").replace("<", "&lt;")
        return f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'

    table = "".join(f"<table:table-row>{''.join(cell(v) for v in r)}</table:table-row>" for r in rows)
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content xmlns:office="urn:oasis:names:tc:'
        'opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body>'
        f'<office:spreadsheet><table:table table:name="Skjema">{table}</table:table></office:spreadsheet>'
        "</office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
        'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
        'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    return zip_of(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            ("content.xml", content.encode()),
            ("META-INF/manifest.xml", manifest.encode()),
        ]
    )


def docx(paragraphs: list[str]) -> bytes:
    """A small valid Word document."""
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{p}</w:t></w:r></w:p>' for p in paragraphs)
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    return zip_of(
        [
            (
                "[Content_Types].xml",
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types '
                b'xmlns="http://schemas.openxmlformat'
                b's.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlfo'
                b'rmats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Overrid'
                b'e PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordpr'
                b'ocessingml.document.main+xml"/></Types>',
            ),
            (
                "_rels/.rels",
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
                b'xmlns="http://schemas.openx'
                b'mlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlform'
                b'ats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationsh'
                b"ips>",
            ),
            (
                "word/document.xml",
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document {ns}><w:body>{body}'
                "</w:body></w:document>".encode(),
            ),
        ],
        stored=(),
    )


# ---- OLE compound files (.xls, password-protected Office files) ---------------------------------

_FREE, _END, _FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD


def cfb(streams: list[tuple[str, bytes]]) -> bytes:
    """A version-3 compound file holding ``streams`` in its root storage.

    Streams under 4096 bytes live in the mini stream, as the format requires; readers such as
    olefile and msoffcrypto-tool open the result.
    """
    sector = 512
    mini = [(n, d) for n, d in streams if len(d) < 4096]
    big = [(n, d) for n, d in streams if len(d) >= 4096]
    # mini stream: 64-byte mini sectors, chained in the mini FAT
    ministream, minifat, mini_start = b"", [], {}
    for name, data in mini:
        count = max(1, -(-len(data) // 64))
        mini_start[name] = len(minifat)
        minifat += [len(minifat) + i + 1 for i in range(count - 1)] + [_END]
        ministream += data.ljust(count * 64, b"\0")
    entries = 1 + len(streams)
    dir_sectors = -(-entries * 128 // sector)
    minifat_sectors = -(-len(minifat) * 4 // sector) if minifat else 0
    payloads = [ministream] + [d for _, d in big]
    data_sectors = [-(-len(p) // sector) if p else 0 for p in payloads]
    total = dir_sectors + minifat_sectors + sum(data_sectors)
    fat_sectors = 1
    while fat_sectors * (sector // 4) < total + fat_sectors:
        fat_sectors += 1
    fat: list[int] = [_FATSECT] * fat_sectors
    layout: list[int] = []  # first sector of: directory, minifat, then each payload

    def chain(count: int) -> int:
        if count == 0:
            return _END
        first = len(fat)
        fat.extend(first + i + 1 for i in range(count - 1))
        fat.append(_END)
        return first

    layout.append(chain(dir_sectors))
    layout.append(chain(minifat_sectors))
    starts = [chain(n) for n in data_sectors]
    fat += [_FREE] * (fat_sectors * (sector // 4) - len(fat))

    def entry(name: str, kind: int, start: int, size: int, child: int = _FREE, right: int = _FREE) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        # name, name length, type, colour (black), left, right, child, CLSID, state, two times,
        # first sector, size: 128 bytes
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(raw), kind, 1, _FREE, right, child)
            + b"\0" * 36
            + struct.pack("<IQ", start, size)
        )

    # siblings in a simple right-leaning chain; the root's child is the first stream
    names = [n for n, _ in streams]
    dir_entries = [
        entry(
            "Root Entry", 5, starts[0] if ministream else _END, len(ministream), child=1 if names else _FREE
        )
    ]
    for i, (name, data) in enumerate(streams):
        start = mini_start[name] if len(data) < 4096 else starts[1 + [n for n, _ in big].index(name)]
        right = i + 2 if i + 1 < len(streams) else _FREE
        dir_entries.append(entry(name, 2, start, len(data), right=right))
    directory = b"".join(dir_entries).ljust(dir_sectors * sector, b"\0")
    minifat_bytes = struct.pack(f"<{len(minifat)}I", *minifat).ljust(minifat_sectors * sector, b"\xff")
    difat = [i for i in range(fat_sectors)] + [_FREE] * (109 - fat_sectors)
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack(
            "<IIIIIIIII",
            0,
            fat_sectors,
            layout[0],
            0,
            4096,
            layout[1] if minifat_sectors else _END,
            minifat_sectors,
            _END,
            0,
        )
        + struct.pack("<109I", *difat)
    )
    body = struct.pack(f"<{len(fat)}I", *fat) + directory + minifat_bytes
    for p, n in zip(payloads, data_sectors, strict=True):
        body += p.ljust(n * sector, b"\0")
    return header + body


def encrypted_office_file(seed: str) -> bytes:
    """What Excel saves for a password-protected .xlsx: an OLE file with an agile EncryptionInfo
    (the XML descriptor Excel writes, salts and keys made from ``seed``) and an EncryptedPackage
    of random-looking bytes. msoffcrypto-tool reads it as encrypted; no password opens it."""

    def b(label: str, n: int) -> str:
        return base64.b64encode((digest(label, seed) * 3)[:n]).decode()

    alg = (
        'blockSize="16" keyBits="256" hashSize="64" cipherAlgorithm="AES" '
        'cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512"'
    )
    info_xml = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<encryption xmlns="http://schemas.'
        'microsoft.com/office/2006/encryption" xmlns:p="http://schemas.microsoft.com/office/2006/keyEncryptor'
        f'/password"><keyData saltSize="16" {alg} saltValue="{b("salt", 16)}"/>'
        f'<dataIntegrity encryptedHmacKey="{b("hmackey", 64)}" encryptedHmacValue="{b("hmacvalue", 64)}"/>'
        '<keyEncryptors><keyEncryptor uri="http://schemas.microsoft.com/office/2006/keyEncryptor/password">'
        f'<p:encryptedKey spinCount="100000" saltSize="16" {alg} saltValue="{b("psalt", 16)}" '
        f'encryptedVerifierHashInput="{b("vin", 16)}" encryptedVerifierHashValue="{b("vhash", 64)}" '
        f'encryptedKeyValue="{b("key", 32)}"/></keyEncryptor></keyEncryptors></encryption>'
    )
    info = struct.pack("<HHI", 4, 4, 0x40) + info_xml.encode()
    package = struct.pack("<Q", 9000) + b"".join(digest("pkg", seed, str(i)) for i in range(284))
    return cfb([("EncryptionInfo", info), ("EncryptedPackage", package)])


def old_xls(seed: str) -> bytes:
    """An Excel 97-2003 .xls: an OLE file with a Workbook stream (BIFF8 BOF record first)."""
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0x2775, 0x07CD, 0, 0)
    body = bof + b"".join(digest("biff", seed, str(i)) for i in range(200))
    return cfb([("Workbook", body), ("\x05SummaryInformation", b"\xfe\xff" + b"\0" * 200)])


# ---- TNEF (winmail.dat) --------------------------------------------------------------------------


def _tnef_attr(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BHHI", level, attr_id, attr_type, len(data)) + data + struct.pack("<H", checksum)


def _mapi_unicode(prop_id: int, text: str) -> bytes:
    raw = text.encode("utf-16-le") + b"\0\0"
    return struct.pack("<HHII", 0x001F, prop_id, 1, len(raw)) + raw.ljust(-(-len(raw) // 4) * 4, b"\0")


def tnef(body: str, files: list[tuple[str, str, bytes]]) -> bytes:
    """A winmail.dat as Outlook writes it: message class, body, and each file with its long name.

    ``files`` holds (long name, MIME type, data); the 8.3 title is made from the long name.
    """
    out = struct.pack("<IH", 0x223E9F78, 0x4A31)
    out += _tnef_attr(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_attr(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += _tnef_attr(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    out += _tnef_attr(1, 0x800C, 0x0002, body.encode("cp1252", "replace") + b"\0")  # attBody
    for long_name, mime, data in files:
        stem, _, ext = long_name.rpartition(".")
        short = (re.sub(r"[^A-Z0-9]", "", stem.upper())[:6] + "~1." + ext.upper()[:3]).encode() + b"\0"
        rend = struct.pack("<HIHHI", 1, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0)
        out += _tnef_attr(2, 0x9002, 0x0006, rend)  # attAttachRendData
        out += _tnef_attr(2, 0x8010, 0x0001, short)  # attAttachTitle
        out += _tnef_attr(2, 0x800F, 0x0006, data)  # attAttachData
        props = [
            _mapi_unicode(0x3707, long_name),
            _mapi_unicode(0x370E, mime),
            _mapi_unicode(0x3703, "." + ext),
        ]
        out += _tnef_attr(2, 0x9005, 0x0006, struct.pack("<I", len(props)) + b"".join(props))  # attAttachment
    return out


def crc_hex(data: bytes) -> str:
    return f"{binascii.crc32(data):08x}"
