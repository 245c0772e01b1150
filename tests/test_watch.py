"""`run` between its scheduled work: the inbox watched on IDLE, waits bounded by the schedule,
failures backed off, nothing that spins. Fake time and fake IMAP boxes; no servers, no sleeping
(tests/test_run.py has `run` answering a reply through real Dovecot)."""

from __future__ import annotations

import datetime as dt
import imaplib
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.jobs import runner as runner_mod
from service.jobs import watch as watch_mod
from service.jobs.poll import StopFlag
from service.jobs.runner import BEAT_SECONDS, Runner
from service.jobs.watch import MAX_IDLE_SECONDS, InboxWatch


@dataclass
class FakeTime:
    """time.monotonic and time.sleep on a clock that only sleeping moves."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a wait of nothing: the loop would spin"
        self.sleeps.append(seconds)
        self.now += seconds


class FakeIdle:
    def __init__(self, box: FakeBox) -> None:
        self.box = box

    def wait(self, timeout: float) -> list[bytes]:
        """The server's lines during one IDLE: what the box scripted, else silence to the end."""
        self.box.idles.append(timeout)
        if self.box.script:
            return self.box.script.pop(0)
        self.box.time.now += timeout
        return []


class FakeClient:
    def __init__(self, capabilities: tuple[str, ...]) -> None:
        self.capabilities = capabilities
        self.untagged_responses: dict[str, list[bytes]] = {}
        self.closed = False

    def shutdown(self) -> None:
        self.closed = True


class FakeBox:
    def __init__(self, time: FakeTime, *, idle: bool = True, script: list[list[bytes]] | None = None) -> None:
        self.time = time
        self.client = FakeClient(("IMAP4REV1", "IDLE") if idle else ("IMAP4REV1",))
        self.idle = FakeIdle(self)
        self.script = script or []
        self.idles: list[float] = []
        self.logged_out = False

    def logout(self) -> None:
        self.logged_out = True


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(watch_mod, "time", clock)
    monkeypatch.setattr(runner_mod, "time", clock)
    return clock


def test_new_mail_announced_on_idle_is_polled_at_once(fake_time: FakeTime) -> None:
    """A poll when the connection opens, another as soon as IDLE says EXISTS, then quiet IDLE
    to the end of the wait; never an IDLE longer than the wait has left."""
    box = FakeBox(fake_time, script=[[b"* OK Still here"], [b"* 4 EXISTS", b"* 1 RECENT"]])
    polls: list[float] = []
    watch = InboxWatch(lambda: box, lambda b: polls.append(fake_time.now) or {"polled": 1}, StopFlag())
    watch.wait(30.0)
    assert polls == [1000.0, 1000.0]  # at the connection, and at the EXISTS
    assert fake_time.now == 1030.0 and fake_time.sleeps == []  # the wait spent on IDLE, not asleep
    assert box.idles == [30.0, 30.0, 30.0] and not box.client.closed
    watch.wait(2 * MAX_IDLE_SECONDS)
    assert box.idles[-2:] == [MAX_IDLE_SECONDS, MAX_IDLE_SECONDS]  # re-issued before servers end it
    assert len(polls) == 2
    watch.close()
    assert box.logged_out


def test_mail_announced_during_a_poll_is_polled_without_idling(fake_time: FakeTime) -> None:
    """An EXISTS that came in the answer to one of the poll's own commands (mail arrived while
    it polled) is not announced again by IDLE: it is looked for before idling."""
    box = FakeBox(fake_time)
    polls: list[float] = []

    def poll(b: Any) -> dict[str, int]:
        polls.append(fake_time.now)
        if len(polls) == 1:
            b.client.untagged_responses["EXISTS"] = [b"5"]
        b.client.untagged_responses.setdefault("EXPUNGE", []).append(b"1")
        return {"polled": 1}

    watch = InboxWatch(lambda: box, poll, StopFlag())
    watch.wait(10.0)
    assert polls == [1000.0, 1000.0] and box.idles == [10.0]  # polled again before any IDLE
    assert box.client.untagged_responses == {}  # nothing kept that nobody reads


def test_a_server_without_idle_is_left_to_the_cycles(fake_time: FakeTime) -> None:
    """No IDLE: one poll when connected, the connection closed, then plain sleeps; later waits
    do not connect again (the runner's cycle polls every poll_minutes)."""
    box = FakeBox(fake_time, idle=False)
    connects, polls = [], []
    watch = InboxWatch(lambda: connects.append(1) or box, lambda b: polls.append(1) or {}, StopFlag())
    watch.wait(30.0)
    watch.wait(30.0)
    assert (len(connects), len(polls)) == (1, 1) and box.logged_out
    assert fake_time.sleeps == [30.0, 30.0]


def test_a_failing_server_is_retried_with_backoff_and_logged_once(
    fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections that fail: retried after 30, 60, 120... seconds inside the waits, the same
    trouble logged once, and a working connection logged as recovered."""
    attempts: list[float] = []
    box = FakeBox(fake_time)

    def connect() -> Any:
        attempts.append(fake_time.now)
        if len(attempts) <= 3:
            raise ConnectionRefusedError("connection refused")
        return box

    watch = InboxWatch(connect, lambda b: {}, StopFlag())
    with caplog.at_level(logging.INFO, logger="skjemapost.watch"):
        watch.wait(100.0)
        assert attempts == [1000.0, 1030.0, 1090.0]
        watch.wait(200.0)
    assert attempts == [1000.0, 1030.0, 1090.0, 1210.0]
    events = [getattr(r, "event", "") for r in caplog.records]
    assert events == ["watch.failed", "watch.idle", "watch.recovered"]
    assert fake_time.now == 1300.0


def test_a_connection_lost_during_idle_is_dropped_and_reopened_later(fake_time: FakeTime) -> None:
    """IDLE that breaks (the server hung up): the socket closed, a new connection after the
    backoff, polled at once, since nobody watched in between."""
    boxes: list[FakeBox] = []

    def connect() -> FakeBox:
        boxes.append(FakeBox(fake_time))
        return boxes[-1]

    polls = []
    watch = InboxWatch(connect, lambda b: polls.append(b) or {}, StopFlag())
    first = connect()
    boxes.clear()

    def broken(timeout: float) -> list[bytes]:
        raise imaplib.IMAP4.abort("socket error: EOF")

    first.idle.wait = broken  # type: ignore[method-assign]
    watch.box, watch.idle = first, True
    watch.wait(60.0)
    assert first.client.closed and len(boxes) == 1 and polls == [boxes[0]]
    assert fake_time.sleeps == [30.0]


def test_a_stop_before_the_wait_skips_it(fake_time: FakeTime) -> None:
    stop = StopFlag()
    stop.requested = True
    box = FakeBox(fake_time)
    InboxWatch(lambda: box, lambda b: {}, stop).wait(30.0)
    assert box.idles == [] and fake_time.now == 1000.0


@dataclass
class FakeLease:
    free: bool = True
    acquired: int = 0
    beats: int = 0
    released: bool = False
    ttl: dt.timedelta = dt.timedelta(minutes=10)

    def acquire(self, now: dt.datetime) -> bool:
        self.acquired += 1
        return self.free

    def beat(self, now: dt.datetime, detail: dict[str, Any]) -> bool:
        self.beats += 1
        return True

    def release(self, now: dt.datetime) -> None:
        self.released = True


class RecordingWatch:
    """Stands in for InboxWatch: records each wait the runner asks for; stops after ``n``."""

    def __init__(self, stop: StopFlag, n: int) -> None:
        self.stop, self.n, self.waits = stop, n, []
        self.closed = False

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.stop.requested = len(self.waits) >= self.n

    def close(self) -> None:
        self.closed = True


class FixedClock:
    def now(self) -> dt.datetime:
        return dt.datetime(2020, 11, 23, 9, tzinfo=dt.UTC)


def test_the_holder_waits_on_the_inbox_until_its_next_scheduled_moment() -> None:
    """The cycle at once when the lock is taken, then waits on the inbox, each ending by the
    next scheduled job (the heartbeat, 30 s), none a short tick; the lock released at the end."""
    stop = StopFlag()
    lease, watch, cycles = FakeLease(), RecordingWatch(stop, 3), []
    Runner(
        lambda: cycles.append(1) or {},
        lease,  # type: ignore[arg-type]
        FixedClock(),  # type: ignore[arg-type]
        stop,
        every_minutes=5,
        watch=watch,  # type: ignore[arg-type]
    ).run()
    assert cycles == [1] and lease.acquired == 1 and lease.beats == 1  # the beat after the cycle
    assert len(watch.waits) == 3 and all(1 < s <= BEAT_SECONDS for s in watch.waits), watch.waits
    assert watch.closed and lease.released


def test_a_runner_without_the_lock_sleeps_between_looks_and_never_watches(fake_time: FakeTime) -> None:
    """Another runner holds the lock: no cycle, no inbox watched (no connection kept open); a
    look for the lock every BEAT_SECONDS, asleep in between."""
    stop = StopFlag()
    lease, watch = FakeLease(free=False), RecordingWatch(stop, 1)

    def sleep(seconds: float) -> None:
        FakeTime.sleep(fake_time, seconds)
        stop.requested = len(fake_time.sleeps) >= 3

    fake_time.sleep = sleep  # type: ignore[method-assign]
    Runner(
        lambda: pytest.fail("no cycle without the lock"),
        lease,  # type: ignore[arg-type]
        FixedClock(),  # type: ignore[arg-type]
        stop,
        every_minutes=5,
        watch=watch,  # type: ignore[arg-type]
    ).run()
    assert lease.acquired == 3 and fake_time.sleeps == [BEAT_SECONDS] * 3
    assert watch.waits == [] and watch.closed and not lease.released  # no connection kept either


def test_idling_the_holder_beats_the_heart_and_cycles_on_schedule() -> None:
    """Eleven minutes spent waiting on the inbox (time passed by the waits themselves): a heartbeat
    every 30 s renews the lock, a cycle every 5 minutes runs, each wait ends when one is due."""
    stop = StopFlag()
    lease, cycles = FakeLease(), []
    captured: list[Any] = []

    class Passing(RecordingWatch):
        def wait(self, seconds: float) -> None:
            for job in captured[-1].jobs:  # the waited time passes for the schedule
                job.next_run -= dt.timedelta(seconds=seconds)
            super().wait(seconds)
            if sum(self.waits) >= 660 - 1:
                self.stop.requested = True

    class Capturing(Runner):
        def jobs_from_now(self) -> Any:
            captured.append(super().jobs_from_now())
            return captured[-1]

    watch = Passing(stop, 10**6)
    Capturing(
        lambda: cycles.append(1) or {},
        lease,  # type: ignore[arg-type]
        FixedClock(),  # type: ignore[arg-type]
        stop,
        every_minutes=5,
        watch=watch,  # type: ignore[arg-type]
    ).run()
    # 22 waits of a heartbeat's length; a near-nothing one where a cycle and a beat coincide
    assert sum(s > 1 for s in watch.waits) == 22 and all(s <= BEAT_SECONDS for s in watch.waits)
    assert len(cycles) == 3  # at the start, at 5 and at 10 minutes
    assert lease.beats >= 22  # every 30 s, and after each cycle
