"""How fast the inbox goes: replies with forms, from the IMAP server to a committed decision.

Against a real Dovecot (tests/harness/mailservers.py), prints
  1. messages per second for `poll_once` over N replies, each with its unit's filled form (fetch,
     archive, row, parse, classify, read and validate the form, the receipt rendered and queued,
     the decision committed, the message moved); goal: at least 100/s;
  2. the cost of a poll that finds nothing new, with 10,000 processed messages behind it and
     with an empty mailbox and database; goal: within 1.5x of each other.
Run: python bench/poll.py [N] [--profile]   (default 2000; building the filled forms is not timed)
--profile runs the timed poll under cProfile and prints its top entries (the rate is then lower).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from harness.mailservers import MailWorld  # noqa: E402
from projects import Project, mail_project  # noqa: E402
from test_poll import form_reply  # noqa: E402

from service.app.mailing import Mailing  # noqa: E402
from service.app.wiring import App  # noqa: E402
from service.config import settings as config_mod  # noqa: E402
from service.jobs.poll import poll_once  # noqa: E402
from service.net.imap import connect  # noqa: E402

_PROJECT: Project | None = None


def _reply(i: int) -> bytes:
    assert _PROJECT is not None
    return form_reply(_PROJECT, _PROJECT.units[i], i)


def app_for(p: Project) -> App:
    return App(config_mod.load(p.config, p.env))


def nothing_new(app: App, runs: int = 50) -> float:
    """Median ms of poll_once on an open connection when nothing is new."""
    box = connect(app.imap_settings())
    processor = app.processor()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        report = poll_once(box, app.store, processor, app.archive, app.clock)
        times.append(time.perf_counter() - t)
        assert report.fetched == 0
    box.logout()
    return statistics.median(times) * 1000


def main(n: int, profile: bool = False) -> None:
    global _PROJECT
    with MailWorld(["service@example.test"]) as world:
        work = Path(tempfile.mkdtemp(prefix="bench-poll-", dir="/tmp"))
        (work / "busy").mkdir()
        (work / "empty").mkdir()
        p = mail_project(work / "busy", world, n)
        _PROJECT = p
        t = time.perf_counter()
        with Pool(2) as pool:
            raws = pool.map(_reply, range(n), chunksize=50)
        built = time.perf_counter() - t
        with world.mailbox(p.service) as box:
            for raw in raws:
                box.append(raw, "INBOX")
        app = app_for(p)
        box = connect(app.imap_settings())
        processor = app.processor()
        profiler = cProfile.Profile() if profile else None
        t = time.perf_counter()
        if profiler:
            profiler.enable()
        report = poll_once(box, app.store, processor, app.archive, app.clock)
        if profiler:
            profiler.disable()
        took = time.perf_counter() - t
        box.logout()
        assert report.fetched == n and report.outcomes["receipt"] == n, report
        print(
            f"{n} replies, each with its unit's filled form ({len(raws[0]) / 1024:.0f} KB), "
            f"Dovecot on loopback (forms built in {built:.0f} s, not timed)"
        )
        print(
            f"  poll and process: {n / took:6.0f} msg/s  ({took:.1f} s; {took / n * 1000:.2f} ms each; "
            f"{len(Mailing(app).queued())} receipts queued)"
        )

        if profiler:
            stats = pstats.Stats(profiler)
            for order in ("tottime", "cumulative"):
                print(f"  profile of the poll, top 25 by {order}:")
                stats.sort_stats(order).print_stats(25)
            return

        # grow to 10,000 processed: the rest as rows and archived mail in the processed folder
        extra = 10_000 - n
        folder = app.config.imap.folders.processed
        now = dt.datetime.now(dt.UTC)
        with world.mailbox(p.service) as mb:
            for i in range(extra):
                raw = raws[i % n].replace(b"Message-ID: <", f"Message-ID: <x{i}.".encode(), 1)
                mb.append(raw, folder)
                path, digest = app.archive.put(raw)
                row = app.store.store_inbound(
                    app.campaign_id,
                    message_id=f"<x{i}>",
                    folder="INBOX",
                    uidvalidity=1,
                    uid=100_000 + i,
                    received_at=now,
                    sender="x@example.test",
                    subject="x",
                    raw_path=path,
                    sha256=digest,
                    now=now,
                )
                app.store.mark_done([row], now)
        busy = nothing_new(app)

        empty = mail_project(work / "empty", world, 1)
        idle = nothing_new(app_for(empty))
        print(
            f"  nothing new: {busy:.2f} ms with 10,000 processed, {idle:.2f} ms empty -> {busy / idle:.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=2000, help="replies in the inbox")
    parser.add_argument("--profile", action="store_true", help="profile the poll and print the top")
    args = parser.parse_args()
    main(args.n, args.profile)
