"""The runner lock taken by hand-run commands: one worker on the outbox and the mailbox at a time.

No mail servers: a command that is refused never connects, and `send --dry-run` needs none.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest
from projects import new_project

from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.lease import Busy, dead_here, exclusive

NOW = dt.datetime(2020, 12, 1, 9, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(minutes=10)


@pytest.fixture
def project(tmp_path):
    p = new_project(tmp_path)
    p.setup()
    return p


def _app(p, now: dt.datetime = NOW) -> App:
    return App(config_mod.load(p.config, p.env), FixedClock(now))


def _gone_pid() -> int:
    """The pid of a process that has just ended (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


@pytest.mark.parametrize("command", [("send",), ("poll",), ("remind",), ("digest",)])
def test_a_command_is_refused_while_another_host_holds_the_lock(project, command):
    """While `run` elsewhere holds the lock, mail commands stop at once, say who holds it, and
    leave the lock alone; dry runs and reports still work."""
    app = _app(project)
    assert app.store.acquire_runner(app.campaign_id, "mail2.example.edu:4242", NOW, TTL)
    result = project.cli("--as-of", "2020-12-01T10:05", *command)
    assert result.exit_code == 4, result.output
    assert "mail2.example.edu:4242" in result.output and "stop it first" in result.output
    assert app.store.runner(app.campaign_id).holder == "mail2.example.edu:4242"
    assert project.cli("--as-of", "2020-12-01T10:05", "send", "--dry-run").exit_code == 0
    assert project.cli("--as-of", "2020-12-01T10:05", "status").exit_code == 0
    app.close()


def test_a_live_process_on_this_host_keeps_its_lock(project):
    """A holder on this host whose process is alive (here: this test) is not taken over."""
    app = _app(project)
    assert app.store.acquire_runner(app.campaign_id, f"{socket.gethostname()}:{os.getpid()}", NOW, TTL)
    assert not dead_here(f"{socket.gethostname()}:{os.getpid()}")
    with pytest.raises(Busy), exclusive(app.store, app.campaign_id, app.clock, "send", TTL):
        pass
    app.close()


def test_a_dead_holder_on_this_host_is_taken_over_at_once(project):
    """A poll killed with SIGKILL leaves its lock unexpired; the next command on the same host
    sees the process is gone and goes ahead instead of waiting out the expiry."""
    app = _app(project)
    dead = f"{socket.gethostname()}:{_gone_pid()}:poll"
    assert dead_here(dead)
    assert app.store.acquire_runner(app.campaign_id, dead, NOW, TTL)
    with exclusive(app.store, app.campaign_id, app.clock, "send", TTL):
        held = app.store.runner(app.campaign_id)
        assert held.holder.endswith(f":{os.getpid()}:send") and held.expires_at == NOW + TTL
    assert app.store.runner(app.campaign_id).expires_at < NOW  # released
    app.close()


def test_a_released_lock_is_free_for_an_earlier_as_of_and_for_run(project):
    """Released means free at any time: a command acting as of an earlier day, and `run`, get it."""
    later = _app(project, NOW + dt.timedelta(days=5))
    with exclusive(later.store, later.campaign_id, later.clock, "remind", TTL):
        assert later.store.runner(later.campaign_id).expires_at > later.clock.now()
    earlier = _app(project)
    with exclusive(earlier.store, earlier.campaign_id, earlier.clock, "poll", TTL):
        pass
    assert earlier.store.acquire_runner(earlier.campaign_id, "mail1.example.edu:1", NOW, TTL)
    later.close()
    earlier.close()


def test_the_lock_is_released_when_the_body_fails(project):
    app = _app(project)
    with pytest.raises(RuntimeError), exclusive(app.store, app.campaign_id, app.clock, "send", TTL):
        raise RuntimeError("the SMTP server went away")
    assert app.store.acquire_runner(app.campaign_id, "mail1.example.edu:1", NOW, TTL)
    app.close()
