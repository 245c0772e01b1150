"""One worker at a time: the runner lock, held by `run` for its life and by the commands that
fetch or send mail by hand (send, poll, remind, digest) for theirs.

Two processes draining the outbox at once could each take a row the other has in flight for a
crash leftover and send it twice; two polls at once race on the mailbox (moves, folder
creation). So whatever touches the outbox or the mailbox takes the lock `run` takes, and a
command that finds it held is refused, saying who holds it, rather than waiting.

A lock whose holder was killed stays until it expires (minutes). When the holder ran on this
host and its process is gone, it is taken over at once: that is the crash-recovery path, and
waiting out the expiry would only delay it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service.clock import Clock
from service.config.settings import Schedule
from service.errors import SkjemapostError
from service.store.database import Store

log = logging.getLogger("skjemapost.lease")


class Busy(SkjemapostError, RuntimeError):
    """Another process holds the runner lock."""

    exit_code = 4


def lock_ttl(schedule: Schedule) -> dt.timedelta:
    """How long the lock outlives its holder's last heartbeat: two poll intervals, at least 3
    minutes, so a slow cycle never loses it and a dead holder is waited out soon enough."""
    return dt.timedelta(minutes=max(3, schedule.poll_minutes * 2))


def holder_name(task: str = "") -> str:
    """``host:pid`` (the service) or ``host:pid:task`` (a command run by hand)."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{task}" if task else base


def dead_here(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


class Lease:
    """The runner lock as one holder sees it: take or renew it, beat its heart, let it go.

    `run` holds one for its life (``Runner``), and each hand-run command for its duration
    (``exclusive``). The store keeps the row and makes each step a conditional update
    (``service.store.lock``); the rules of who may take it live here.
    """

    def __init__(self, store: Store, campaign_id: str, holder: str, ttl: dt.timedelta) -> None:
        self.store, self.campaign_id, self.holder, self.ttl = store, campaign_id, holder, ttl

    def acquire(self, now: dt.datetime) -> bool:
        """Take or renew the lock; also take it from a dead holder on this host."""
        store, cid = self.store, self.campaign_id
        if store.acquire_runner(cid, self.holder, now, self.ttl):
            return True
        current = store.runner(cid)
        if current is None or not dead_here(current.holder):
            return False
        if store.take_over_runner(cid, current.holder, self.holder, now, self.ttl):
            log.warning(
                "took over the runner lock from %s, which is gone",
                current.holder,
                extra={"event": "lock.taken_over", "from": current.holder},
            )
            return True
        return False

    def beat(self, now: dt.datetime, detail: dict[str, Any]) -> bool:
        """Renew the lock with what `status` shows of the holder; False once it is lost."""
        return self.store.heartbeat(self.campaign_id, self.holder, now, self.ttl, detail)

    def release(self, now: dt.datetime) -> None:
        self.store.release_runner(self.campaign_id, self.holder, now)


@contextmanager
def exclusive(
    store: Store, campaign_id: str, clock: Clock, task: str, ttl: dt.timedelta = dt.timedelta(minutes=3)
) -> Iterator[None]:
    """Hold the runner lock while the body runs, renewing it from a thread so that a long send
    or a `poll --watch` keeps it; raise Busy at once if another process holds it."""
    lease = Lease(store, campaign_id, holder_name(task), ttl)
    if not lease.acquire(clock.now()):
        current = store.runner(campaign_id)
        who = current.holder if current else "another process"
        beat = f", last heartbeat {current.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if current else ""
        raise Busy(
            f"cannot {task}: {who} is working on campaign {campaign_id}{beat}. The service "
            "(`skjemapost run`) polls, reminds and sends by itself; stop it first "
            "(systemctl stop skjemapost) or wait for the other command to finish"
        )
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease.ttl.total_seconds() / 3):
            if not lease.beat(clock.now(), {"task": task}):
                log.warning("lost the runner lock during %s", task, extra={"event": "lock.lost"})
                return

    thread = threading.Thread(target=renew, name=f"lease-{task}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        lease.release(clock.now())
