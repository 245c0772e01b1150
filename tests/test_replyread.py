"""The verneombud's reply, read (mail/replyread.py): confirmed, disputed with their own words, or
empty; conservative, never a false "confirmed".

The corpus tests/cosign_replies/ holds real-looking replies in nb and en from the clients people
use (built by make_replies.py; expected.json says by hand what each must read as); the tests
below it pin one rule each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.mail.parser import parse
from service.mail.replyread import Verdict, read_reply, read_text

REPLIES = Path(__file__).parent / "cosign_replies"
EXPECTED: dict[str, dict[str, object]] = json.loads((REPLIES / "expected.json").read_text(encoding="utf-8"))


def test_the_corpus_is_whole():
    """Every .eml has its expected reading and every expectation its .eml; both languages, all
    three readings, at least 30 replies."""
    files = {p.stem for p in REPLIES.glob("*.eml")}
    assert files == set(EXPECTED)
    assert len(files) >= 30
    assert {e["lang"] for e in EXPECTED.values()} == {"nb", "en"}
    assert {e["reading"] for e in EXPECTED.values()} == {"confirmed", "disputed", "empty"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reply_reads_as_expected(name):
    """The reply's reading and its words (verbatim, quote and signature stripped) are as expected."""
    case = EXPECTED[name]
    mail = parse((REPLIES / f"{name}.eml").read_bytes())
    got = read_reply(mail, names=case["names"])  # type: ignore[arg-type]
    assert (got.verdict.value, got.words) == (case["reading"], case["words"]), got.why


# ---- one rule each ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Enig",
        "enig.",
        "ENIG!",
        "Jeg er enig.",
        "Helt enig 🙂",
        "Ok",
        "Ja",
        "Bekreftet",
        "Det stemmer.",
        "Ser bra ut, takk!",
        "Agree",
        "Agreed!",
        "I agree with the form.",
        "Yes",
        "Confirmed",
        "Looks good to me :)",
        "That's correct.",
        "👍",
        "Hei Kari,\nEnig.\nHilsen Siri",
        "Hi all,\nI confirm.\nThanks,\nJohn",
    ],
)
def test_a_short_agreement_confirms(text):
    """An agreement alone, or with a greeting, thanks and a name, is confirmed."""
    assert read_text(text, names=["Siri Løvås"]).verdict is Verdict.CONFIRMED


@pytest.mark.parametrize(
    "text",
    [
        "Ikke enig",
        "Jeg er ikke enig.",
        "Uenig",
        "Nei",
        "Enig, men punkt 3 stemmer ikke.",
        "Enig i det meste",
        "Delvis enig",
        "I don't agree",
        "I do not agree.",
        "Not agreed",
        "Agree, except the meeting date.",
        "Agree?",
        "Ja\nNei",
        "Ja\nKanskje",
        "Enig\n- men antall ansatte er feil",
        "Agree\nThanks, but point 3 is wrong",
        "Enig.\nVi hadde ett møte.",
        "OK, jeg ser på det.",
        "Enig 3",
        "Enig 😡",
        "Enig\nSiri\nMøteform fysisk",
        "Enig\nSiri\nVi på instituttet hadde bare ett møte",
        "Enig\nSiri\nVerneombud\nAntall ansatte 38",
    ],
)
def test_anything_more_than_an_agreement_is_disputed(text):
    """A reservation, a negation, a question, a second sentence: disputed, never confirmed."""
    got = read_text(text, names=["Siri Løvås"])
    assert got.verdict is Verdict.DISPUTED and got.words == text.strip()


def test_a_comment_hidden_below_a_signature_is_not_cut_away():
    """A sign-off followed by more than a signature (a PS, a sentence) stays in their words."""
    text = "Enig.\n\nMvh\nSiri\nMen møtet var 6. november."
    got = read_text(text, names=["Siri Løvås"])
    assert got.verdict is Verdict.DISPUTED and got.words == text


def test_a_signature_is_cut_and_the_words_are_kept_verbatim():
    """Their lines as typed, in order, without the signature under the sign-off."""
    text = (
        "Jeg er ikke enig i punkt 3.\nVi hadde bare ett møte.\n\n"
        "Vennlig hilsen\nSiri Løvås\nVerneombud, NTNU\nTlf. 73 59 00 00"
    )
    got = read_text(text, names=["Siri Løvås"])
    assert got.words == "Jeg er ikke enig i punkt 3.\nVi hadde bare ett møte."


@pytest.mark.parametrize(
    "header",
    [
        "Den 10.12.2020 14:06, skrev HR- og HMS-avdelingen:",
        "tor. 10. des. 2020 kl. 14:06 skrev HR- og HMS-avdelingen <hms@example.edu>:",
        "10. des. 2020 kl. 14:06 skrev HR- og HMS-avdelingen <hms@example.edu>:",
        "On Thu, 10 Dec 2020 at 14:06, HR and HSE Division <hms@example.edu> wrote:",
        "-----Opprinnelig melding-----\nFra: HMS <hms@example.edu>\nSendt: 10. desember 2020 14:06",
        "Fra: HMS <hms@example.edu>\nSendt: torsdag 10. desember 2020 14:06\nTil: Siri\nEmne: Skjema",
        "From: HMS <hms@example.edu>\nSent: Thursday, December 10, 2020 2:06 PM\nTo: Siri\nSubject: Form",
    ],
)
def test_norwegian_and_english_quote_headers_end_their_text(header):
    """Below a quote header (nb or en) is our request, not their words."""
    text = f"Enig.\n\n{header}\n\nHei Siri,\nkan du bekrefte? Dette er ikke ditt svar.\n"
    got = read_text(text)
    assert (got.verdict, got.words) == (Verdict.CONFIRMED, "Enig.")


def test_a_header_without_a_sender_or_time_is_their_own_text():
    """ "Til: alle" in their own words is not an Outlook header block: nothing after it is lost."""
    text = "Enig.\nDato: fredag\nTil: alle ansatte\nMøtet var digitalt."
    got = read_text(text)
    assert got.verdict is Verdict.DISPUTED and "Møtet var digitalt." in got.words


def test_bottom_posting_below_a_quote_is_read():
    """Their answer under the quoted request (Thunderbird) is theirs."""
    text = "On Thu, 10 Dec 2020 at 14:06, HMS <hms@example.edu> wrote:\n> Hei\n> Svar «Enig»\n\nEnig\n"
    assert read_text(text).verdict is Verdict.CONFIRMED


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "> Hei Siri,\n> kan du bekrefte?", "Sendt fra min iPhone", "Hei,\n\nSiri", "Takk!"],
)
def test_nothing_of_their_own_is_empty(text):
    """Only a quote, a mail app's footer, or only a greeting, thanks and a name: empty."""
    got = read_text(text, names=["Siri Løvås"])
    assert (got.verdict, got.words) == (Verdict.EMPTY, "")


def test_html_only_blockquote_is_a_quote():
    """In an HTML-only reply the <blockquote> is the quote, even with no header above it."""
    raw = (
        b"From: Siri <siri@example.edu>\r\nTo: hms@example.edu\r\nSubject: Re: x\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><blockquote type='cite'><div>Hei Siri,</div><div>Dette er ikke ditt svar."
        b"</div></blockquote><div>Enig</div></body></html>"
    )
    got = read_reply(parse(raw))
    assert (got.verdict, got.words) == (Verdict.CONFIRMED, "Enig")


def test_an_empty_plain_part_beside_the_html_is_not_the_reply():
    """Some clients send an empty text/plain beside the HTML: the HTML is read."""
    raw = (
        b"From: Siri <siri@example.edu>\r\nTo: hms@example.edu\r\nSubject: Re: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n--b\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n<div>Enig</div><blockquote>Hei Siri</blockquote>\r\n--b--\r\n"
    )
    got = read_reply(parse(raw))
    assert (got.verdict, got.words) == (Verdict.CONFIRMED, "Enig")
