"""What a duplicate is, through real Dovecot and a poll: the same Message-ID *and* the same
content. Two different messages under one Message-ID are both classified (the second noted);
the same message delivered twice is answered once. And a message the stdlib cannot parse keeps
its sender and subject in its inbox row and in the review listing.

The campaign is the corpus's (test_corpus_pipeline.corpus_project); the messages are corpus
messages, delivered as a mail server would (LMTP adds its own Return-Path and Received lines).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from test_corpus_pipeline import NOW, corpus_project

from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.poll import PollReport, poll_once
from service.net.imap import connect

pytestmark = pytest.mark.servers
CORPUS = Path(__file__).parent / "corpus"
REPLY = "outlook-reply-filled-nb"  # Marit Solberg's valid form for IE-IDI: a receipt is owed
LEADER = "marit.solberg@example.edu"


def corpus_mail(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def message_id(raw: bytes) -> bytes:
    found = re.search(rb"^Message-I[dD]: (<[^>]+>)\r?$", raw, re.M)
    assert found is not None
    return found.group(1)


def with_message_id(raw: bytes, new: bytes) -> bytes:
    """``raw`` with its top-level Message-ID replaced (a client that reuses IDs)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    changed = re.sub(
        rb"^(Message-I[dD]): <[^>]+>", lambda m: m.group(1) + b": " + new, head, count=1, flags=re.M
    )
    assert changed != head
    return changed + sep + body


class Inbox:
    """A fresh service mailbox for the corpus campaign, polled on demand."""

    def __init__(self, tmp_path: Path, mail_world) -> None:
        self.world = mail_world
        self.service = mail_world.new_user("dupes")
        self.project = corpus_project(tmp_path, mail_world, self.service)
        self.app = App(config_mod.load(self.project.config, self.project.env), FixedClock(NOW))

    def deliver(self, raw: bytes) -> None:
        self.world.deliver(raw, self.service, mail_from="x@example.edu")

    def poll(self) -> PollReport:
        box = connect(self.app.imap_settings())
        try:
            return poll_once(box, self.app.store, self.app.processor(), self.app.archive, self.app.clock)
        finally:
            box.logout()

    def rows(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.project.dir / "data" / "skjemapost.db") as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def inbox(tmp_path, mail_world):
    box = Inbox(tmp_path, mail_world)
    yield box
    box.app.close()


def test_two_different_messages_with_one_message_id_are_both_classified(inbox):
    """A leader's form and a bounce arrive under one reused Message-ID: both are classified on
    their own content (a receipt owed, a failing address recorded); the second is noted."""
    reply = corpus_mail(REPLY)
    bounce = with_message_id(corpus_mail("dsn-postfix-failed"), message_id(reply))
    inbox.deliver(reply)
    inbox.deliver(bounce)
    report = inbox.poll()
    assert (report.fetched, report.processed) == (2, 2)
    rows = inbox.rows("select kind, outcome, detail like '%message_id_shared%' from inbound order by id")
    assert rows == [("submission", "receipt", 0), ("bounce", "bounce-recorded", 1)]
    assert inbox.rows("select address from address_failures") == [("james.oconnor@example.edu",)]
    assert inbox.rows("select to_address, kind from outbox") == [(LEADER, "leader-receipt")]


def test_the_same_message_delivered_twice_is_answered_once(inbox):
    """Delivered twice before a poll, and once more before the next: one submission, one receipt;
    the copies are duplicates, left unanswered."""
    reply = corpus_mail(REPLY)
    inbox.deliver(reply)
    inbox.deliver(reply)
    first = inbox.poll()
    inbox.deliver(reply)
    second = inbox.poll()
    assert (first.fetched, second.fetched) == (2, 1)
    kinds = inbox.rows("select kind, outcome from inbound order by id")
    assert kinds == [("submission", "receipt"), ("duplicate", "ignored"), ("duplicate", "ignored")]
    assert inbox.rows("select count(*) from submissions") == [(1,)]
    assert inbox.rows("select to_address from outbox") == [(LEADER,)]


def test_a_message_nested_2000_deep_keeps_its_sender_and_subject(inbox):
    """The stdlib parser gives up on a body nested 2,000 deep: the message is kept, and its inbox
    row and the review listing still show who sent it and its subject."""
    head = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(2000))
    raw = (
        "From: Kari Nordmann <kari.nordmann@example.edu>\r\nTo: hms-skjema@example.edu\r\n"
        "Subject: Dypt nestet\r\nMessage-ID: <deep-2000@example.edu>\r\nMIME-Version: 1.0\r\n"
        + head
        + "Content-Type: text/plain\r\n\r\ndypt\r\n"
    ).encode()
    inbox.deliver(raw)
    inbox.poll()
    assert inbox.rows("select sender, subject, outcome from inbound") == [
        ("kari.nordmann@example.edu", "Dypt nestet", "review")
    ]
    (row,) = inbox.app.store.review_queue("aml-2020")
    assert (row.sender, row.subject) == ("kari.nordmann@example.edu", "Dypt nestet")
