"""Text out of mail bytes: charsets, RFC 2047 header words, addresses, dates and HTML bodies.

Pure helpers for ``parser``; like it they never raise on malformed input. The parser uses the
stdlib ``compat32`` policy (see there for why), which hands back raw header text, so the decoding
happens here: RFC 2047 words are decoded with adjacent words of one charset joined *before*
decoding (Outlook splits a UTF-8 "ø" across two words), raw 8-bit header bytes are read as UTF-8
or cp1252, and an unknown charset is decoded as UTF-8, then Latin-1, never an exception.
"""

from __future__ import annotations

import binascii
import datetime as dt
import re
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<[^<>\s]+>")
_SPACES = re.compile(r"[ \t\xa0\u200b]+")
_BLANKS = re.compile(r"\n{3,}")
_ESCAPED = re.compile("[\udc80-\udcff]")
# control characters, and the bidirectional overrides and isolates that make "fdp.xlsx" show as
# "xlsx.pdf" (U+202A-202E, U+2066-2069) or hide text (U+200B-200F, U+061C, U+FEFF): a file name is
# shown in the workbook and sent back to the leader, so what it shows must be what it is
_UNSAFE_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


# ---- charsets and encoded-words ----------------------------------------------------------------


def decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """Bytes as text in ``charset``; a wrong or unknown charset falls back to UTF-8, then Latin-1."""
    name = (charset or "").strip().strip("\"'").lower() or "us-ascii"
    known = True
    try:
        return data.decode(name)
    except UnicodeError:
        pass
    except (LookupError, ValueError):  # an unknown or malformed charset name
        known = False
        if defects is not None:
            defects.append(f"unknown charset {name[:40]!r}")
    try:
        return data.decode("utf-8")
    except UnicodeError:
        pass
    if known and name not in ("us-ascii", "ascii"):
        return data.decode(name, errors="replace")  # a declared charset wrong for a few bytes
    return data.decode("cp1252" if known else "latin-1", errors="replace")


def fix_8bit(value: str) -> str:
    """Raw 8-bit bytes in a header value, read as UTF-8, else cp1252."""
    # BytesParser keeps raw 8-bit header bytes as surrogate escapes
    if value.isascii() or not _ESCAPED.search(value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeError:
        return data.decode("cp1252", errors="replace")


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; whitespace between two words goes, as the RFC says."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending, pending_cs, pos, last_was_word = b"", "", 0, False
    for m in _WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (last_was_word and between.isspace()):
            if pending:
                out.append(decode_bytes(pending, pending_cs))
                pending = b""
            out.append(between)
        cs, enc, text = m.group(1).split("*", 1)[0].lower(), m.group(2), m.group(3)
        try:
            encoded = text.encode("ascii")
        except UnicodeEncodeError:
            encoded = text.encode("utf-8", "surrogateescape")
        if enc in "Bb":
            try:
                data = binascii.a2b_base64(encoded + b"=" * (-len(encoded) % 4))
            except binascii.Error:
                data = encoded
        else:
            data = binascii.a2b_qp(encoded, header=True)
        if pending and cs != pending_cs:
            out.append(decode_bytes(pending, pending_cs))
            pending = b""
        pending, pending_cs, pos, last_was_word = pending + data, cs, m.end(), True
    if pending:
        out.append(decode_bytes(pending, pending_cs))
    out.append(value[pos:])
    return "".join(out)


# ---- header values -----------------------------------------------------------------------------


def header_text(value: str) -> str:
    """A raw header value unfolded, with 8-bit bytes and encoded-words decoded."""
    unfolded = _FOLD.sub("", value).replace("\r", " ").replace("\n", " ").strip()
    return decode_words(fix_8bit(unfolded))


def read_headers(msg: Message) -> dict[str, tuple[str, ...]]:
    """Every header, name lower-case, values decoded, in order."""
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(str(name).strip().lower(), []).append(header_text(str(value)))
    return {k: tuple(v) for k, v in headers.items()}


def address_headers(msg: Message) -> dict[str, list[str]]:
    """The raw From, Reply-To, To and Cc values, unfolded, in one pass over the headers."""
    found: dict[str, list[str]] = {"from": [], "reply-to": [], "to": [], "cc": []}
    for name, value in msg.raw_items():
        values = found.get(str(name).lower())
        if values is not None:
            values.append(fix_8bit(_FOLD.sub("", str(value)).replace("\r", " ").replace("\n", " ")))
    return found


def addresses(values: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lower-case addr-spec) pairs, in order.

    Parsed from the raw value, before encoded-words are decoded: a decoded name may hold a comma.
    """
    found: list[tuple[str, str]] = []
    for display, addr in getaddresses(values):
        addr = addr.strip().lower()
        if "@" in addr:
            found.append((decode_words(display).strip(), addr))
    return found


def header_date(value: str, defects: list[str]) -> dt.datetime | None:
    """A Date header as an aware UTC time; None (and a defect) when it cannot be read."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        defects.append(f"unreadable Date: {value[:80]!r}")
        return None
    if when.tzinfo is None:  # "-0000": the time is UTC, the zone unknown (RFC 5322 3.3)
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def message_id_in(value: str) -> str:
    """The first <id> in a header value; a bare "id@host" (scanners send them) gets its brackets."""
    m = _MSGID.search(value)
    if m:
        return m.group(0)
    value = value.strip()
    return f"<{value}>" if value and " " not in value and "@" in value else ""


def message_ids_in(value: str) -> tuple[str, ...]:
    """Every <id> in a header value (References), in order."""
    return tuple(_MSGID.findall(value))


# ---- attachment names ----------------------------------------------------------------------------


def part_filename(part: Message) -> str:
    """An attachment's name, decoded (RFC 2231, RFC 2047, raw 8-bit); "" when it has none."""
    name = _param(part, "filename", "content-disposition") or _param(part, "name", "content-type")
    name = decode_words(fix_8bit(name)).strip().strip('"')
    # "C:\Users\kari\skjema.xlsx" from old clients: only the name, without control characters
    return clean_filename(name)


def clean_filename(name: str) -> str:
    """The last path segment of ``name``, without control characters."""
    return _UNSAFE_NAME.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()


def _param(part: Message, name: str, header: str) -> str:
    """A header parameter, the RFC 2231 form (``filename*=utf-8''…``) preferred over the plain one.

    The stdlib's ``get_filename`` returns whichever it meets first, and senders (skjemapost's own
    compose among them) put an ASCII fallback ``filename=`` next to the exact ``filename*``.
    """
    try:
        params = part.get_params(header=header) or []
    except Exception:  # a malformed header parameter must not stop the parse
        params = []
    plain = ""
    for key, value in params:
        if key.lower() != name:
            continue
        if isinstance(value, tuple):
            return str(collapse_rfc2231_value(value))
        plain = plain or str(value)
    return plain


# ---- HTML bodies -------------------------------------------------------------------------------


class _HtmlText(HTMLParser):
    """The readable text of an HTML body; scripts, styles and the <head> are dropped."""

    # blocks break the line before and after; line items only before, so a list stays compact
    _BLOCK = frozenset(
        {
            "address",
            "article",
            "aside",
            "blockquote",
            "div",
            "dl",
            "footer",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "header",
            "hr",
            "ol",
            "p",
            "pre",
            "section",
            "table",
            "ul",
        }
    )
    _LINE = frozenset({"br", "li", "tr", "dt", "dd"})
    _SKIP = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.skipping = 0  # an unclosed <head> must not swallow the body
        elif tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK or tag in self._LINE:
            self.chunks.append("\n")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCK:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data.replace("\r", " ").replace("\n", " "))


def html_to_text(html: str) -> str:
    """Plain text of an HTML document, one line per block."""
    extractor = _HtmlText()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # html.parser is lenient; a failure keeps what was read
        pass
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(extractor.chunks).split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
