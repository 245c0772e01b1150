"""The send path's economies keep its guarantees: the outbox commits about once per message,
never marks a row sent before its "sending" is committed, and sends nothing unrecorded when a
commit fails; the attachment's base64 is byte for byte what the stdlib writes."""

from __future__ import annotations

import base64
import os
from collections import Counter

import pytest
from projects import mail_project

from service.app.mailing import Mailing
from service.app.wiring import App
from service.config import settings as config_mod
from service.errors import StoreError
from service.mail.compose import _base64_lines


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 114, 20_000, 20_001])
def test_base64_lines_are_the_stdlibs_with_crlf(size: int) -> None:
    data = os.urandom(size)
    assert _base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")


def _app(p) -> App:
    return App(config_mod.load(p.config, p.env))


@pytest.mark.servers
def test_one_commit_a_message_each_row_sending_before_it_is_sent(tmp_path, mail_world) -> None:
    """12 invitations over 2 connections: one commit per row's "sending" (its outcomes ride
    along with later ones), no row sent before its "sending" was committed, all sent."""
    p = mail_project(tmp_path, mail_world, 12)
    app = _app(p)
    mailing = Mailing(app)
    mailing.queue_invitations(mailing.invitations_due())
    commits: list[list[tuple[int, str, str | None]]] = []
    mark_many = app.store.mark_many

    def recording(marks, now):  # type: ignore[no-untyped-def]
        mark_many(marks, now)
        commits.append(list(marks))

    app.store.mark_many = recording  # type: ignore[method-assign]
    report = mailing.drain()
    assert report.sent == 12
    sending = [row for commit in commits for row, status, _ in commit if status == "sending"]
    assert sorted(sending) == sorted(set(sending)) and len(sending) == 12
    assert all(sum(status == "sending" for _, status, _ in c) <= 1 for c in commits)
    assert len(commits) < 2 * 12  # was one commit for each mark: 24
    committed_at = {}
    for i, commit in enumerate(commits):
        for row, status, _ in commit:
            committed_at.setdefault((row, status), i)
    assert all(committed_at[(row, "sending")] < committed_at[(row, "sent")] for row in sending)
    assert p.query("select status, count(*) from outbox group by status") == [("sent", 12)]


@pytest.mark.servers
def test_a_commit_that_fails_stops_the_drain_and_nothing_went_out_unrecorded(tmp_path, mail_world) -> None:
    """The store fails on the fifth commit (the fourth row's "sent" with the fifth's "sending"),
    over one connection: the drain raises and starts nothing more; the fifth message never went
    out, the fourth's outcome is committed by the drain's last flush; every message that reached
    a mailbox has its row marked sent, the rest are still queued, and a later drain sends them."""
    p = mail_project(tmp_path, mail_world, 12, max_connections=1)
    app = _app(p)
    mailing = Mailing(app)
    mailing.queue_invitations(mailing.invitations_due())
    mark_many, calls = app.store.mark_many, []

    def failing(marks, now):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 5:
            raise StoreError("database error: disk I/O error")
        mark_many(marks, now)

    app.store.mark_many = failing  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        mailing.drain()
    status = dict(p.query("select u.leader_email, o.status from outbox o join units u on u.id = o.unit_id"))
    delivered = {u.leader_email for u in p.units if mail_world.messages(u.leader_email)}
    assert len(calls) == 6  # the fifth failed; the last flush recorded the fourth's "sent"
    assert Counter(status.values()) == Counter({"sent": 4, "queued": 8})
    assert delivered == {address for address, s in status.items() if s == "sent"}
    app.store.mark_many = mark_many  # type: ignore[method-assign]
    assert mailing.drain().sent == 8
    assert all(len(mail_world.messages(u.leader_email)) == 1 for u in p.units)
