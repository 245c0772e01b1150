"""`skjemapost run`: the long-running service. A thin loop over one-shot steps.

Every ``schedule.poll_minutes`` one *cycle* runs: poll the inbox (which sends the answers it
queued), queue what the campaign rules say is due (reminders and escalations go out on working
days at the send hour; see ``campaign``), send the queue, and on the digest day send the weekly
digests. The rules decide by the time passed in, so a cycle that runs late (or after the service
was down for days) sends each due step once, and never every missed step at once.

Only the holder of the runner lock in the database does any of this, so two `run`s on two
machines against one PostgreSQL never both send. The lock has an expiry, renewed by a heartbeat
that `status` shows; a runner that dies is replaced once its lock expires. SIGTERM is honoured
between messages. A server that cannot be reached is logged once, retried with backoff, and the
loop goes on.
"""

from __future__ import annotations

import datetime as dt
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

log = logging.getLogger("skjemapost.run")


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
    def __init__(
        self,
        cycle: Callable[[], dict[str, Any]],
        lock: Lease,
        clock: Clock,
        stop: StopFlag,
        *,
        every_minutes: int,
        tick_seconds: float = 1.0,
        state: RunState | None = None,
    ) -> None:
        self.cycle, self.lock, self.clock, self.stop = cycle, lock, clock, stop
        self.every, self.tick = every_minutes, tick_seconds
        self.state = state or RunState()
        self.retry_at = 0.0
        self.holding = False
        self._said: bool | None = None  # the lock state last logged

    def run(self) -> None:
        """Until SIGTERM: hold the lock, run the cycle on schedule, beat the heart."""
        self.state.started_at = self.clock.now().isoformat()
        jobs = schedule.Scheduler()
        jobs.every(self.every).minutes.do(self.run_cycle)
        jobs.every(30).seconds.do(self.heartbeat)
        first = True
        try:
            while not self.stop():
                if self.ensure_lock() and first:
                    self.run_cycle()  # at once on start, then on schedule
                    first = False
                if self.holding:
                    jobs.run_pending()
                self.sleep(self.tick)
        finally:
            if self.holding:
                self.lock.release(self.clock.now())
                log.info("released the runner lock", extra={"event": "lock.released"})

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
            if message != self.state.last_error:  # the same trouble is logged once, not every tick
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
        """The loop's only wait; SIGTERM ends it early (nothing is in hand here)."""
        self.stop.interruptible = True
        try:
            time.sleep(seconds)
        except StopRequested:
            pass
        finally:
            self.stop.interruptible = False


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
