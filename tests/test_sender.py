"""Sending with aiosmtplib through the real STARTTLS+AUTH relay into real Dovecot mailboxes."""

from __future__ import annotations

import asyncio
import email
import email.policy
from pathlib import Path

import pytest

from service.net.smtp import Outgoing, Result, SmtpAuthError, SmtpSettings, SmtpUnavailable, send_all

pytestmark = pytest.mark.servers


def settings(world, **kw) -> SmtpSettings:
    base = dict(
        host=world.host,
        port=world.smtp_port,
        tls="starttls",
        user="service@example.test",
        password=world.password("service@example.test"),
        timeout=10,
        max_connections=2,
        rate_per_minute=100_000,
        retry_attempts=3,
        retry_base_seconds=0.0,
        ca_file=Path(world.cert_path),
    )
    return SmtpSettings(**(base | kw))


def message(to: str, subject: str) -> bytes:
    return (
        f"From: service@example.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.test>\r\n\r\nHei\r\n"
    ).encode()


def run(msgs, s):
    started, done = [], {}
    asyncio.run(send_all(msgs, s, lambda m: started.append(m.key), lambda m, r: done.__setitem__(m.key, r)))
    return started, done


def subjects(world, user):
    return [
        email.message_from_bytes(raw, policy=email.policy.default)["Subject"] for raw in world.messages(user)
    ]


def test_many_messages_over_reused_starttls_connections(mail_world):
    """20 messages over 2 authenticated STARTTLS connections all land in the right mailboxes."""
    users = [mail_world.new_user("lead") for _ in range(4)]
    msgs = [
        Outgoing(i, "service@example.test", (users[i % 4],), message(users[i % 4], f"m{i}"))
        for i in range(20)
    ]
    journal_before = len(mail_world.smtp_journal())
    started, done = run(msgs, settings(mail_world))
    assert sorted(started) == list(range(20))
    assert all(r == Result("sent") for r in done.values())
    for k, user in enumerate(users):
        assert sorted(subjects(mail_world, user)) == sorted(f"m{i}" for i in range(k, 20, 4))
    data = [e for e in mail_world.smtp_journal()[journal_before:] if e["event"] == "data"]
    assert len(data) == 20
    assert {e["auth_user"] for e in data} == {"service@example.test"}
    assert len({tuple(e["peer"]) for e in data}) == 2  # two connections, each reused


def test_4xx_is_retried_and_then_delivered(mail_world):
    """A 451 at DATA is retried with backoff; the message is delivered once."""
    user = mail_world.new_user("retry")
    mail_world.smtp_fault(451, count=2, to=user)
    _, done = run(
        [Outgoing(1, "service@example.test", (user,), message(user, "retry"))], settings(mail_world)
    )
    assert done[1].fate == "sent"
    assert subjects(mail_world, user) == ["retry"]


def test_5xx_fails_at_once_with_the_servers_reply(mail_world):
    """A 554 is permanent: no retry, the row fails with the server's reply, others still go."""
    bad, good = mail_world.new_user("bad"), mail_world.new_user("good")
    mail_world.smtp_fault(554, "5.7.1 Message rejected as spam", to=bad)
    _, done = run(
        [
            Outgoing(1, "service@example.test", (bad,), message(bad, "x")),
            Outgoing(2, "service@example.test", (good,), message(good, "y")),
        ],
        settings(mail_world, max_connections=1),
    )
    assert done[1].fate == "failed" and "554" in done[1].detail and "spam" in done[1].detail
    assert done[2].fate == "sent"
    assert subjects(mail_world, bad) == [] and subjects(mail_world, good) == ["y"]


def test_unknown_recipient_fails_with_reason(mail_world):
    """A recipient the server refuses (550) fails that message only."""
    good = mail_world.new_user("ok")
    _, done = run(
        [
            Outgoing(
                1, "service@example.test", ("nobody@example.test",), message("nobody@example.test", "x")
            ),
            Outgoing(2, "service@example.test", (good,), message(good, "z")),
        ],
        settings(mail_world),
    )
    assert done[1].fate == "failed" and "550" in done[1].detail
    assert done[2].fate == "sent"


def test_dropped_connection_is_retried_on_a_new_one(mail_world):
    """The server hanging up mid-transaction: reconnect, resend, delivered."""
    user = mail_world.new_user("drop")
    mail_world.smtp_drop(to=user)
    _, done = run(
        [Outgoing(1, "service@example.test", (user,), message(user, "again"))], settings(mail_world)
    )
    assert done[1].fate == "sent"
    assert subjects(mail_world, user) == ["again"]


def test_persistent_4xx_is_deferred_not_failed(mail_world):
    """A 4xx that lasts beyond the retries leaves the message deferred (to be sent later)."""
    user = mail_world.new_user("defer")
    mail_world.smtp_fault(451, count=3, to=user)
    _, done = run(
        [Outgoing(1, "service@example.test", (user,), message(user, "later"))], settings(mail_world)
    )
    assert done[1].fate == "deferred" and "451" in done[1].detail


def test_wrong_password_is_a_clear_error_without_the_password(mail_world):
    """A wrong password names server and user, never the password, and starts nothing."""
    s = settings(mail_world, password="hunter2-wrong")
    with pytest.raises(SmtpAuthError) as err:
        run([Outgoing(1, "service@example.test", ("leader1@example.test",), b"x")], s)
    assert f"{mail_world.host}:{mail_world.smtp_port}" in str(err.value)
    assert "service@example.test" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_server_down_is_a_clear_error(mail_world):
    """Nothing listening: SmtpUnavailable naming the server; no message was started."""
    from harness.mailservers import free_ports

    (port,) = free_ports(1)
    started = []
    with pytest.raises(SmtpUnavailable, match=f"127.0.0.1:{port}"):
        asyncio.run(
            send_all(
                [Outgoing(1, "a@b.c", ("x@y.z",), b"x")],
                settings(mail_world, port=port),
                started.append,
                lambda m, r: None,
            )
        )
    assert started == []


def test_untrusted_certificate_is_refused(mail_world):
    """STARTTLS against a certificate we do not trust fails instead of sending in the clear."""
    with pytest.raises(SmtpUnavailable):
        run(
            [Outgoing(1, "a@example.test", ("leader1@example.test",), b"x")],
            settings(mail_world, ca_file=None),
        )
