"""`skjemapost run`: the long-running service. A thin loop over one-shot steps.

Every ``schedule.poll_minutes`` one *cycle* runs: poll the inbox (which sends the answers it
queued), queue what the campaign rules say is due (reminders and escalations go out on working
days at the send hour; see ``campaign``), send the queue, and on the digest day send the weekly
digests. The rules decide by the time passed in, so a cycle that runs late (or after the service
was down for days) sends each due step once, and never every missed step at once.

Between its scheduled work the runner waits, and how it waits is what makes a receipt come
within seconds: on IMAP IDLE (``jobs.watch.InboxWatch``), so a reply is polled, decided and
answered as soon as the server announces it. Each wait ends at the next scheduled moment (a
cycle, a heartbeat), so the schedule is kept; a server without IDLE is polled by the cycles.
Nothing wakes the process in between: no tick, no busy loop.

Only the holder of the runner lock in the database does any of this, so two `run`s on two
machines against one PostgreSQL never both send. The lock has an expiry, renewed by a heartbeat
(every ``BEAT_SECONDS``) that `status` shows; a runner that dies is replaced once its lock
expires, and a waiting runner looks for the lock as often. SIGTERM ends a wait at once and is
otherwise honoured between messages. A server that cannot be reached is logged once, retried
with backoff, and the loop goes on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schedule

from service.clock import Clock
from service.errors import SkjemapostError
from service.jobs.lease import Lease
from service.jobs.poll import StopFlag, StopRequested
from service.jobs.watch import InboxWatch

log = logging.getLogger("skjemapost.run")

#: how often the holder renews the lock, and a waiting runner looks for it
BEAT_SECONDS = 30


@dataclass
class RunState:
    """What `status` shows of the runner (stored with each heartbeat)."""

    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: str = ""
    last_cycle_at: str = ""
    last_cycle: dict[str, Any] = field(default_factory=dict)
    last_error: str = ""
    failures: int = 0

    def as_detail(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "started_at": self.started_at,
            "last_cycle_at": self.last_cycle_at,
            "last_cycle": self.last_cycle,
            "last_error": self.last_error,
            "failures": self.failures,
        }


class Runner:
    """The loop of `run`: hold the lock, run the cycle on schedule, beat the heart, and wait
    in between on ``watch`` (IMAP IDLE), or in a plain sleep without one."""

    def __init__(
        self,
        cycle: Callable[[], dict[str, Any]],
        lock: Lease,
        clock: Clock,
        stop: StopFlag,
        *,
        every_minutes: int,
        watch: InboxWatch | None = None,
        state: RunState | None = None,
    ) -> None:
        self.cycle, self.lock, self.clock, self.stop = cycle, lock, clock, stop
        self.every, self.watch = every_minutes, watch
        self.state = state or RunState()
        self.retry_at = 0.0
        self.holding = False
        self._said: bool | None = None  # the lock state last logged

    def run(self) -> None:
        """Until SIGTERM: hold the lock, run the cycle on schedule, beat the heart, and watch
        the inbox in between."""
        self.state.started_at = self.clock.now().isoformat()
        jobs: schedule.Scheduler | None = None  # while the lock is held
        try:
            while not self.stop():
                if jobs is not None and self.holding:
                    jobs.run_pending()
                elif self.ensure_lock():
                    self.run_cycle()  # at once when the lock is taken, then on schedule
                    jobs = self.jobs_from_now()
                else:
                    jobs = None
                with contextlib.suppress(StopRequested):  # a SIGTERM just as a wait ends
                    self.wait(jobs if self.holding else None)
        finally:
            if self.watch is not None:
                self.watch.close()
            if self.holding:
                self.lock.release(self.clock.now())
                log.info("released the runner lock", extra={"event": "lock.released"})

    def jobs_from_now(self) -> schedule.Scheduler:
        """The holder's jobs, counted from now: the cycle and the heartbeat."""
        jobs = schedule.Scheduler()
        jobs.every(self.every).minutes.do(self.run_cycle)
        jobs.every(BEAT_SECONDS).seconds.do(self.heartbeat)
        return jobs

    def wait(self, jobs: schedule.Scheduler | None) -> None:
        """Until the next scheduled job, watching the inbox; without the lock (``jobs`` None),
        asleep until the next look for it. SIGTERM ends the wait."""
        seconds = float(BEAT_SECONDS) if jobs is None else max(jobs.idle_seconds or 0.0, 0.0)
        if self.watch is None:
            self.sleep(seconds)
        elif jobs is not None:
            self.watch.wait(seconds)
        else:
            self.watch.close()  # not ours to watch while another runner holds the lock
            self.sleep(seconds)

    def ensure_lock(self) -> bool:
        self.holding = self.lock.acquire(self.clock.now())
        if self.holding != self._said:
            self._said = self.holding
            log.info(
                "runner lock %s",
                "taken" if self.holding else "held by another runner",
                extra={"event": "lock.taken" if self.holding else "lock.waiting"},
            )
        return self.holding

    def heartbeat(self) -> None:
        if self.holding and not self.lock.beat(self.clock.now(), self.state.as_detail()):
            self.holding = False
            log.warning("lost the runner lock", extra={"event": "lock.lost"})

    def run_cycle(self) -> None:
        if not self.holding or self.stop() or time.monotonic() < self.retry_at:
            return
        try:
            result = self.cycle()
        except (SkjemapostError, OSError, ConnectionError) as exc:
            self.state.failures += 1
            message = f"{type(exc).__name__}: {exc}"
            if message != self.state.last_error:  # the same trouble is logged once, not every cycle
                log.error("cycle failed: %s", message, extra={"event": "cycle.failed"})
            self.state.last_error = message
            self.retry_at = time.monotonic() + min(30 * 2 ** (self.state.failures - 1), 900)
        else:
            if self.state.failures:
                log.info(
                    "cycle works again after %d failures",
                    self.state.failures,
                    extra={"event": "cycle.recovered"},
                )
            self.state.failures, self.state.last_error = 0, ""
            self.state.last_cycle = result
            log.info("cycle done", extra={"event": "cycle.done", **result})
        self.state.last_cycle_at = self.clock.now().isoformat()
        self.heartbeat()

    def sleep(self, seconds: float) -> None:
        """A wait without the inbox; SIGTERM ends it early (nothing is in hand here)."""
        with contextlib.suppress(StopRequested):
            self.stop.interruptibly(functools.partial(time.sleep, seconds))


class JsonLogs(logging.Formatter):
    """One JSON object per line: time, level, message and the record's ``extra`` fields."""

    _STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        import json

        doc: dict[str, Any] = {
            "at": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update({k: v for k, v in vars(record).items() if k not in self._STD})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)
