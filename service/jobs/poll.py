"""Reading the inbox: ``poll_once`` fetches what is new by UID and sees each message through
store -> decide -> commit -> move.

The order is what makes it safe (DESIGN.md, "Inbox"; Mailman's runner):
  1. the raw bytes are archived in the data directory and the message gets its row;
  2. it is processed, and the decision (kind, submissions, answers queued) is committed in one
     transaction;
  3. only then is it moved on the server to its folder; nothing is ever deleted.
A crash between any two steps leaves a row whose status says what is left, and the message still
in the inbox, so the next poll finishes the job and does nothing twice. A message that breaks
processing is put in quarantine with the error, and the loop goes on.

UIDs are remembered per UIDVALIDITY. A new UIDVALIDITY means every UID changed: the inbox is
scanned again from the start, and messages already known (same Message-ID and bytes) are only
moved, never processed again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import imaplib
import logging
import os
import re
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from imap_tools import BaseMailBox

from service.clock import Clock
from service.jobs.decide import Processor
from service.mail.parser import InboundMail, parse, received_time
from service.models import Decision, MessageKind
from service.net.imap import ensure_folder, move_message
from service.store.database import Store
from service.store.inbox import InboundRow

log = logging.getLogger(__name__)
T = TypeVar("T")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
#: a fetch brings at most this many bytes of small messages at once; a larger message comes alone
FETCH_BYTES = 8_000_000
_SLICE = 1 << 20  # what is copied at a time when a whole message is hashed


@dataclass
class PollReport:
    fetched: int = 0
    processed: int = 0
    resumed: int = 0  # rows a crash left half-done, finished now
    already_known: int = 0  # seen before (a rescan after a UIDVALIDITY change)
    rescan: bool = False
    stopped: bool = False  # asked to stop (SIGTERM) before everything new was handled
    outcomes: Counter[str] = field(default_factory=Counter)


class Archive:
    """Raw messages on disk, named by their SHA-256: written once, never changed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, raw: bytes) -> tuple[str, str]:
        digest = hashlib.sha256(raw).hexdigest()
        path = self.root / digest[:2] / f"{digest}.eml"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # a poll on another host may write it too
            try:
                tmp.write_bytes(raw)
            except FileNotFoundError:  # the first message in this folder: make it (once, not per message)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(raw)
            tmp.replace(path)  # whole or absent, even if we are killed mid-write
        return str(path), digest

    def get(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def chunks(self, path: str) -> Iterator[bytes]:
        """The message at ``path`` a slice at a time (OSError if it is gone)."""
        with Path(path).open("rb") as f:
            yield from iter(functools.partial(f.read, _SLICE), b"")


def _new_uids(box: BaseMailBox, last: int) -> list[int]:
    typ, data = box.client.uid("SEARCH", f"UID {last + 1}:*")
    if typ != "OK" or not data or not data[0]:
        return []
    # "last+1:*" matches the highest UID even when it is <= last: drop those
    return sorted(u for u in (int(x) for x in data[0].split()) if u > last)


def _sizes(box: BaseMailBox, uids: Sequence[int]) -> dict[int, int]:
    """Each message's size in bytes (RFC822.SIZE), asked before any message is fetched."""
    sizes: dict[int, int] = {}
    for start in range(0, len(uids), 1000):  # a command line of some kilobytes at most
        chunk = ",".join(map(str, uids[start : start + 1000]))
        typ, data = box.client.uid("FETCH", chunk, "(UID RFC822.SIZE)")
        if typ != "OK":
            raise ConnectionError(f"UID FETCH RFC822.SIZE failed: {data!r}")
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if isinstance(line, bytes) and (uid := _UID.search(line)) and (size := _SIZE.search(line)):
                sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def fetch_groups(uids: Sequence[int], sizes: dict[int, int], count: int, budget: int) -> Iterator[list[int]]:
    """``uids`` in order, in groups fetched together: at most ``count`` messages and ``budget``
    bytes a group, and a message larger than ``budget`` alone. A UID without a size (expunged
    meanwhile) costs nothing: its fetch returns nothing."""
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if group and (len(group) >= count or total + size > budget):
            yield group
            group, total = [], 0
        group.append(uid)
        total += size
    if group:
        yield group


def _fetch(box: BaseMailBox, uids: Sequence[int]) -> list[tuple[int, bytes]]:
    """(uid, raw bytes) without parsing them twice and without setting \\Seen."""
    typ, data = box.client.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise ConnectionError(f"UID FETCH failed: {data!r}")
    return [
        (int(m.group(1)), item[1]) for item in data if isinstance(item, tuple) and (m := _UID.search(item[0]))
    ]


@dataclass
class _Group:
    """What handling one message of a poll needs besides the message: the parts, where it was
    fetched from, and what its fetch group has seen so far."""

    store: Store
    processor: Processor
    archive: Archive
    clock: Clock
    folder: str
    uidvalidity: int
    report: PollReport
    seen: dict[str, list[InboundRow]] = field(default_factory=dict)  # earlier rows by Message-ID
    # Message-ID -> where the messages first stored in this group are archived
    fresh: dict[str, list[str]] = field(default_factory=dict)


def poll_once(
    box: BaseMailBox,
    store: Store,
    processor: Processor,
    archive: Archive,
    clock: Clock,
    *,
    batch: int = 100,
    fetch_bytes: int = FETCH_BYTES,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
) -> PollReport:
    """Fetch and handle everything new in the selected inbox; returns what happened.

    Memory is bounded by the largest message, not by the inbox: sizes are asked first, and
    messages are fetched in groups of at most ``batch`` messages and ``fetch_bytes`` bytes (a
    larger message alone), each group handled, moved and released before the next is fetched.
    """
    report = PollReport()
    campaign, folder = processor.campaign, processor.config.imap.inbox
    status = box.folder.status(folder, ["UIDVALIDITY"])
    uidvalidity = int(status["UIDVALIDITY"])
    state = store.mailbox_state(campaign, folder)
    last = state[1] if state and state[0] == uidvalidity else 0
    if state and state[0] != uidvalidity:
        report.rescan = True
        log.warning("UIDVALIDITY of %s changed (%s -> %s): rescanning", folder, state[0], uidvalidity)
    uids = _new_uids(box, last)
    sizes = _sizes(box, uids) if uids else {}
    template = _Group(store, processor, archive, clock, folder, uidvalidity, report)
    for group in fetch_groups(uids, sizes, batch, fetch_bytes):
        _poll_group(box, template, group, should_stop, progress)
        if should_stop():
            report.stopped = True
            break
    return report


def _poll_group(
    box: BaseMailBox,
    template: _Group,
    group: list[int],
    should_stop: Callable[[], bool],
    progress: Callable[[int], None] | None,
) -> None:
    """Fetch one group, handle its messages in order, then move them and note how far the poll
    got. A message is dropped once handled, and the whole group when this returns."""
    store, campaign = template.store, template.processor.campaign
    known = store.inbound_at_uids(campaign, template.folder, template.uidvalidity, group)
    fetched = deque((uid, raw, None if uid in known else parse(raw)) for uid, raw in _fetch(box, group))
    # one query for the group: which of these Message-IDs were seen before
    seen = store.inbound_with_message_ids(campaign, [m.message_id for _, _, m in fetched if m])
    ctx = replace(template, seen=seen, fresh={})
    moves: dict[str, list[int]] = defaultdict(list)
    done_rows: list[int] = []
    handled = 0
    while fetched and not should_stop():  # between messages: the one in hand is finished
        uid, raw, mail = fetched.popleft()
        ctx.report.fetched += 1
        row_id, target = _handle(ctx, known.get(uid), uid, mail or parse(raw), raw)
        moves[target].append(uid)
        done_rows.append(row_id)
        handled = max(handled, uid)
        if progress:
            progress(1)
    for target, target_uids in moves.items():  # after every commit of the group
        ensure_folder(box, target)
        box.move([str(u) for u in target_uids], target)
    store.mark_done(done_rows, template.clock.now())
    if handled:
        store.set_mailbox_state(
            campaign, template.folder, template.uidvalidity, handled, template.clock.now()
        )


def _handle(ctx: _Group, row: InboundRow | None, uid: int, mail: InboundMail, raw: bytes) -> tuple[int, str]:
    """Take one message as far as "decided and committed"; returns (row id, target folder).
    ``row`` is what the store already holds for this UID."""
    store, processor, report = ctx.store, ctx.processor, ctx.report
    if row is not None and row.status in ("processed", "done") and row.target_folder:
        report.resumed += 1  # decided before a crash; only the move was left
        return row.id, row.target_folder
    now = ctx.clock.now()
    received_at = received_time(mail, now)
    if row is None:
        path, digest = ctx.archive.put(raw)
        earlier = ctx.seen.get(mail.message_id, [])
        same = next((r for r in earlier if r.sha256 == digest and r.target_folder), None)
        if same is not None:
            # the very same message at a new UID (the mailbox was recreated): never twice
            store.rebind_inbound(same.id, ctx.folder, ctx.uidvalidity, uid)
            report.already_known += 1
            return same.id, same.target_folder or processor.folders.processed
        row_id = store.store_inbound(
            processor.campaign,
            message_id=mail.message_id,
            folder=ctx.folder,
            uidvalidity=ctx.uidvalidity,
            uid=uid,
            received_at=received_at,
            sender=mail.from_address,
            subject=mail.subject,
            raw_path=path,
            sha256=digest,
            now=now,
        )
        # A duplicate is the same message: the same Message-ID *and* the same content. Clients
        # and gateways do reuse IDs (an edited resend, a broken generator), and a different
        # message under a known ID may be a submission: it is decided like any other, and noted.
        # Another poll may have stored this very UID meanwhile, and store_inbound handed its row
        # back: that row is this message, not an earlier copy of it.
        others = [r.raw_path for r in earlier if r.id != row_id] + ctx.fresh.get(mail.message_id, [])
        ctx.fresh.setdefault(mail.message_id, []).append(path)
        # the content is hashed only when another message came with this ID, nearly never
        content = content_hash(raw) if others else None
        duplicate = any(_content_at(ctx.archive, other) == content for other in others)
        shared = bool(others) and not duplicate
    else:
        row_id, duplicate, shared = row.id, False, False
        report.resumed += 1
    if duplicate:
        folder = processor.folders.ignored
        decision = commit(
            store,
            processor,
            row_id,
            now,
            lambda: Decision(
                MessageKind.DUPLICATE, "ignored", folder, detail={"message_id": mail.message_id}
            ),
        )
    else:

        def decide() -> Decision:
            decision = processor.decide(mail, row_id, received_at, now)
            if shared:  # noted: another, different message came with the same Message-ID
                return replace(decision, detail=decision.detail | {"message_id_shared": True})
            return decision

        decision = commit(store, processor, row_id, now, decide)
    report.processed += 1
    report.outcomes[decision.outcome] += 1
    return row_id, decision.folder


def content_hash(raw: bytes) -> str:
    """What makes two copies of a message the same message: its body (everything after the
    header block, with LF line ends), not the Received and delivery headers each copy gets on its
    way. Hashed a slice at a time, so a large message is never copied whole."""
    return body_hash(raw[at : at + _SLICE] for at in range(0, len(raw), _SLICE))


def body_hash(chunks: Iterable[bytes]) -> str:
    """``content_hash`` of the message whose bytes are ``chunks`` joined, without joining them:
    the blank line may fall, and a CRLF be split, between two chunks."""
    digest = hashlib.sha256()
    head = bytearray()  # the header block, until its end is found
    in_head, leading, carry = True, True, b""
    for chunk in chunks:
        if in_head:
            searched = max(0, len(head) - 3)  # a blank line may begin in the previous chunk
            head += chunk
            ends = [i for i in (head.find(b"\r\n\r\n", searched), head.find(b"\n\n", searched)) if i >= 0]
            if not ends:
                continue
            chunk, in_head = bytes(head[min(ends) :]), False
        if leading:  # the blank line, and any more empty lines before the body
            chunk = chunk.lstrip(b"\r\n")
            if not chunk:
                continue
            leading = False
        chunk = carry + chunk
        carry = b"\r" if chunk.endswith(b"\r") else b""  # it may begin a CRLF in the next chunk
        digest.update((chunk[:-1] if carry else chunk).replace(b"\r\n", b"\n"))
    if in_head:  # no blank line anywhere: the whole message is its body
        return hashlib.sha256(bytes(head).replace(b"\r\n", b"\n")).hexdigest()
    digest.update(carry)
    return digest.hexdigest()


def _content_at(archive: Archive, path: str) -> str | None:
    try:
        return body_hash(archive.chunks(path))
    except OSError:
        return None  # purged: it cannot be compared, so it is not the same message


def commit(
    store: Store, processor: Processor, row_id: int, now: dt.datetime, decide: Callable[[], Decision]
) -> Decision:
    """Decide a stored message and commit the decision (with the answers it queues) in one
    transaction. A message whose decision cannot be made or stored goes to quarantine, for a
    person: it is kept, never lost. The poll and a person's review both come through here."""
    try:
        decision = decide()
    except Exception as exc:
        log.exception("processing inbound row %s failed; it goes to quarantine", row_id)
        decision = _quarantined(processor, exc)
    try:
        store.record_decision(processor.campaign, row_id, decision, now)
    except Exception as exc:  # the decision cannot be stored: keep the message, for a person
        log.exception("storing the decision for inbound row %s failed; it goes to quarantine", row_id)
        decision = _quarantined(processor, exc)
        store.record_decision(processor.campaign, row_id, decision, now)
    return decision


def settle_review(
    box: BaseMailBox,
    store: Store,
    processor: Processor,
    row: InboundRow,
    *,
    now: dt.datetime,
    decide: Callable[[], Decision],
) -> Decision:
    """A person's choice for a message in review, through the same steps as a poll: decide,
    commit, then move it out of the review folder, then mark it done."""
    decision = commit(store, processor, row.id, now, decide)
    move_message(box, row.message_id, processor.folders.review, decision.folder)
    store.mark_done([row.id], now)
    return decision


def _quarantined(processor: Processor, exc: Exception) -> Decision:
    return Decision(
        MessageKind.ERROR,
        "quarantined",
        processor.folders.quarantine,
        detail={"error": f"{type(exc).__name__}: {exc}"},
    )


class StopRequested(Exception):
    """Raised by ``StopFlag`` to leave an IMAP IDLE wait at once; never mid-message."""


class StopFlag:
    """What SIGTERM sets. Loops check ``requested`` between messages; while the watcher only
    waits on IDLE (``interruptible``), the signal also breaks the wait, since nothing is half-done.
    """

    def __init__(self) -> None:
        self.requested = False
        self.interruptible = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.interruptible:
            raise StopRequested

    def interruptibly(self, wait: Callable[[], T]) -> T | None:
        """Run ``wait`` (a sleep, an IDLE) so that SIGTERM ends it by StopRequested; None
        without waiting when a stop came first."""
        self.interruptible = True  # before looking: a signal in between still interrupts
        try:
            if self.requested:
                return None
            return wait()
        finally:
            self.interruptible = False


def watch(
    connect: Callable[[], BaseMailBox],
    poll: Callable[[BaseMailBox], object],
    stop: StopFlag,
    *,
    idle_seconds: int = 60,
    on_error: Callable[[Exception], None] = lambda e: None,
) -> None:
    """Poll, then wait on IMAP IDLE for new mail (or ``idle_seconds``), until ``stop`` is set.

    A dropped connection or an ``imaplib.IMAP4.abort`` (servers split IDLE lines, see
    test-servers.md) is reported to ``on_error`` and answered by reconnecting, with backoff; a
    server without IDLE is polled every ``idle_seconds`` instead.
    """
    box: BaseMailBox | None = None
    failures = 0
    try:
        while not stop():
            try:
                if box is None:
                    box = connect()
                poll(box)
                failures = 0
                # A message that arrived while we polled is announced (EXISTS) in the answer to
                # one of the poll's commands, not again when IDLE starts: look before idling.
                if box.client.untagged_responses.pop("EXISTS", None):
                    box.client.untagged_responses.pop("RECENT", None)
                    continue
                _pause(stop, functools.partial(box.idle.wait, timeout=idle_seconds), idle_seconds)
            except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error, ConnectionError) as exc:
                on_error(exc)
                box = None
                failures += 1
                _pause(stop, functools.partial(time.sleep, min(2**failures, 60)), 0)
    except StopRequested:
        pass
    finally:
        if box is not None:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                box.logout()


def _pause(stop: StopFlag, wait: Callable[[], object], fallback_seconds: int) -> None:
    """Wait interruptibly (a signal may end it); a server that refuses IDLE gets a plain sleep."""
    try:
        stop.interruptibly(wait)
    except imaplib.IMAP4.error as exc:
        if "IDLE" not in str(exc).upper() or fallback_seconds <= 0:
            raise
        stop.interruptibly(functools.partial(time.sleep, min(fallback_seconds, 30)))
