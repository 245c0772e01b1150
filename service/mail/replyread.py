"""A verneombud's answer to the request to confirm a form, read: confirmed, disputed or empty.

Pure: an ``InboundMail`` (or a body text) in, a ``Reading`` out; no I/O, no clock. A reading is
``confirmed`` (a short agreement, with or without greetings, thanks and a signature), ``disputed``
(anything else they wrote; their words kept verbatim, quote and signature stripped) or ``empty``
(nothing of their own: only the quote, or only a greeting and a name).

Design note — which reply parser, and why. Stripping the quote is not the domain, so a maintained
parser does it; we add Norwegian and the conservative reading.

- ``mail-parser-reply`` (chosen): maintained (1.36, 2025), pure Python with no dependencies, and
  rules per language in one table (the "… wrote:" line, Outlook's header block, sign-offs, "Sent
  from my …" footers) for 13 languages. It has no Norwegian, but its table takes a language:
  ``_NB`` below adds bokmål (Gmail's and Apple Mail's "tir. 8. des. 2020 kl. 10:15 skrev …:",
  Thunderbird's "Den 08.12.2020 10:15, skrev …:", Outlook's «Fra:/Sendt:/Til:/Emne:» block and
  «-----Opprinnelig melding-----», «Sendt fra min iPhone», «Hent Outlook for iOS», the sign-offs).
- ``email_reply_parser`` (GitHub's rules, ported): English only, last release 2020.
- ``talon`` (Mailgun): last release 2017; pulls lxml, cchardet and scikit-learn (its signatures
  come from a trained model); English first.
- ``quotequail``: maintained and reads HTML, but has no Norwegian and no signatures, and a new
  language means changing its compiled module-level patterns.

The reading is conservative: a false "confirmed" would put the verneombud's name under answers they
may not share, while a false "disputed" only means a person reads the words. So:

1. *Their text* is what stands before the first quote header; below a "… wrote:" line (Gmail,
   Apple Mail, Thunderbird) it is also every line not quoted with ">" (bottom or inline posting);
   an Outlook header block (From/Fra with Sent/Sendt/Date/Dato) or a separator ends it. A "header"
   without what a real one has (a "skrev:" line with no time or address, a block with no sender)
   stays in their text: someone writing "Til: alle" must not lose what follows.
2. *A signature* is cut only from a line that starts one (a sign-off, "--", "Sent from my …", or
   their name) when every line from there on looks like a signature (names, titles, the
   institution, phone, address) and none holds a word of reservation ("ikke", "men", "but", "?").
   Otherwise it stays in their words.
3. *Confirmed* only when every piece of what is left is on a short list (an agreement, a greeting,
   thanks, a sign-off, their name) and one is an agreement. Anything else with text is disputed.

HTML-only replies are turned into text by ``text.html_to_text`` after each outermost
``<blockquote>`` (Gmail, Apple Mail, Thunderbird) is replaced by a "> …" line, so a quote is
known as one in HTML too; Outlook's HTML quote sits under its header block, which the text keeps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from enum import StrEnum
from html.parser import HTMLParser

from mailparser_reply.constants import MAIL_LANGUAGES  # type: ignore[import-untyped]
from mailparser_reply.parser import EmailMessage  # type: ignore[import-untyped]

from service.mail.parser import InboundMail
from service.mail.replywords import (
    is_agreement,
    is_contact,
    is_filler,
    is_footer,
    is_name,
    is_org,
    is_prose,
    is_sign_off,
    is_title,
    name_tokens,
    reservation,
    segments,
)
from service.mail.text import decode_bytes, html_to_text, part_filename


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    EMPTY = "empty"


@dataclass(frozen=True)
class Reading:
    """What a reply says. ``words``: their own text, verbatim, quote and signature stripped ("" when
    empty); ``why``: a short reason, for the log and for whoever checks a reading."""

    verdict: Verdict
    words: str
    why: str


# Norwegian bokmål for mail-parser-reply's table. Every pattern has exactly one capturing group,
# around the whole header: the parser flattens the groups of all languages' patterns.
_Q = r"(?:> ?)*"
_NB = {
    "wrote_header": [
        # Gmail "tir. 8. des. 2020 kl. 10:15 skrev …:", Apple Mail "8. des. 2020 kl. 10:15 skrev …:",
        # Thunderbird "Den 08.12.2020 10:15, skrev …:"; Gmail may wrap it once
        rf"^({_Q}(?:[Dd]en|[Mm]an|[Tt]ir|[Oo]ns|[Tt]or|[Ff]re|[Ll]ør|[Ss]øn|[0-9])[^\n]{{0,160}}?"
        rf"\sskrev(?:\s[^\n]{{0,200}}?)?(?:\n{_Q}[^\n]{{1,200}}?)?:)$",
        rf"^({_Q}-{{3,}}\s?Opprinnelig melding\s?-{{3,}})$",
    ],
    "from_header": rf"((?:(?:^|\n){_Q}[* ]*(?:Fra|Sendt|Til|Kopi|Kopi til|Emne|Dato|Cc):[ *]*(?:\s{{,2}}).*){{2,}}(?:\n.*){{,1}})",
    "disclaimers": [],
    "signatures": ["Med vennlig hilsen", "Vennlig hilsen", "Beste hilsen", "Hilsen", "Mvh", "Vh"],
    "sent_from": "Sendt fra min|Sendt fra|Hent Outlook for",
}
MAIL_LANGUAGES.setdefault("nb", _NB)
_LANGUAGES = ("nb", "en")

_QUOTE_MARK = "> …"
_SEPARATOR = re.compile(r"-{3,}\s*(?:original message|opprinnelig melding)\s*-{3,}", re.IGNORECASE)
_FROM_LINE = re.compile(r"^[>* ]*(?:from|fra)\s*:", re.IGNORECASE | re.MULTILINE)
_DATE_LINE = re.compile(r"^[>* ]*(?:sent|sendt|date|dato)\s*:", re.IGNORECASE | re.MULTILINE)
_WROTE = re.compile(r"\b(?:wrote|skrev)\b[^\n]*:\s*\Z", re.IGNORECASE)
_TIME_OR_ADDRESS = re.compile(r"\d{1,2}[:.]\d{2}|@")
_BLANKS = re.compile(r"\n{3,}")
_MAX_SIGNATURE_LINES = 12
_MAX_AGREEMENT_CHARS = 300


def read_reply(mail: InboundMail, *, names: Sequence[str] = ()) -> Reading:
    """Read a reply to the request; ``names``: the verneombud's name(s) from the roster, so a
    signature with their name is known as one (the sender's display name is added)."""
    html = _html_only(mail.raw)
    text = html_to_text(_mark_quotes(html)) if html else mail.text
    return read_text(text, names=(*names, mail.from_name))


def read_text(text: str, *, names: Sequence[str] = ()) -> Reading:
    """Read the text body of a reply (see the module docstring for the rules)."""
    known = name_tokens(names)
    message = EmailMessage(text=text, languages=list(_LANGUAGES), keep_hyphen_lists=True)
    own = _own_lines(message.read())
    content, _signature = _split_signature(own, known, message)
    words = _BLANKS.sub("\n\n", "\n".join(content)).strip()
    if not words:
        return Reading(Verdict.EMPTY, "", "nothing of their own: only a quote or a signature")
    if "?" in words:
        return Reading(Verdict.DISPUTED, words, "a question")
    kinds = []
    for piece in segments(words):
        if is_agreement(piece.norm):
            kinds.append("agreement")
        elif is_filler(piece, known):
            kinds.append("filler")
        else:
            return Reading(Verdict.DISPUTED, words, f"more than an agreement: {piece.text!r}")
    if "agreement" not in kinds:
        return Reading(Verdict.EMPTY, "", "only greetings, thanks or a name")
    if len(words) > _MAX_AGREEMENT_CHARS:
        return Reading(Verdict.DISPUTED, words, "too long to be a short agreement")
    return Reading(Verdict.CONFIRMED, words, "a short agreement")


# ---- their text: the quote stripped -------------------------------------------------------------


def _intro(header: str) -> str:
    """What a header the parser found is: "block" (Outlook's header block, or a separator: all
    below it is quoted), "wrote" (a line above a quote), or "" (not a real header)."""
    if _SEPARATOR.search(header) or (_FROM_LINE.search(header) and _DATE_LINE.search(header)):
        return "block"
    if _WROTE.search(header) and _TIME_OR_ADDRESS.search(header):
        return "wrote"
    return ""


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _own_lines(message: EmailMessage) -> list[str]:
    """Their lines, in order: the text above the first quote header, and the unquoted lines
    below a "… wrote:" line; an Outlook header block outside any quote ends them."""
    lines: list[str] = []
    for reply in message.replies:
        header = str(reply.headers)
        body = str(reply.full_body).split("\n")
        kind = _intro(header) if header else "top"
        inside_quote = bool(header) and all(_quoted(h) for h in header.split("\n") if h.strip())
        if kind == "":
            body = str(reply.content).split("\n")  # not a header after all: their own text
        elif kind == "block" and not inside_quote:
            break  # Outlook: everything below its header block is the quoted message
        elif kind in ("wrote", "block") and not any(_quoted(line) for line in body):
            break  # a quote not marked with ">" under its header: all of it is quoted
        lines += [line for line in body if not _quoted(line)]
        lines.append("")
    return lines


# ---- the signature ------------------------------------------------------------------------------


def _split_signature(
    lines: list[str], known: frozenset[str], message: EmailMessage
) -> tuple[list[str], list[str]]:
    """(their words, the signature): cut at the first line that starts a signature when all
    that follows it looks like one; else nothing is cut."""
    for start in _signature_starts(lines, known, message):
        block = lines[start:]
        if _is_signature(block, known):
            return lines[:start], block
    return lines, []


def _signature_starts(lines: list[str], known: frozenset[str], message: EmailMessage) -> list[int]:
    """Lines where a signature may start: the parser's rule (sign-offs, "--", "Sent from my …",
    Outlook's underscores) and ours (a sign-off with a name, their name on its own line)."""
    text = "\n".join(lines)
    offsets = [0, *(m.end() for m in re.finditer("\n", text))]
    starts: set[int] = set()
    pos = 0
    while (m := message.SIGNATURE_REGEX.search(text, pos)) is not None:
        at = m.start() + len(m.group()) - len(m.group().lstrip())
        first = max(i for i, o in enumerate(offsets) if o <= at)
        starts.add(first)
        if first + 1 >= len(offsets):
            break
        pos = offsets[first + 1]
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and (
            is_sign_off(stripped) or is_footer(stripped) or is_name(stripped, known, strict=True)
        ):
            starts.add(i)
        elif stripped and (is_name(stripped, known) or is_title(stripped)) and _has_contact_below(lines, i):
            starts.add(i)  # an unknown name or a title, with the institution or a phone below it
    return sorted(starts)


def _has_contact_below(lines: list[str], start: int) -> bool:
    return any(is_contact(line.strip()) or is_org(line.strip()) for line in lines[start + 1 :])


def _is_signature(block: list[str], known: frozenset[str]) -> bool:
    """Every line is a sign-off, a mail app's footer, or a name, title, institution or contact
    line that reads as no sentence; none holds a word of reservation or an agreement."""
    filled = [line.strip() for line in block if line.strip()]
    if len(filled) > _MAX_SIGNATURE_LINES:
        return False
    for line in filled:
        if reservation(line) or is_agreement(" ".join(piece.norm for piece in segments(line))):
            return False
        if is_sign_off(line) or is_footer(line) or re.fullmatch(r"-{2,}|_{5,}|—", line):
            continue
        if is_prose(line) or not (is_contact(line) or is_org(line) or is_name(line, known) or is_title(line)):
            return False
    return True


# ---- HTML-only replies ----------------------------------------------------------------------------


def _html_only(raw: bytes) -> str:
    """The HTML body of a message that has no plain-text body ("" when it has one, or none)."""
    try:
        parts: list[Message] = [BytesParser(policy=compat32).parsebytes(raw)]
    except Exception:  # the parser already recorded what was wrong; its text is all we have
        return ""
    html = ""
    while parts:
        part = parts.pop(0)
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            continue  # a forwarded message is not their reply
        if part.is_multipart():
            parts[0:0] = [p for p in part.get_payload() if isinstance(p, Message)]
            continue
        disposition = str(part.get("content-disposition", "")).split(";", 1)[0].strip().lower()
        if part_filename(part) or disposition == "attachment":
            continue
        payload = part.get_payload(decode=True)
        body = decode_bytes(payload if isinstance(payload, bytes) else b"", part.get_content_charset())
        if ctype == "text/plain" and body.strip():
            return ""  # an empty plain part beside the HTML (some clients send one) does not count
        if ctype == "text/html" and not html:
            html = body
    return html


class _Blockquotes(HTMLParser):
    """Finds where each outermost <blockquote> starts and ends in the HTML source."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.line_starts = [0, *(m.end() for m in re.finditer("\n", html))]
        self.depth = 0
        self.begin = 0
        self.spans: list[tuple[int, int]] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "blockquote":
            if self.depth == 0:
                self.begin = self._offset()
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote" and self.depth:
            self.depth -= 1
            if self.depth == 0:
                end = self.html.find(">", self._offset())
                self.spans.append((self.begin, end + 1 if end >= 0 else len(self.html)))


def _mark_quotes(html: str) -> str:
    """The HTML with each outermost <blockquote> replaced by one "> …" paragraph."""
    finder = _Blockquotes(html)
    try:
        finder.feed(html)
        finder.close()
    except Exception:  # html.parser is lenient; keep what was found
        pass
    if finder.depth:  # never closed: the quote runs to the end
        finder.spans.append((finder.begin, len(html)))
    out, at = [], 0
    for begin, end in finder.spans:
        out += [html[at:begin], f"<p>{_QUOTE_MARK.replace('>', '&gt;')}</p>"]
        at = end
    return "".join([*out, html[at:]])
