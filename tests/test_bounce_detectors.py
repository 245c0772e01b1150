"""The bounce detectors measured against the corpus: what the RFC 3464 reader, GNU Mailman's
detectors (``flufl.bounce``) and our own rules each find, and that the library is worth having.

Each source is asked on its own for the failed (or delayed) address of every bounce and delay
in tests/corpus; the expected address is the twin's. ``flufl.bounce`` is only ever asked about
mail that other evidence already calls a bounce (as Mailman asks it only about mail sent to a
bounce address), but here it is also run over every other message to show it names nobody there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.mail import bounces, failures
from service.mail.parser import InboundMail, parse

CORPUS = Path(__file__).parent / "corpus"
NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))


def twin(name: str) -> dict:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


BOUNCES = [n for n in NAMES if twin(n)["kind"] in ("bounce", "delay")]
OTHERS = [n for n in NAMES if n not in BOUNCES]


def mail_of(name: str) -> InboundMail:
    return parse((CORPUS / f"{name}.eml").read_bytes())


def found_by(name: str) -> dict[str, set[str]]:
    """Which addresses each source names for the corpus bounce ``name``."""
    mail = mail_of(name)
    ev = bounces.evidence(mail)
    wanted = "delayed" if twin(name)["kind"] == "delay" else "failed"
    permanent, temporary = failures.library_addresses(mail)
    return {
        "rfc3464": {r.address for r in failures.dsn_recipients(mail) if r.outcome == wanted and r.address},
        "flufl.bounce": set(permanent) | set(temporary),
        "x-failed-recipients": set(ev.failed_header),
        "text": set(failures.text_addresses(mail)),
        "returned copy": set(ev.returned.sent_to) if ev.returned else set(),
    }


def catches(name: str) -> set[str]:
    """The sources that name the twin's failed address of ``name``."""
    expected = set(twin(name)["failed_recipients"])
    return {source for source, found in found_by(name).items() if found & expected}


def test_the_corpus_has_bounces_of_every_shape():
    """Clean DSNs, broken ones, text notices, returned invitations: at least 17 to measure."""
    assert len(BOUNCES) >= 17 and len(OTHERS) >= 40


@pytest.mark.parametrize("name", BOUNCES)
def test_every_bounce_is_named_by_at_least_one_source(name):
    """No bounce in the corpus goes without its failed address."""
    assert catches(name), found_by(name)


def test_flufl_bounce_names_nobody_in_mail_that_is_not_a_bounce():
    """No false positive: across every person's mail, auto-reply, report, list mail and our own
    copy, GNU Mailman's detectors name no address."""
    named = {n: failures.library_addresses(mail_of(n)) for n in OTHERS}
    assert {n: found for n, found in named.items() if found != ([], [])} == {}


@pytest.mark.parametrize("name", BOUNCES)
def test_flufl_bounce_never_names_a_wrong_address(name):
    """What the library names in a bounce is the failed address, or nothing."""
    assert found_by(name)["flufl.bounce"] <= set(twin(name)["failed_recipients"])


def test_flufl_bounce_adds_what_neither_the_rfc_3464_reader_nor_our_rules_find():
    """The reason for the dependency: a Sendmail DSN cut off before its delivery-status part and
    a Domino report with only per-message fields are named by the library alone."""
    # the returned copy only confirms: it says whom we sent to, not that it failed
    alone = {n for n in BOUNCES if catches(n) - {"returned copy"} == {"flufl.bounce"}}
    assert {"dsn-sendmail-unclosed-boundary", "dsn-domino-per-message-fields-only"} <= alone


def test_the_rfc_3464_reader_alone_names_the_clean_delivery_reports():
    """The DSN reader names the failed address of each report whose delivery-status part names
    a recipient (also in a forwarded DSN, and from a Diagnostic-Code alone), and of no other."""
    by_reader = {n for n in BOUNCES if "rfc3464" in catches(n)}
    assert by_reader == {
        "dsn-exchange-online-failed",
        "dsn-gmail-failed-with-original",
        "dsn-ironport-diagnostic-code-only",
        "dsn-postfix-delayed",
        "dsn-postfix-failed",
        "nested-dsn-forwarded",
    }
