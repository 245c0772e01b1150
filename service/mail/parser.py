"""Raw message bytes in, one normalised ``InboundMail`` out. Pure: no I/O, never raises.

Design note. Everything downstream (classifier, form reading, matching, the store) sees only
``InboundMail``; the raw bytes ride along so a message can be re-processed after a fix. The mail
is untrusted and often malformed, so every accessor returns an empty value ("" / () / None)
instead of raising, and what was wrong is recorded in ``defects``.

Why the stdlib ``compat32`` policy: the modern ``email.policy.default`` builds header objects on
every access and costs several times more per message; with compat32 the parse of a 25 KB reply
stays well under the 2 ms budget. compat32 hands back raw header text, so headers, charsets and
HTML bodies are decoded by ``mail.text``; this module is the MIME walk.

Attachments are collected from the whole tree, including inside forwarded messages
(message/rfc822) and Outlook's winmail.dat (TNEF, via tnefparse); ``origin`` says where each
was found: "top", "forwarded", "returned" (inside a copy of a mail we sent, known by our
Message-ID: a bounce returning our invitation carries our own blank form), "winmail.dat" or
"forwarded/winmail.dat".

The header block is read before the body, on its own: a body the stdlib cannot parse (a hostile
message nested thousands deep hits Python's recursion limit) still leaves the sender, the subject
and the Message-ID for the inbox row and the review listing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import quopri
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.feedparser import BytesFeedParser
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser, HeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, TypeVar

from tnefparse import TNEF  # type: ignore[import-untyped]

from service.mail.msgid import is_ours
from service.mail.text import (
    address_headers,
    addresses,
    clean_filename,
    decode_bytes,
    header_date,
    header_text,
    html_to_text,
    message_id_in,
    message_ids_in,
    part_filename,
    read_headers,
)

HeaderMap = Mapping[str, tuple[str, ...]]
T = TypeVar("T")
REPORT_TYPES = (
    "message/delivery-status",
    "message/global-delivery-status",
    "message/feedback-report",
    "message/disposition-notification",
    "message/global-disposition-notification",
)
_EMBEDDED = ("message/rfc822", "message/global")
_TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
_MAX_DEPTH, _MAX_PARTS = 12, 2000  # a hostile message may nest without end
_EMPTY: HeaderMap = MappingProxyType({})

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
    """One attached file; ``origin`` is "top", "forwarded", "returned" (inside a returned copy of
    our own mail), "winmail.dat" or "<origin>/winmail.dat"."""

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

    ``headers_only`` is True for a text/rfc822-headers part (a DSN that returns only headers);
    ``to`` holds the addresses of its To and Cc (lower-case): for a returned copy of our own mail,
    the addresses we sent it to.
    """

    message_id: str
    from_address: str
    from_name: str
    subject: str
    date: dt.datetime | None
    headers: HeaderMap
    text: str
    headers_only: bool = False
    to: tuple[str, ...] = ()


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
        return InboundMail(
            raw=raw,
            message_id=synthetic_message_id(raw),
            from_address="",
            from_name="",
            reply_to="",
            to=(),
            cc=(),
            subject="",
            date=None,
            in_reply_to="",
            references=(),
            headers=_EMPTY,
            content_type="",
            report_type="",
            text="",
            defects=(f"unparseable message: {type(exc).__name__}: {exc}",),
        )


def synthetic_message_id(raw: bytes) -> str:
    """A stable stand-in Message-ID for a message that has none: same bytes, same id."""
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@skjemapost.invalid>"


def _header_block(raw: bytes) -> bytes:
    """The bytes up to the first empty line: the top-level header block (all of it if none)."""
    ends = [i + len(sep) // 2 for sep in (b"\r\n\r\n", b"\n\n") if (i := raw.find(sep)) >= 0]
    return raw[: min(ends)] if ends else raw  # the last header line keeps its line end


# ---- the MIME walk ---------------------------------------------------------------------------


class _Walker:
    """One pass over the MIME tree, collecting text, attachments, reports and forwards."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.defects: list[str] = []
        self.attachments: list[AttachmentFile] = []
        self.forwarded: list[ForwardedMail] = []
        self.reports: list[ReportPart] = []
        self.parts_seen = 0
        # long runs of base64 lines (a large attachment) are kept out of the stdlib parser, which
        # would hold each several times over: a placeholder line stands in, and the part's bytes
        # are decoded straight from ``raw`` (see ``_parsed`` and ``_payload``)
        self.token = "skjemapost-elided-" + os.urandom(8).hex()
        self.spans: list[tuple[int, int]] = []

    def mail(self) -> InboundMail:
        # the header block first, on its own, so a body that cannot be parsed keeps it
        top = BytesHeaderParser(policy=compat32).parsebytes(_header_block(self.raw))
        headers = read_headers(top)
        texts: list[str] = []
        try:
            msg = self._parsed()
            self._walk(msg, "top", texts, 0)
        except Exception as exc:  # e.g. RecursionError in the stdlib parser: keep the headers
            self.defects.append(f"unparseable body: {type(exc).__name__}: {exc}")
            self.defects.extend(type(d).__name__ for d in top.defects)
            texts, self.attachments, self.forwarded, self.reports = [], [], [], []
        first = {k: v[0] for k, v in headers.items() if v}
        message_id = message_id_in(first.get("message-id", ""))
        if not message_id:
            message_id = synthetic_message_id(self.raw)
            self.defects.append("no Message-ID: synthesised from the SHA-256 of the bytes")
        raw = address_headers(top)
        senders, reply_to = addresses(raw["from"]), addresses(raw["reply-to"])
        ctype = _safe(top.get_content_type, "text/plain")
        report_type = _safe(lambda: str(top.get_param("report-type") or ""), "")
        return InboundMail(
            raw=self.raw,
            message_id=message_id,
            from_address=senders[0][1] if senders else "",
            from_name=senders[0][0] if senders else "",
            reply_to=reply_to[0][1] if reply_to else "",
            to=tuple(a for _, a in addresses(raw["to"])),
            cc=tuple(a for _, a in addresses(raw["cc"])),
            subject=first.get("subject", ""),
            date=header_date(first.get("date", ""), self.defects),
            in_reply_to=message_id_in(first.get("in-reply-to", "")),
            references=message_ids_in(" ".join(headers.get("references", ()))),
            headers=MappingProxyType(headers),
            content_type=ctype,
            report_type=report_type.lower() if ctype == "multipart/report" else "",
            text="\n".join(t for t in texts if t).strip(),
            attachments=tuple(self.attachments),
            forwarded=tuple(self.forwarded),
            parts=tuple(self.reports),
            defects=tuple(dict.fromkeys(self.defects)),
        )

    def _parsed(self) -> Message:
        """The MIME tree, fed to the parser a slice at a time, large base64 runs left out."""
        feeder = BytesFeedParser(policy=compat32)
        view, last = memoryview(self.raw), 0

        def feed(start: int, end: int) -> None:
            for at in range(start, end, 1 << 16):
                feeder.feed(bytes(view[at : min(at + (1 << 16), end)]))

        for m in _B64_RUN.finditer(self.raw):
            # whole lines only, and never the empty line that ends a part's headers
            start, end = m.start(), m.end()
            if start > 0 and self.raw[start - 1] != 0x0A:
                start = self.raw.find(b"\n", start, end) + 1
            while self.raw.startswith((b"\r\n", b"\n"), start):
                start = self.raw.index(b"\n", start) + 1
            end = self.raw.rfind(b"\n", start, end) + 1
            if end - start < _B64_MIN:
                continue
            feed(last, start)
            feeder.feed(f"{self.token}-{len(self.spans)}\n".encode())
            self.spans.append((start, end))
            last = end
        feed(last, len(self.raw))
        return feeder.close()

    def _payload(self, part: Message) -> bytes:
        """A part's bytes, decoded; an elided base64 run straight from ``raw``."""
        if self.spans:
            try:
                text = part.get_payload()
            except Exception:
                text = None
            if isinstance(text, str) and self.token in text:
                cte = str(part.get("content-transfer-encoding", "")).strip().lower()
                only = re.fullmatch(rf"\s*{self.token}-(\d+)\s*", text)
                if cte == "base64" and only is not None:
                    start, end = self.spans[int(only[1])]
                    try:
                        return binascii.a2b_base64(memoryview(self.raw)[start:end])
                    except (binascii.Error, ValueError):
                        pass  # as the stdlib would: from the text, below
                part.set_payload(self._restored(text))
        return _payload(part)

    def _restored(self, text: str) -> str:
        def original(m: re.Match[str]) -> str:
            start, end = self.spans[int(m[1])]
            return self.raw[start:end].decode("ascii")

        return re.sub(rf"{self.token}-(\d+)\n", original, text)

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
        name = part_filename(part)
        disposition = str(part.get("content-disposition", "")).split(";", 1)[0].strip().lower()
        if ctype in ("text/plain", "text/html") and not name and disposition != "attachment":
            if texts is not None:
                body = self._text(part)
                texts.append(html_to_text(body) if ctype == "text/html" else body)
            return
        data = self._payload(part)
        if (ctype in _TNEF_TYPES or name.lower() == "winmail.dat") and self._tnef(data, origin, texts):
            return
        self.attachments.append(AttachmentFile(name, ctype, data, origin))

    def _text(self, part: Message) -> str:
        charset = _safe(part.get_content_charset, None)
        text = decode_bytes(self._payload(part), charset, self.defects)
        return text.replace("\r\n", "\n").replace("\r", "\n")

    def _embedded(self, part: Message, origin: str, depth: int) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()
        if not isinstance(inner, Message) or cte in ("base64", "quoted-printable"):
            # an encoded message/rfc822 (not allowed, but sent): decode it, then parse it
            data = inner.as_bytes() if isinstance(inner, Message) else self._payload(part)
            if self.spans and self.token.encode() in data:
                data = self._restored(data.decode("ascii", "surrogateescape")).encode(
                    "ascii", "surrogateescape"
                )
            try:
                data = (
                    base64.b64decode(data)
                    if cte == "base64"
                    else quopri.decodestring(data)
                    if cte == "quoted-printable"
                    else data
                )
            except ValueError:  # binascii.Error: keep the text as it came
                self.defects.append("undecodable message/rfc822 part")
            inner = BytesParser(policy=compat32).parsebytes(data)
        texts: list[str] = []
        # "forwarded" at any depth: what matters downstream is that it was not sent as is; and
        # "returned" inside a copy of our own mail, whose files are the ones we sent
        ours = origin == "returned" or is_ours(message_id_in(str(inner.get("message-id", ""))))
        self._walk(inner, "returned" if ours else "forwarded", texts, depth + 1)
        self.forwarded.append(_forwarded(inner, "\n".join(texts).strip(), self.defects))

    def _returned_headers(self, part: Message) -> None:
        text = decode_bytes(self._payload(part), "utf-8")
        inner = HeaderParser(policy=compat32).parsestr(text)
        self.forwarded.append(_forwarded(inner, "", self.defects, headers_only=True))

    def _report(self, part: Message, ctype: str, origin: str) -> None:
        payload = part.get_payload()
        if isinstance(payload, list):  # the stdlib parses report bodies into header blocks
            blocks = [_field_block(list(p.raw_items())) for p in payload if isinstance(p, Message)]
        else:
            text = decode_bytes(self._payload(part), "utf-8").replace("\r\n", "\n")
            blocks = [
                _field_block(list(HeaderParser(policy=compat32).parsestr(chunk + "\n").raw_items()))
                for chunk in re.split(r"\n\s*\n", text.strip())
            ]
        blocks = [b for b in blocks if b]
        fields: Mapping[str, str] = blocks[0] if blocks else _EMPTY_FIELDS
        recipients: tuple[Mapping[str, str], ...] = ()
        if "delivery-status" in ctype:
            # a block is a recipient's when it holds any per-recipient field, wherever it stands:
            # senders leave out the per-message block, or write a recipient block that has only
            # a Diagnostic-Code
            recipients = tuple(b for b in blocks if _PER_RECIPIENT.intersection(b))
            fields = next((b for b in blocks if not _PER_RECIPIENT.intersection(b)), _EMPTY_FIELDS)
        self.reports.append(ReportPart(ctype, fields, recipients, "top" if origin == "top" else "forwarded"))

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
            clean = clean_filename(name)
            ext = clean.rpartition(".")[2].lower()
            ctype = mime.lower() or _MIME_BY_EXT.get(ext, "application/octet-stream")
            self.attachments.append(AttachmentFile(clean, ctype, payload, where))
        if texts is not None and not any(texts) and body:
            text = body if isinstance(body, str) else decode_bytes(bytes(body), "cp1252")
            texts.append(text.replace("\x00", "").replace("\r\n", "\n").strip())
        return bool(found)


_EMPTY_FIELDS: Mapping[str, str] = MappingProxyType({})
#: the fields of RFC 3464's per-recipient blocks (section 2.3), and two that MTAs add to them
_PER_RECIPIENT = frozenset(
    {
        "original-recipient",
        "final-recipient",
        "action",
        "status",
        "remote-mta",
        "diagnostic-code",
        "last-attempt-date",
        "final-log-id",
        "will-retry-until",
        "x-actual-recipient",
        "x-display-name",
    }
)


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
        block.setdefault(str(name).strip().lower(), header_text(str(value)))
    return MappingProxyType(block)


def _forwarded(inner: Message, text: str, defects: list[str], headers_only: bool = False) -> ForwardedMail:
    headers = read_headers(inner)
    first = {k: v[0] for k, v in headers.items() if v}
    raw = address_headers(inner)
    senders = addresses(raw["from"])
    return ForwardedMail(
        message_id=message_id_in(first.get("message-id", "")),
        from_address=senders[0][1] if senders else "",
        from_name=senders[0][0] if senders else "",
        subject=first.get("subject", ""),
        date=header_date(first.get("date", ""), defects),
        headers=MappingProxyType(headers),
        text=text,
        headers_only=headers_only,
        to=tuple(dict.fromkeys(a for _, a in addresses(raw["to"] + raw["cc"]))),
    )


def _alternative(children: list[Message]) -> int | None:
    """Which alternative gives the body text: text/plain if there is one, else the last."""
    if not children:
        return None
    for i, child in enumerate(children):
        if _safe(child.get_content_type, "") == "text/plain":
            return i
    return len(children) - 1


#: a run of base64 lines this long (about 150 KB) is kept out of the stdlib parser. The
#: lookbehind lets a match start only where a run starts: without it, a run just short of the
#: minimum is scanned again from each of its positions (quadratic on a 140 KB attachment)
_B64_MIN = 150_000
_B64_RUN = re.compile(rb"(?<![A-Za-z0-9+/=\r\n])[A-Za-z0-9+/=\r\n]{150000,}")


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


def received_time(mail: InboundMail, now: dt.datetime) -> dt.datetime:
    """When the message reached us: the newest Received: stamp, else its Date, else ``now``.

    Never later than ``now``: a message cannot arrive after we fetched it, and a campaign
    replayed with --as-of must see its replies arrive in its own time.
    """
    found: dt.datetime | None = None
    for value in mail.headers.get("received", ()):
        stamp = value.rpartition(";")[2].strip()
        try:
            when = parsedate_to_datetime(stamp)
        except (TypeError, ValueError, IndexError):
            continue
        if when.tzinfo is not None:
            found = when.astimezone(dt.UTC)
            break
    if found is None and mail.date is not None:
        found = mail.date.astimezone(dt.UTC)
    return min(found, now) if found is not None else now
