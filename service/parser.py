"""Raw message bytes in, one normalised ``InboundMail`` out. Pure: no I/O, never raises.

Design note. Everything downstream (classifier, form reading, matching, the store) sees only
``InboundMail``; the raw bytes ride along so a message can be re-processed after a fix. The mail
is untrusted and often malformed, so every accessor returns an empty value ("" / () / None)
instead of raising, and what was wrong is recorded in ``defects``.

Why the stdlib ``compat32`` policy and our own header decoding: the modern ``email.policy.default``
builds header objects on every access and costs several times more per message; with compat32
the parse of a 25 KB reply stays well under the 2 ms budget. compat32 hands back raw header
text, so RFC 2047 words are decoded here, with adjacent words of one charset joined *before*
decoding (Outlook splits a UTF-8 "ø" across two words) and unknown charsets decoded as UTF-8,
then Latin-1, never an exception.

Attachments are collected from the whole tree, including inside forwarded messages
(message/rfc822) and Outlook's winmail.dat (TNEF, via tnefparse); ``origin`` says where each
was found: "top", "forwarded", "winmail.dat" or "forwarded/winmail.dat".
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import quopri
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any, TypeVar

from tnefparse import TNEF  # type: ignore[import-untyped]

HeaderMap = Mapping[str, tuple[str, ...]]
T = TypeVar("T")
REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status",
                "message/feedback-report", "message/disposition-notification",
                "message/global-disposition-notification")
_EMBEDDED = ("message/rfc822", "message/global")
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_MAX_DEPTH, _MAX_PARTS = 12, 2000  # a hostile message may nest without end
_EMPTY: HeaderMap = MappingProxyType({})

_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_MSGID = re.compile(r"<[^<>\s]+>")
_SPACES = re.compile(r"[ \t\xa0\u200b]+")
_BLANKS = re.compile(r"\n{3,}")
_ESCAPED = re.compile("[\udc80-\udcff]")
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")
_MIME_BY_EXT = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "csv": "text/csv",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pdf": "application/pdf",
}


@dataclass(frozen=True)
class AttachmentFile:
    """One attached file; ``origin`` is "top", "forwarded", "winmail.dat" or "forwarded/winmail.dat"."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)  # a 30 MB file must not flood a log line or a test failure
    origin: str = "top"

    @property
    def extension(self) -> str:
        """Lower-case extension without the dot ("xlsx"), "" when the name has none."""
        stem, dot, ext = self.filename.rpartition(".")
        return ext.lower() if dot and stem else ""


@dataclass(frozen=True)
class ForwardedMail:
    """A message found inside another: forwarded as attachment, or returned inside a bounce.

    ``headers_only`` is True for a text/rfc822-headers part (a DSN that returns only headers).
    """

    message_id: str
    from_address: str
    from_name: str
    subject: str
    date: dt.datetime | None
    headers: HeaderMap
    text: str
    headers_only: bool = False


@dataclass(frozen=True)
class ReportPart:
    """A machine-readable report part (DSN, ARF, MDN): field names lower-case, values as sent.

    ``recipients`` holds the per-recipient field groups of a delivery-status part (empty for
    other reports); ``origin`` is "top" or "forwarded".
    """

    content_type: str
    fields: Mapping[str, str]
    recipients: tuple[Mapping[str, str], ...]
    origin: str


@dataclass(frozen=True)
class InboundMail:
    """One received message, normalised. Strings are "" and tuples empty when absent."""

    raw: bytes = field(repr=False)
    message_id: str
    from_address: str
    from_name: str
    reply_to: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: dt.datetime | None
    in_reply_to: str
    references: tuple[str, ...]
    headers: HeaderMap
    content_type: str
    report_type: str
    text: str
    attachments: tuple[AttachmentFile, ...] = ()
    forwarded: tuple[ForwardedMail, ...] = ()
    parts: tuple[ReportPart, ...] = ()
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str:
        """The first value of header ``name`` (any case), decoded; "" when absent."""
        values = self.headers.get(name.lower(), ())
        return values[0] if values else ""


def parse(raw: bytes) -> InboundMail:
    """Parse raw RFC 5322 bytes. Never raises: what is wrong ends up in ``defects``."""
    try:
        return _Walker(raw).mail()
    except Exception as exc:  # the contract is "never raises"; keep the raw bytes
        return InboundMail(raw=raw, message_id=synthetic_message_id(raw), from_address="",
                           from_name="", reply_to="", to=(), cc=(), subject="", date=None,
                           in_reply_to="", references=(), headers=_EMPTY, content_type="",
                           report_type="", text="",
                           defects=(f"unparseable message: {type(exc).__name__}: {exc}",))


def synthetic_message_id(raw: bytes) -> str:
    """A stable stand-in Message-ID for a message that has none: same bytes, same id."""
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@skjemapost.invalid>"


# ---- text decoding ---------------------------------------------------------------------------

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


def _fix_8bit(value: str) -> str:
    # BytesParser keeps raw 8-bit header bytes as surrogate escapes; they are UTF-8 or cp1252
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
        between = value[pos:m.start()]
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


def _header_text(value: str) -> str:
    """A raw header value unfolded, with 8-bit bytes and encoded-words decoded."""
    unfolded = _FOLD.sub("", value).replace("\r", " ").replace("\n", " ").strip()
    return decode_words(_fix_8bit(unfolded))


def _address_headers(msg: Message) -> dict[str, list[str]]:
    """The raw From, Reply-To, To and Cc values, unfolded, in one pass over the headers."""
    found: dict[str, list[str]] = {"from": [], "reply-to": [], "to": [], "cc": []}
    for name, value in msg.raw_items():
        values = found.get(str(name).lower())
        if values is not None:
            values.append(_fix_8bit(_FOLD.sub("", str(value)).replace("\r", " ").replace("\n", " ")))
    return found


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lower-case addr-spec) pairs, in order.

    Parsed from the raw value, before encoded-words are decoded: a decoded name may hold a comma.
    """
    found: list[tuple[str, str]] = []
    for display, addr in getaddresses(values):
        addr = addr.strip().lower()
        if "@" in addr:
            found.append((decode_words(display).strip(), addr))
    return found


def _date(value: str, defects: list[str]) -> dt.datetime | None:
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


class _HtmlText(HTMLParser):
    """The readable text of an HTML body; scripts, styles and the <head> are dropped."""

    # blocks break the line before and after; line items only before, so a list stays compact
    _BLOCK = frozenset({"address", "article", "aside", "blockquote", "div", "dl", "footer", "h1", "h2",
                        "h3", "h4", "h5", "h6", "header", "hr", "ol", "p", "pre", "section", "table", "ul"})
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


# ---- the MIME walk ---------------------------------------------------------------------------

def _read_headers(msg: Message) -> dict[str, tuple[str, ...]]:
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(str(name).strip().lower(), []).append(_header_text(str(value)))
    return {k: tuple(v) for k, v in headers.items()}


def _param(part: Message, name: str, header: str) -> str:
    """A header parameter, the RFC 2231 form (``filename*=utf-8''…``) preferred over the plain one.

    The stdlib's ``get_filename`` returns whichever it meets first, and senders (skjemapost's own
    compose among them) put an ASCII fallback ``filename=`` next to the exact ``filename*``.
    """
    plain = ""
    for key, value in _safe(lambda: part.get_params(header=header), None) or []:
        if key.lower() != name:
            continue
        if isinstance(value, tuple):
            return str(collapse_rfc2231_value(value))
        plain = plain or str(value)
    return plain


def _filename(part: Message) -> str:
    name = _param(part, "filename", "content-disposition") or _param(part, "name", "content-type")
    name = decode_words(_fix_8bit(name)).strip().strip('"')
    # "C:\Users\kari\skjema.xlsx" from old clients: only the name, without control characters
    return _clean_name(name)


def _clean_name(name: str) -> str:
    return _UNSAFE_NAME.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()


class _Walker:
    """One pass over the MIME tree, collecting text, attachments, reports and forwards."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.defects: list[str] = []
        self.attachments: list[AttachmentFile] = []
        self.forwarded: list[ForwardedMail] = []
        self.reports: list[ReportPart] = []
        self.parts_seen = 0

    def mail(self) -> InboundMail:
        msg = BytesParser(policy=compat32).parsebytes(self.raw)
        headers = _read_headers(msg)
        texts: list[str] = []
        self._walk(msg, "top", texts, 0)
        first = {k: v[0] for k, v in headers.items() if v}
        message_id = message_id_in(first.get("message-id", ""))
        if not message_id:
            message_id = synthetic_message_id(self.raw)
            self.defects.append("no Message-ID: synthesised from the SHA-256 of the bytes")
        raw = _address_headers(msg)
        senders, reply_to = _addresses(raw["from"]), _addresses(raw["reply-to"])
        ctype = _safe(msg.get_content_type, "text/plain")
        report_type = _safe(lambda: str(msg.get_param("report-type") or ""), "")
        return InboundMail(
            raw=self.raw, message_id=message_id,
            from_address=senders[0][1] if senders else "",
            from_name=senders[0][0] if senders else "",
            reply_to=reply_to[0][1] if reply_to else "",
            to=tuple(a for _, a in _addresses(raw["to"])),
            cc=tuple(a for _, a in _addresses(raw["cc"])),
            subject=first.get("subject", ""),
            date=_date(first.get("date", ""), self.defects),
            in_reply_to=message_id_in(first.get("in-reply-to", "")),
            references=tuple(_MSGID.findall(" ".join(headers.get("references", ())))),
            headers=MappingProxyType(headers), content_type=ctype,
            report_type=report_type.lower() if ctype == "multipart/report" else "",
            text="\n".join(t for t in texts if t).strip(),
            attachments=tuple(self.attachments), forwarded=tuple(self.forwarded),
            parts=tuple(self.reports), defects=tuple(dict.fromkeys(self.defects)),
        )

    def _walk(self, part: Message, origin: str, texts: list[str] | None, depth: int) -> None:
        """Visit ``part``; ``texts`` is None where body text is not wanted (other alternatives)."""
        self.parts_seen += 1
        if depth > _MAX_DEPTH or self.parts_seen > _MAX_PARTS:
            self.defects.append("MIME structure too deep or too large: the rest was skipped")
            return
        self.defects.extend(type(d).__name__ for d in part.defects)
        ctype = _safe(part.get_content_type, "application/octet-stream")
        if ctype in _EMBEDDED:
            self._embedded(part, origin, depth)
        elif ctype in REPORT_TYPES:
            self._report(part, ctype, origin)
        elif ctype == "text/rfc822-headers":
            self._returned_headers(part)
        elif part.is_multipart():
            children = [p for p in part.get_payload() if isinstance(p, Message)]
            chosen = _alternative(children) if ctype == "multipart/alternative" else None
            for i, child in enumerate(children):
                keep = texts if chosen is None or i == chosen else None
                self._walk(child, origin, keep, depth + 1)
        else:
            self._leaf(part, ctype, origin, texts)

    def _leaf(self, part: Message, ctype: str, origin: str, texts: list[str] | None) -> None:
        name = _filename(part)
        disposition = str(part.get("content-disposition", "")).split(";", 1)[0].strip().lower()
        if ctype in ("text/plain", "text/html") and not name and disposition != "attachment":
            if texts is not None:
                body = self._text(part)
                texts.append(html_to_text(body) if ctype == "text/html" else body)
            return
        data = _payload(part)
        if (ctype in _TNEF_TYPES or name.lower() == "winmail.dat") and self._tnef(data, origin, texts):
            return
        self.attachments.append(AttachmentFile(name, ctype, data, origin))

    def _text(self, part: Message) -> str:
        charset = _safe(part.get_content_charset, None)
        text = decode_bytes(_payload(part), charset, self.defects)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _embedded(self, part: Message, origin: str, depth: int) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        if not isinstance(inner, Message) or cte in ("base64", "quoted-printable"):
            # an encoded message/rfc822 (not allowed, but sent): decode it, then parse it
            data = inner.as_bytes() if isinstance(inner, Message) else _payload(part)
            try:
                data = base64.b64decode(data) if cte == "base64" else \
                    quopri.decodestring(data) if cte == "quoted-printable" else data
            except ValueError:  # binascii.Error: keep the text as it came
                self.defects.append("undecodable message/rfc822 part")
            inner = BytesParser(policy=compat32).parsebytes(data)
        texts: list[str] = []
        # "forwarded" at any depth: what matters downstream is that it was not sent as is
        self._walk(inner, "forwarded", texts, depth + 1)
        self.forwarded.append(_forwarded(inner, "\n".join(texts).strip(), self.defects))

    def _returned_headers(self, part: Message) -> None:
        text = decode_bytes(_payload(part), "utf-8")
        inner = HeaderParser(policy=compat32).parsestr(text)
        self.forwarded.append(_forwarded(inner, "", self.defects, headers_only=True))

    def _report(self, part: Message, ctype: str, origin: str) -> None:
        payload = part.get_payload()
        if isinstance(payload, list):  # the stdlib parses report bodies into header blocks
            blocks = [_field_block(list(p.raw_items())) for p in payload if isinstance(p, Message)]
        else:
            text = decode_bytes(_payload(part), "utf-8").replace("\r\n", "\n")
            blocks = [_field_block(list(HeaderParser(policy=compat32).parsestr(chunk + "\n").raw_items()))
                      for chunk in re.split(r"\n\s*\n", text.strip())]
        blocks = [b for b in blocks if b]
        fields: Mapping[str, str] = blocks[0] if blocks else _EMPTY_FIELDS
        recipients = tuple(blocks[1:]) if "delivery-status" in ctype else ()
        if "delivery-status" in ctype and fields and not recipients and "final-recipient" in fields:
            fields, recipients = _EMPTY_FIELDS, (fields,)  # per-message block left out
        self.reports.append(ReportPart(ctype, fields, recipients,
                                       "top" if origin == "top" else "forwarded"))

    def _tnef(self, data: bytes, origin: str, texts: list[str] | None) -> bool:
        """Unpack winmail.dat; False when it holds no files, so it is kept as it is."""
        try:
            tnef: Any = TNEF(data, do_checksum=False)
            found = [(_tnef_name(att), _tnef_mime(att), bytes(att.data)) for att in tnef.attachments]
            body = tnef.body
        except Exception as exc:  # a damaged winmail.dat is kept as it is
            self.defects.append(f"unreadable winmail.dat: {type(exc).__name__}: {exc}")
            return False
        where = "winmail.dat" if origin == "top" else f"{origin}/winmail.dat"
        for name, mime, payload in found:
            clean = _clean_name(name)
            ext = clean.rpartition(".")[2].lower()
            ctype = mime.lower() or _MIME_BY_EXT.get(ext, "application/octet-stream")
            self.attachments.append(AttachmentFile(clean, ctype, payload, where))
        if texts is not None and not any(texts) and body:
            text = body if isinstance(body, str) else decode_bytes(bytes(body), "cp1252")
            texts.append(text.replace("\x00", "").replace("\r\n", "\n").strip())
        return bool(found)


_EMPTY_FIELDS: Mapping[str, str] = MappingProxyType({})


def _tnef_name(att: Any) -> str:
    try:
        return str(att.long_filename() or "")
    except UnicodeError:  # tnefparse reads the 8.3 title as UTF-8; Outlook writes the ANSI codepage
        raw = att._name
        return raw.decode("cp1252", "replace").strip("\x00") if isinstance(raw, bytes) else str(raw)


def _tnef_mime(att: Any) -> str:
    # PR_ATTACH_MIME_TAG, when Outlook recorded one
    return next((str(a.data) for a in att.mapi_attrs if a.name == 0x370E), "")


def _field_block(items: list[tuple[str, Any]]) -> Mapping[str, str]:
    block: dict[str, str] = {}
    for name, value in items:
        block.setdefault(str(name).strip().lower(), _header_text(str(value)))
    return MappingProxyType(block)


def _forwarded(inner: Message, text: str, defects: list[str],
               headers_only: bool = False) -> ForwardedMail:
    headers = _read_headers(inner)
    first = {k: v[0] for k, v in headers.items() if v}
    senders = _addresses(_address_headers(inner)["from"])
    return ForwardedMail(
        message_id=message_id_in(first.get("message-id", "")),
        from_address=senders[0][1] if senders else "", from_name=senders[0][0] if senders else "",
        subject=first.get("subject", ""), date=_date(first.get("date", ""), defects),
        headers=MappingProxyType(headers), text=text, headers_only=headers_only)


def _alternative(children: list[Message]) -> int | None:
    """Which alternative gives the body text: text/plain if there is one, else the last."""
    if not children:
        return None
    for i, child in enumerate(children):
        if _safe(child.get_content_type, "") == "text/plain":
            return i
    return len(children) - 1


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # undecodable transfer encoding: the raw text, as bytes
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _safe(call: Callable[[], T], default: T) -> T:
    try:
        return call()
    except Exception:  # a malformed header parameter must not stop the parse
        return default
