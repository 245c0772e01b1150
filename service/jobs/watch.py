"""`run`'s eye on the inbox between its scheduled work: IMAP IDLE, so a reply is answered at once.

``InboxWatch.wait(seconds)`` is how the runner spends the time until its next scheduled moment
(the cycle, the heartbeat). It keeps one IMAP connection open and waits on IDLE (RFC 2177) until
the server announces new mail, hands the connection to ``on_mail`` (a poll, which also sends the
answers it queued), and waits again, until ``seconds`` are up. So scheduled work is never late,
and a reply is decided and answered within seconds of its delivery, not at the next cycle.

- An IDLE lasts at most ``MAX_IDLE_SECONDS`` and is then re-issued: servers may end an IDLE
  after 30 minutes (RFC 2177 asks clients to re-issue it before 29). The runner's waits are far
  shorter (its heartbeat comes every 30 s), so this only bounds a caller that asks for more.
- A server without IDLE gets no connection kept open, only plain sleeps: the runner's cycle
  polls every `poll_minutes` (a restart of `run` looks for IDLE again).
- A connection that fails is dropped and the trouble logged once; the next connection is tried
  after a backoff, inside later waits, never in a loop of its own. Right after each connection
  the inbox is polled once, since mail that came while nobody watched was announced to nobody.
- SIGTERM ends a wait at once (``StopFlag.interruptible``, as for ``poll --watch``); a poll in
  hand stops between messages like any other.

Nothing here spins: between events the process sleeps in poll(2) on the IMAP socket, or in a
plain sleep.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from imap_tools import BaseMailBox
from imap_tools.errors import ImapToolsError

from service.errors import SkjemapostError
from service.jobs.poll import StopFlag, StopRequested

log = logging.getLogger("skjemapost.watch")

MAX_IDLE_SECONDS = 25 * 60
_EXISTS = re.compile(rb"^\* \d+ EXISTS\b", re.IGNORECASE)
# what a connection or a poll on it may raise when the server, the network or the store fails;
# anything else is a bug and ends `run`, as in its cycle
TROUBLE = (SkjemapostError, OSError, ConnectionError, imaplib.IMAP4.error, ImapToolsError)


def wait_for_mail(box: BaseMailBox, seconds: float) -> bool:
    """Wait on IDLE for at most ``seconds``; True when the server announced new mail.

    Ends early on any line from the server (Dovecot's "* OK Still here" every few minutes among
    them): the caller decides whether to wait again. A dead connection raises, here or in DONE.
    """
    if _announced(box):  # mail that came during the last command was announced in its answer
        return True
    lines = box.idle.wait(timeout=max(0.0, min(seconds, MAX_IDLE_SECONDS)))
    return any(_EXISTS.match(line) for line in lines) or _announced(box)


def _announced(box: BaseMailBox) -> bool:
    """Whether an EXISTS came in an earlier answer; the other untagged answers kept since (the
    EXPUNGEs of our own moves...) are let go, so a connection open for months does not grow."""
    responses = box.client.untagged_responses
    news = bool(responses.get("EXISTS"))
    responses.clear()
    return news


class InboxWatch:
    """One IMAP connection held open between the runner's scheduled work (see the module)."""

    def __init__(
        self,
        connect: Callable[[], BaseMailBox],
        on_mail: Callable[[BaseMailBox], Mapping[str, Any]],
        stop: StopFlag,
        *,
        backoff_seconds: float = 30.0,
        max_backoff_seconds: float = 900.0,
    ) -> None:
        self.connect, self.on_mail, self.stop = connect, on_mail, stop
        self.backoff, self.max_backoff = backoff_seconds, max_backoff_seconds
        self.box: BaseMailBox | None = None
        self.idle: bool | None = None  # whether the server offers IDLE, once connected
        self.failures = 0
        self.retry_at = 0.0  # time.monotonic() before which no new connection is tried
        self.last_error = ""

    def wait(self, seconds: float) -> None:
        """Spend ``seconds`` watching the inbox, handling new mail as it comes; return early
        only when asked to stop."""
        deadline = time.monotonic() + max(0.0, seconds)
        try:
            while not self.stop() and (left := deadline - time.monotonic()) > 0:
                box = self._box()
                if box is None:  # no IDLE, or backing off: sleep (the cycle polls on schedule)
                    retry = max(self.retry_at - time.monotonic(), 0.0)
                    self.stop.interruptibly(
                        partial(time.sleep, left if self.idle is False else min(left, retry))
                    )
                    continue
                try:
                    if self.stop.interruptibly(partial(wait_for_mail, box, left)):
                        self._handle(box)
                except TROUBLE as exc:
                    self._failed(exc)
        except StopRequested:
            self._drop(cleanly=False)  # perhaps mid-IDLE: nothing more to say to the server

    def close(self) -> None:
        """Log out, if connected (the runner calls this as it stops)."""
        self._drop(cleanly=True)

    def _box(self) -> BaseMailBox | None:
        """The open connection, or a new one (polled once at once); None while backing off or
        when the server has no IDLE."""
        if self.box is not None:
            return self.box
        if self.idle is False or time.monotonic() < self.retry_at:
            return None
        try:
            self.box = self.connect()
            self.idle = "IDLE" in self.box.client.capabilities
            log.info(
                "watching the inbox on IMAP IDLE"
                if self.idle
                else "the IMAP server offers no IDLE: the inbox is polled every cycle",
                extra={"event": "watch.idle" if self.idle else "watch.polling"},
            )
            self._handle(self.box)
        except TROUBLE as exc:
            self._failed(exc)
            return None
        if not self.idle:
            self._drop(cleanly=True)
            return None
        if self.failures:
            log.info(
                "watching the inbox again after %d failures",
                self.failures,
                extra={"event": "watch.recovered"},
            )
            self.failures, self.last_error = 0, ""
        return self.box

    def _handle(self, box: BaseMailBox) -> None:
        summary = self.on_mail(box)
        if any(summary.values()):
            log.info("new mail handled", extra={"event": "watch.polled", **summary})

    def _failed(self, exc: Exception) -> None:
        self._drop(cleanly=False)
        self.failures += 1
        message = f"{type(exc).__name__}: {exc}"
        if message != self.last_error:  # the same trouble is logged once, not at every retry
            log.error("watching the inbox failed: %s", message, extra={"event": "watch.failed"})
        self.last_error = message
        self.retry_at = time.monotonic() + min(self.backoff * 2 ** (self.failures - 1), self.max_backoff)

    def _drop(self, *, cleanly: bool) -> None:
        box, self.box = self.box, None
        if box is None:
            return
        with contextlib.suppress(*TROUBLE):
            if cleanly:
                box.logout()
            else:  # a connection in an unknown state (mid-IDLE, or broken) is just closed
                box.client.shutdown()
