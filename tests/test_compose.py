"""Composing the bytes of a mail: headers, parts and attachment names that survive every client."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import email.policy
import re

import pytest

from service.mail.compose import Attachment, Envelope, Headers, Mailbox, ascii_filename, compose
from service.mail.msgid import make_message_id
from service.mail.render import Rendered

RENDERED = Rendered(
    subject="Oppsummering og evaluering – frist onsdag 16. desember [ref ABCD-EFGH]",
    text="Hei Øystein,\n\n" + "En lang linje med æøå som forklarer skjemaet. " * 5 + "\n.\nHilsen HR\n",
    html="<p>Hei Øystein, æøå</p>\n<p>" + "x" * 300 + "</p>",
)
WHEN = dt.datetime(2020, 11, 23, 8, 0, tzinfo=dt.UTC)
HEADERS = Headers(
    sender=Mailbox("hms@example.edu", "HR- og HMS-avdelingen"), message_id="<a@example.edu>", date=WHEN
)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def build(**kw) -> bytes:
    envelope = Envelope(
        to=(Mailbox("oystein.kvam@example.edu", "Øystein Kvam"),),
        cc=(Mailbox("mona.bo@example.edu", "Mona Bø"),),
        bcc=("copy@example.edu",),
    )
    headers = Headers(
        sender=Mailbox("hms@example.edu", "HR- og HMS-avdelingen"),
        message_id="<abc.skjemapost@example.edu>",
        date=WHEN,
        reply_to="hms+ABCD-EFGH@example.edu",
        **kw,
    )
    data = b"PK\x03\x04" + bytes(range(256)) * 40
    return compose(
        RENDERED, envelope, headers, [Attachment("Oppsummering og evaluering – HF-ISL.xlsx", data)]
    )


def test_headers_parse_back_exactly():
    """From, To, Cc, Reply-To, Subject (with æøå and the ref), Message-ID and Date all round-trip."""
    msg = parse(build())
    assert msg["From"].addresses[0].display_name == "HR- og HMS-avdelingen"
    assert msg["To"].addresses[0].display_name == "Øystein Kvam"
    assert msg["To"].addresses[0].addr_spec == "oystein.kvam@example.edu"
    assert msg["Cc"].addresses[0].display_name == "Mona Bø"
    assert msg["Reply-To"] == "hms+ABCD-EFGH@example.edu"
    assert msg["Subject"] == RENDERED.subject
    assert msg["Message-ID"] == "<abc.skjemapost@example.edu>"
    assert msg["Date"].datetime == WHEN
    assert "Bcc" not in msg and b"copy@example.edu" not in build()


def test_bodies_and_attachment_round_trip():
    """The text, the HTML and the attachment's bytes come back exactly, with the æøå file name."""
    msg = parse(build())
    # quoted-printable keeps the wire's CRLF; the stdlib's own QP messages parse back the same way
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == RENDERED.text
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n").rstrip("\n") == RENDERED.html
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "Oppsummering og evaluering – HF-ISL.xlsx"
    assert att.get_content() == b"PK\x03\x04" + bytes(range(256)) * 40
    assert att.get_content_type() == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_attachment_has_ascii_fallback_and_rfc2231_name():
    """Old clients get filename="…" in ASCII; others get filename*=utf-8''… with æøå."""
    raw = build()
    assert b'filename="Oppsummering og evaluering - HF-ISL.xlsx"' in raw
    assert b"filename*=utf-8''Oppsummering%20og%20evaluering%20%E2%80%93%20HF-ISL.xlsx" in raw
    assert ascii_filename("Kjøkken – Åsgård «æ».xlsx") == "Kjokken - Asgard ae.xlsx"


def test_wire_format_is_smtp_safe():
    """CRLF line ends only, no line over 998 bytes, pure ASCII on the wire."""
    raw = build()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    raw.decode("ascii")


def test_auto_submitted_only_when_asked():
    """Machine mail carries Auto-Submitted and X-Auto-Response-Suppress; outreach does not."""
    assert parse(build(auto_submitted=True))["Auto-Submitted"] == "auto-generated"
    assert parse(build(auto_submitted=True))["X-Auto-Response-Suppress"] == "All"
    assert "Auto-Submitted" not in parse(build())


def test_envelope_recipients_deduplicated_and_message_ids_unique():
    """Every address once in the envelope, Bcc included; Message-IDs never repeat."""
    env = Envelope(
        to=(Mailbox("a@example.edu"),),
        cc=(Mailbox("A@example.edu"), Mailbox("b@example.edu")),
        bcc=("c@example.edu",),
    )
    assert env.recipients == ("a@example.edu", "b@example.edu", "c@example.edu")
    ids = {make_message_id("example.edu") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.endswith(".skjemapost@example.edu>") for i in ids)


LONG_UNIT = "Institutt for informasjonssikkerhet og kommunikasjonsteknologi ved Fakultet for økonomi"
LONG_SUBJECTS = [
    f"Påminnelse: fristen er om 2 dager – Oppsummering og evaluering 2020, {LONG_UNIT} [ref 7KQM-4XPZ]",
    "Skjema mangler: Institutt for informasjonssikkerhet (IE-IIK) – Oppsummering 2020 [ref 7KQM-4XPZ]",
    f"Oppsummering og evaluering 2020 – skjema for {LONG_UNIT} miljøteknikk miljøteknikk [ref 7KQM-4XPZ]",
    "Receipt: the form for Department of Information Security and Communication Technology has been "
    "registered [ref 7KQM-4XPZ]",
]


def unfolded_subject(raw: bytes) -> str:
    """The Subject as a strict reader sees it: unfolded (RFC 5322 §2.2.3), then RFC 2047-decoded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    value = re.search(r"^Subject: (.*?)\r\n(?![ \t])", head, re.MULTILINE | re.DOTALL)
    assert value is not None
    line = re.sub(r"\r\n(?=[ \t])", "", value.group(1))
    return str(email.header.make_header(email.header.decode_header(line)))


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
def test_a_long_subject_unfolds_to_the_same_text(subject):
    """A subject folded over several lines reads back letter for letter: no doubled space before
    '–', no words run together, in a strict reader and in the stdlib's; no line over 78."""
    raw = compose(Rendered(subject, "x\n", "<p>x</p>"), Envelope(to=(Mailbox("a@example.edu"),)), HEADERS)
    head = raw.split(b"\r\n\r\n", 1)[0]
    block = b"Subject: " + head.split(b"\r\nSubject: ", 1)[1].split(b"\r\nDate:", 1)[0]
    assert block.count(b"\r\n") >= 1, "the sample is meant to be folded"
    assert max(len(line) for line in block.split(b"\r\n")) <= 78
    assert unfolded_subject(raw) == subject
    assert parse(raw)["Subject"] == subject
    assert "  " not in unfolded_subject(raw)
