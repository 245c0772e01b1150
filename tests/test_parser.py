"""The parser: raw bytes in, one InboundMail out, whatever the mail looks like."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import random
import struct
import sys
from pathlib import Path

import pytest

from service.mail.parser import parse, synthetic_message_id
from service.mail.text import decode_bytes, decode_words, html_to_text

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
from builders import tnef

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def msg(head: str, body: str | bytes = "hello\n") -> bytes:
    """A message from header lines and a body written with plain newlines."""
    data = head.strip("\n").replace("\n", "\r\n").encode() + b"\r\n\r\n"
    return data + (body.replace("\n", "\r\n").encode() if isinstance(body, str) else body)


def with_attachment(part_headers: str, data: bytes = b"PK\x03\x04data") -> bytes:
    b64 = base64.encodebytes(data).decode()
    return msg(
        'From: a@example.edu\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        f"--b\nContent-Type: text/plain\n\nsee attached\n--b\n{part_headers.strip()}\n"
        f"Content-Transfer-Encoding: base64\n\n{b64}--b--\n",
    )


# ---- file names ----------------------------------------------------------------------------------


def test_rfc2231_continuations_are_joined_and_decoded():
    """filename*0*/filename*1* pieces with percent escapes give one name with æøå."""
    raw = with_attachment(
        f"Content-Type: {XLSX}\nContent-Disposition: attachment;\n"
        " filename*0*=utf-8''Oppsummering%20og%20evaluering%20%E2%80%93%20;\n"
        " filename*1*=Bj%C3%B8rn%20%C3%86s%C3%B8y.xlsx"
    )
    assert parse(raw).attachments[0].filename == "Oppsummering og evaluering – Bjørn Æsøy.xlsx"


def test_rfc2231_name_wins_over_the_ascii_fallback_in_either_order():
    """filename* is taken over a plain filename=, wherever each stands (compose writes both)."""
    exact, fallback = "filename*=utf-8''Skjema%20%E2%80%93%20%C3%A6.xlsx", 'filename="Skjema - ae.xlsx"'
    for disposition in (f"attachment; {fallback}; {exact}", f"attachment; {exact}; {fallback}"):
        raw = with_attachment(f"Content-Type: {XLSX}\nContent-Disposition: {disposition}")
        assert parse(raw).attachments[0].filename == "Skjema – æ.xlsx"


def test_rfc2047_filename_split_inside_a_character_is_decoded():
    """Outlook's name="=?utf-8?B?...?= =?utf-8?B?...?=" with a UTF-8 'ø' cut in two decodes whole."""
    data = "Skjema for Bjørn.xlsx".encode()
    cut = data.index(b"\xb8")  # between the two bytes of ø
    words = " ".join(f"=?utf-8?B?{base64.b64encode(p).decode()}?=" for p in (data[:cut], data[cut:]))
    raw = with_attachment(
        f'Content-Type: {XLSX};\n\tname="{words}"\nContent-Disposition: attachment;\n\tfilename="{words}"'
    )
    assert parse(raw).attachments[0].filename == "Skjema for Bjørn.xlsx"


def test_iso_8859_1_q_filename_and_content_type_name_fallback():
    """A Q-encoded Latin-1 name= in Content-Type alone (no disposition) names the file."""
    raw = with_attachment(f'Content-Type: {XLSX}; name="=?iso-8859-1?Q?Skjema_v=E5rt.xlsx?="')
    att = parse(raw).attachments[0]
    assert (att.filename, att.content_type, att.origin) == ("Skjema vårt.xlsx", XLSX, "top")


def test_a_windows_path_in_the_name_is_reduced_to_the_file_name():
    """'C:\\Users\\kari\\skjema.xlsx' from old clients becomes 'skjema.xlsx'."""
    raw = with_attachment('Content-Type: application/octet-stream; name="C:\\\\Users\\\\kari\\\\skjema.xlsx"')
    assert parse(raw).attachments[0].filename == "skjema.xlsx"


def test_an_unnamed_attachment_has_an_empty_name_and_a_csv_part_is_a_file():
    """No name at all gives "", never None; text/csv is an attachment, not body text."""
    raw = with_attachment("Content-Type: text/csv; charset=utf-8")
    mail = parse(raw)
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("", "text/csv")]
    assert mail.text == "see attached"


# ---- winmail.dat -------------------------------------------------------------------------------


def winmail_mail(dat: bytes, text: bool = True) -> bytes:
    body = base64.encodebytes(dat).decode()
    plain = "--b\nContent-Type: text/plain; charset=utf-8\n\nHei\n" if text else ""
    return msg(
        'From: a@example.edu\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"',
        f'{plain}--b\nContent-Type: application/ms-tnef; name="winmail.dat"\n'
        f"Content-Transfer-Encoding: base64\n\n{body}--b--\n",
    )


def test_tnef_attachments_are_extracted_with_their_long_names():
    """winmail.dat yields its files, named by their long (Unicode) names, origin "winmail.dat"."""
    xlsx = bytes(range(256)) * 4 + b"\x00\x00"  # trailing NULs must survive
    dat = tnef(
        "Hei fra Outlook",
        [("Oppsummering og evaluering – IE-IIK.xlsx", XLSX, xlsx), ("notat.txt", "text/plain", b"notes")],
    )
    mail = parse(winmail_mail(dat))
    assert [(a.filename, a.content_type, a.origin) for a in mail.attachments] == [
        ("Oppsummering og evaluering – IE-IIK.xlsx", XLSX, "winmail.dat"),
        ("notat.txt", "text/plain", "winmail.dat"),
    ]
    assert mail.attachments[0].data == xlsx
    assert mail.text == "Hei"


def test_tnef_body_is_the_text_when_the_mail_has_no_plain_part():
    """A mail that is only winmail.dat takes its text from the TNEF body, without NULs."""
    mail = parse(winmail_mail(tnef("Vedlagt skjema.", [("a.xlsx", XLSX, b"PK")]), text=False))
    assert mail.text == "Vedlagt skjema."


def test_a_damaged_winmail_dat_is_kept_as_it_is_and_noted():
    """Bytes that are not TNEF stay one attachment named winmail.dat, with a defect."""
    mail = parse(winmail_mail(struct.pack("<I", 0x12345678) + b"junk" * 10))
    assert [(a.filename, a.content_type, a.origin) for a in mail.attachments] == [
        ("winmail.dat", "application/ms-tnef", "top")
    ]
    assert any("winmail.dat" in d for d in mail.defects)


def test_winmail_inside_a_forwarded_message_is_forwarded_winmail_dat():
    """A TNEF file inside a message/rfc822 part has origin "forwarded/winmail.dat"."""
    inner = winmail_mail(tnef("x", [("skjema.xlsx", XLSX, b"PK\x03\x04")])).decode().replace("\r\n", "\n")
    raw = msg(
        'From: b@example.edu\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"',
        f"--o\nContent-Type: text/plain\n\nFwd\n--o\nContent-Type: message/rfc822\n\n{inner}\n--o--\n",
    )
    mail = parse(raw)
    assert [(a.filename, a.origin) for a in mail.attachments] == [("skjema.xlsx", "forwarded/winmail.dat")]
    assert mail.text == "Fwd" and mail.forwarded[0].from_address == "a@example.edu"


def test_a_base64_encoded_forwarded_message_is_decoded():
    """message/rfc822 sent base64-encoded (not allowed, but seen) is still opened."""
    inner = msg("From: x@example.edu\nSubject: indre\nMessage-ID: <in@x>", "innhold\n")
    raw = msg(
        'From: b@example.edu\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"',
        "--o\nContent-Type: text/plain\n\nSe vedlagt\n--o\nContent-Type: message/rfc822\n"
        f"Content-Transfer-Encoding: base64\n\n{base64.encodebytes(inner).decode()}--o--\n",
    )
    forwarded = parse(raw).forwarded
    assert [(f.subject, f.message_id, f.text) for f in forwarded] == [("indre", "<in@x>", "innhold")]


# ---- Message-ID, dates, addresses, headers -----------------------------------------------------


def test_missing_message_id_is_synthesised_from_the_bytes():
    """No Message-ID: a stable <sha256-…@skjemapost.invalid>, the same for the same bytes."""
    raw = msg("From: a@example.edu\nSubject: x")
    mail = parse(raw)
    assert mail.message_id == synthetic_message_id(raw) == parse(raw).message_id
    assert mail.message_id.startswith("<sha256-") and mail.message_id.endswith("@skjemapost.invalid>")
    assert parse(raw + b"!").message_id != mail.message_id
    assert any("Message-ID" in d for d in mail.defects)


def test_message_id_without_angle_brackets_is_bracketed():
    """'Message-ID: abc@host' (no brackets, seen from scanners) becomes <abc@host>."""
    assert parse(msg("Message-ID: abc@host\nFrom: a@b.c")).message_id == "<abc@host>"


def test_dates_become_aware_utc_and_a_bad_date_is_none():
    """+0100 and -0000 are converted to UTC; an unreadable Date is None with a defect."""
    assert parse(msg("Date: Thu, 10 Dec 2020 10:14:22 +0100")).date == dt.datetime(
        2020, 12, 10, 9, 14, 22, tzinfo=dt.UTC
    )
    assert parse(msg("Date: Thu, 10 Dec 2020 10:14:22 -0000")).date == dt.datetime(
        2020, 12, 10, 10, 14, 22, tzinfo=dt.UTC
    )
    bad = parse(msg("Date: i går"))
    assert bad.date is None and any("Date" in d for d in bad.defects)


def test_addresses_are_lowercased_addr_specs_and_names_are_decoded():
    """From, To, Cc and Reply-To give lower-case addresses; an encoded display name is decoded."""
    mail = parse(
        msg(
            "From: =?utf-8?Q?=C3=98ystein_Kvam?= <Oystein.Kvam@Example.EDU>\n"
            'To: "Berg, Ingrid" <ingrid@example.edu>, ola@example.edu\n'
            "Cc: undisclosed-recipients:;\n"
            "Reply-To: <Svar@Example.edu>"
        )
    )
    assert (mail.from_address, mail.from_name) == ("oystein.kvam@example.edu", "Øystein Kvam")
    assert mail.to == ("ingrid@example.edu", "ola@example.edu") and mail.cc == ()
    assert mail.reply_to == "svar@example.edu"
    assert parse(msg("Subject: no sender")).from_address == ""


def test_headers_keep_every_value_decoded_under_lower_case_names():
    """headers maps lower-case names to all values; header() gives the first or ""."""
    mail = parse(
        msg("Received: one\nReceived: two\n  folded\nSubject: =?utf-8?q?SV=3A_Oppsummering_og_evaluering?=")
    )
    assert mail.headers["received"] == ("one", "two  folded")
    assert mail.header("SUBJECT") == mail.subject == "SV: Oppsummering og evaluering"
    assert mail.header("x-missing") == ""


def test_encoded_words_join_drop_the_space_between_and_survive_bad_charsets():
    """Adjacent words lose the space between them; an unknown charset still decodes."""
    assert decode_words("=?utf-8?q?Sp=C3=B8rsm?= =?utf-8?q?=C3=A5l?= om frist") == "Spørsmål om frist"
    assert decode_words("=?iso-8859-1?B?U3D4cnNt5Ww=?=") == "Spørsmål"
    assert decode_words("Re: =?x-unknown?Q?Hei_p=C3=A5_deg?=") == "Re: Hei på deg"
    assert decode_words("=?utf-8?B?!!!?=") in ("!!!", "")


def test_raw_8bit_headers_are_read_as_utf8_or_windows_1252():
    """Unencoded 8-bit subjects (not allowed, but sent) decode as UTF-8, else as cp1252."""
    assert parse("Subject: Spørsmål\r\n\r\nx".encode()).subject == "Spørsmål"
    assert parse(b"Subject: Sp\xf8rsm\xe5l\r\n\r\nx").subject == "Spørsmål"


# ---- bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "data", "text"),
    [
        ("windows-1252", "“Protected View” – €".encode("cp1252"), "“Protected View” – €"),
        ("iso-8859-1", "blåbær".encode("latin-1"), "blåbær"),
        ("x-mac-nordic", "blåbær".encode(), "blåbær"),  # unknown: UTF-8 first
        ("x-mac-nordic", "blåbær".encode("latin-1"), "blåbær"),  # then Latin-1
        ("us-ascii", "blåbær".encode(), "blåbær"),  # wrong label, UTF-8 bytes
        ("hex", b"abc", "abc"),  # a codec that is not a text encoding
        ("utf\x00-8", "blåbær".encode(), "blåbær"),  # a name Python cannot even look up
    ],
)
def test_odd_charsets_never_crash(charset, data, text):
    """Declared, wrong and unknown charsets all decode to the intended text."""
    raw = msg(
        f'From: a@b.c\nContent-Type: text/plain; charset="{charset}"\nContent-Transfer-Encoding: 8bit', data
    )
    assert parse(raw).text == text


def test_decode_bytes_records_an_unknown_charset():
    """An unknown charset name is noted as a defect."""
    defects: list[str] = []
    assert decode_bytes(b"ok", "x-nonsense", defects) == "ok" and defects == ["unknown charset 'x-nonsense'"]


def test_html_only_mail_gives_readable_text_without_script_or_style():
    """HTML-only: text per block, entities decoded, <head>, <style> and <script> dropped."""
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body><p>Hei&nbsp;p&aring; deg</p>"
        "<script>alert(1)</script><ul><li>en</li><li>to</li></ul><div>Mvh<br>Kari</div></body></html>"
    )
    raw = msg("From: a@b.c\nContent-Type: text/html; charset=utf-8", html)
    assert parse(raw).text == "Hei på deg\n\nen\nto\n\nMvh\nKari"
    assert html_to_text("<p>unclosed <b>bold") == "unclosed bold"


def test_plain_alternative_is_preferred_and_html_attachments_still_count():
    """multipart/alternative gives the text/plain part's text; attachments in any branch count."""
    raw = msg(
        'From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="a"',
        "--a\nContent-Type: text/plain\n\nplain words\n"
        '--a\nContent-Type: multipart/mixed; boundary="m"\n\n'
        "--m\nContent-Type: text/html\n\n<p>rich words</p>\n"
        "--m\nContent-Type: application/pdf; name=a.pdf\n\n%PDF\n--m--\n--a--\n",
    )
    mail = parse(raw)
    assert mail.text == "plain words"
    assert [a.filename for a in mail.attachments] == ["a.pdf"]


def test_delivery_status_fields_are_parsed_per_recipient():
    """A DSN's message/delivery-status part gives its per-message and per-recipient fields."""
    raw = msg(
        "From: MAILER-DAEMON@x\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        'report-type=delivery-status; boundary="r"',
        "--r\nContent-Type: text/plain\n\nfailed\n--r\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; x\n\nFinal-Recipient: rfc822; a@y\nAction: failed\nStatus: 5.1.1\n\n"
        "Final-Recipient: rfc822; b@y\nAction: delayed\nStatus: 4.4.1\n--r--\n",
    )
    mail = parse(raw)
    assert (mail.content_type, mail.report_type) == ("multipart/report", "delivery-status")
    (report,) = mail.parts
    assert report.fields["reporting-mta"] == "dns; x"
    assert [(r["final-recipient"], r["action"]) for r in report.recipients] == [
        ("rfc822; a@y", "failed"),
        ("rfc822; b@y", "delayed"),
    ]


def test_a_recipient_block_is_told_by_its_fields_not_by_its_place():
    """A delivery-status part without a per-message block, and one whose recipient block has only
    a Diagnostic-Code, still give their recipients; a part with only per-message fields gives none."""

    def report(body: str) -> tuple[dict[str, str], list[dict[str, str]]]:
        raw = msg(
            'From: x@y\nMIME-Version: 1.0\nContent-Type: multipart/report; boundary="r"',
            f"--r\nContent-Type: message/delivery-status\n\n{body}\n--r--\n",
        )
        (part,) = parse(raw).parts
        return dict(part.fields), [dict(r) for r in part.recipients]

    assert report("Final-Recipient: rfc822; a@y\nAction: failed") == (
        {},
        [{"final-recipient": "rfc822; a@y", "action": "failed"}],
    )
    assert report("Reporting-MTA: dns; x\n\nDiagnostic-Code: smtp; 550 5.1.1 <a@y>: unknown") == (
        {"reporting-mta": "dns; x"},
        [{"diagnostic-code": "smtp; 550 5.1.1 <a@y>: unknown"}],
    )
    assert report("Reporting-MTA: dns; x\nArrival-Date: Mon, 23 Nov 2020 09:00:04 +0100") == (
        {"reporting-mta": "dns; x", "arrival-date": "Mon, 23 Nov 2020 09:00:04 +0100"},
        [],
    )


def test_files_inside_a_returned_copy_of_our_own_mail_are_returned_not_forwarded():
    """Our invitation coming back inside another mail (our Message-ID mark) carries our own form:
    its files are "returned", and the copy's To names the address we sent it to. A forwarded
    message of someone else's stays "forwarded"."""

    def carrying(message_id: str) -> bytes:
        inner = (
            f"From: hms@example.edu\nTo: Kari <kari@example.edu>\nCc: per@example.edu\nMessage-ID: {message_id}\n"
            'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="i"\n\n--i\nContent-Type: text/plain\n\n'
            "Hei\n--i\nContent-Type: application/vnd.ms-excel; name=skjema.xlsx\n\nPK\n--i--\n"
        )
        return msg(
            'From: no-reply@example.edu\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"',
            f"--o\nContent-Type: text/plain\n\nReturned\n--o\nContent-Type: message/rfc822\n\n{inner}\n--o--\n",
        )

    ours = parse(carrying("<a1.skjemapost@example.edu>"))
    assert [a.origin for a in ours.attachments] == ["returned"]
    assert ours.forwarded[0].to == ("kari@example.edu", "per@example.edu")
    theirs = parse(carrying("<a1@mail.example.edu>"))
    assert [a.origin for a in theirs.attachments] == ["forwarded"]


# ---- hostile and broken input ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_garbage_bytes_never_raise(seed):
    """Random bytes, truncated headers and binary junk parse into an InboundMail without raising."""
    rng = random.Random(seed)
    raw = rng.randbytes(rng.randrange(0, 4000))
    if seed % 3 == 0:
        raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n" + raw
    mail = parse(raw)
    assert mail.raw == raw and mail.message_id


def test_empty_and_header_only_input():
    """Empty bytes and a lone header line are parsed, with empty values."""
    empty = parse(b"")
    assert (empty.subject, empty.text, empty.attachments, empty.date) == ("", "", (), None)
    assert parse(b"Subject: only").subject == "only"


def test_nesting_without_end_stops_with_a_defect():
    """A multipart nested 200 deep is cut off at a fixed depth, with a defect, not a crash."""
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(200))
    mail = parse(msg("From: a@b.c\nMIME-Version: 1.0\n" + head + "Content-Type: text/plain\n\ndeep\n"))
    assert any("too deep" in d for d in mail.defects)


def test_a_body_nested_2000_deep_keeps_the_sender_and_the_subject():
    """The stdlib parser recurses on a message nested 2,000 deep and gives up (RecursionError).
    The header block is read on its own first, so the mail still has its sender, subject and
    Message-ID (for its inbox row and the review listing), and the failure is a defect."""
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(2000))
    raw = msg(
        "From: Kari Nordmann <kari@example.edu>\nTo: hms@example.edu\nSubject: Dypt\n"
        "Message-ID: <deep@example.edu>\nMIME-Version: 1.0\n" + head + "Content-Type: text/plain\n\ndeep\n"
    )
    mail = parse(raw)
    assert (mail.from_address, mail.from_name, mail.subject) == ("kari@example.edu", "Kari Nordmann", "Dypt")
    assert (mail.message_id, mail.to, mail.content_type) == (
        "<deep@example.edu>",
        ("hms@example.edu",),
        "multipart/mixed",
    )
    assert any(d.startswith("unparseable body: RecursionError") for d in mail.defects)
    assert (mail.text, mail.attachments) == ("", ())


def test_parsed_mail_is_frozen():
    """InboundMail is immutable."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse(b"Subject: x").subject = "y"  # type: ignore[misc]


def test_control_and_bidi_characters_are_stripped_from_file_names():
    """A right-to-left override makes "skjema<RLO>xslx.exe" show as "skjemaexe.xlsx": what a file
    name shows (in the workbook, in the name of the file sent back) must be what it is."""
    from service.mail.text import clean_filename

    assert clean_filename("skjema\u202exslx.exe") == "skjemaxslx.exe"
    assert clean_filename("a\x07b\u200b\u2066c\u2069.xlsx") == "abc.xlsx"
    assert clean_filename("Skjema – æøå.xlsx") == "Skjema – æøå.xlsx"


@pytest.mark.parametrize("size", [140_000, 400_000, 3_000_000])
def test_a_large_base64_attachment_is_decoded_exactly_whether_or_not_it_is_kept_out_of_the_parser(size):
    """Runs of base64 over ~150 KB bypass the stdlib parser (memory); below that they go through
    it. Either way the bytes are the file's, beside a text part and a forwarded mail that also
    carries one."""
    data = os.urandom(size)
    b64 = base64.encodebytes(data).replace(b"\n", b"\r\n")
    inner = (
        b"From: x@example.edu\r\nSubject: inner\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\nContent-Type: text/plain\r\n\r\ninne\r\n"
        b"--IN\r\nContent-Type: application/pdf; name=inner.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64
        + b"--IN--\r\n"
    )
    raw = (
        b"From: a@example.edu\r\nTo: d@example.edu\r\nSubject: stor\r\nMessage-ID: <big@example.edu>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nVedlagt.\r\n"
        b"--XX\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + b64
        + b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
        + inner
        + b"--XX--\r\n"
    )
    mail = parse(raw)
    assert [(a.filename, a.data == data) for a in mail.attachments] == [("a.pdf", True), ("inner.pdf", True)]
    assert "Vedlagt." in mail.text and not mail.defects
