"""`skjemapost run`: one runner at a time, honest status, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from projects import ROOT, mail_project
from test_send import wait_for

pytestmark = pytest.mark.servers
AS_OF = "2021-03-15T10:00"  # a Monday, after the send hour, in the campaign below


def spring(p) -> None:
    text = (
        p.config.read_text()
        .replace('opens = "2020-11-23"', 'opens = "2021-03-15"')
        .replace('deadline = "2020-12-16"', 'deadline = "2021-04-07"')
    )
    p.config.write_text(text + "\n[schedule]\npoll_minutes = 1\n")


def sent(p) -> int:
    return p.query("select count(*) from outbox where status = 'sent' and kind = 'leader-invitation'")[0][0]


def test_two_runners_against_one_database_only_one_sends(tmp_path, mail_world, db_url):
    """Two `run`s (on SQLite and on PostgreSQL): one holds the lock and sends each invitation
    once; the other waits; both stop cleanly on SIGTERM."""
    p = mail_project(tmp_path, mail_world, 6)
    spring(p)
    p.use_database(db_url)
    errs = [tmp_path / "first.log", tmp_path / "second.log"]
    first, second = (
        subprocess.Popen(
            [sys.executable, "-m", "service", "--config", str(p.config), "--as-of", AS_OF, "run"],
            cwd=ROOT,
            env={**os.environ, **p.env},
            stdout=subprocess.DEVNULL,
            stderr=err.open("w"),
        )
        for err in errs
    )

    def both_tried_the_lock() -> bool:  # a slow starter must not be stopped before its first try
        return all('"event": "lock.' in err.read_text() for err in errs)

    wait_for(
        lambda: (
            (sent(p) == 6 and both_tried_the_lock()) or first.poll() is not None or second.poll() is not None
        ),
        "the invitations to go out",
    )
    status = json.loads(p.cli("status", "--json").output)
    holder = status["runner"]["holder"].rsplit(":", 1)[1]
    for proc in sorted((first, second), key=lambda proc: str(proc.pid) == holder):
        proc.send_signal(signal.SIGTERM)  # the waiting one first: it must not take the freed lock
        proc.wait(timeout=30)
    logs = [("", err.read_text()) for err in errs]
    assert [proc.returncode for proc in (first, second)] == [0, 0], logs
    assert all(len(mail_world.messages(u.leader_email)) == 1 for u in p.units)
    holders = {str(proc.pid) for proc in (first, second)}
    assert status["runner"]["holder"].rsplit(":", 1)[1] in holders
    waited = [err for _, err in logs if '"event": "lock.waiting"' in err]
    took = [err for _, err in logs if '"event": "lock.taken"' in err]
    assert len(took) == 1 and len(waited) == 1


def test_unreachable_imap_is_logged_once_and_status_shows_it(tmp_path, mail_world):
    """IMAP down during run: the runner keeps going, logs it once, and status says so."""
    from harness.mailservers import free_ports

    p = mail_project(tmp_path, mail_world, 2)
    spring(p)
    p.config.write_text(
        p.config.read_text().replace(f"port = {mail_world.imap_port}", f"port = {free_ports(1)[0]}")
    )
    proc = p.popen("--as-of", AS_OF, "run")

    def trouble() -> bool:
        return "runner trouble" in p.cli("status").output

    wait_for(lambda: trouble() or proc.poll() is not None, "status to show the trouble")
    assert proc.poll() is None  # still running
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.count('"event": "cycle.failed"') == 1
    assert "cannot connect to the IMAP server" in err


def test_a_reply_is_answered_while_run_waits_not_at_its_next_cycle(tmp_path, mail_world):
    """With cycles two hours apart, replies delivered while `run` waits are polled and answered
    (the receipts in the leaders' mailboxes) long before a cycle comes: `run` watches the inbox
    on IMAP IDLE between its scheduled work. SIGTERM then ends the wait, and run exits cleanly."""
    from test_poll import form_reply

    p = mail_project(tmp_path, mail_world, 2)
    p.config.write_text(p.config.read_text() + "\n[schedule]\npoll_minutes = 120\n")
    log = tmp_path / "run.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "--config", str(p.config), "--as-of", "2020-11-23T10:00", "run"],
        cwd=ROOT,
        env={**os.environ, **p.env},
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    first, second = p.units

    def mails(unit) -> int:
        return len(mail_world.messages(unit.leader_email))

    def ended() -> bool:
        return proc.poll() is not None

    wait_for(
        lambda: (
            ended() or (mails(first) == mails(second) == 1 and '"event": "watch.idle"' in log.read_text())
        ),
        "the invitations, and the inbox watched on IDLE",
    )
    mail_world.deliver(form_reply(p, first, 1), p.service, mail_from=first.leader_email)
    wait_for(lambda: ended() or mails(first) == 2, "the first receipt", timeout=120)
    # the watcher is past its first poll now: only IDLE can bring it the second reply this soon
    mail_world.deliver(form_reply(p, second, 2), p.service, mail_from=second.leader_email)
    wait_for(lambda: ended() or mails(second) == 2, "the second receipt", timeout=120)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    text = log.read_text()
    assert proc.returncode == 0 and "stopped" in out, text
    assert text.count('"event": "cycle.done"') == 1, text  # the one at the start, none since
    assert '"event": "watch.polled"' in text and '"event": "lock.released"' in text
    receipts = p.query("select count(*) from outbox where kind = 'leader-receipt' and status = 'sent'")
    assert receipts == [(2,)]
    assert json.loads(p.cli("status", "--json").output)["runner"]["holder"].endswith(f":{proc.pid}")
