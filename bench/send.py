"""How fast `send` gets invitations out: queue (form + render + compose + store) to sent.

Prints messages per second for 2,000 personalised invitations sent through skjemapost's outbox to
an SMTP sink in its own process, and, in the same run, anchors over the same bytes:
  baseline  smtplib, a new connection per message, to each message's first recipient
  blast     the pre-rendered messages over 4 concurrent aiosmtplib connections, to each message's
            first recipient (the ceiling here: the sink, not the client, limits it); the ratio
            printed is against this one, as in earlier runs
  blast, same envelopes   the same, to every recipient of each message (an invitation goes to the
            leader and the verneombud, so the sink does one more RCPT per message than above)
and where the time of one invitation goes (form, render, compose), and the CPU time the sending
process spent per message (the sink's is not counted), which varies less than the rates when
other work shares the machine.
Run: python bench/send.py [N] [--profile]   (--profile: cProfile's top entries, by CPU time, of
the queueing and of the draining, instead of the anchors; the rates are then lower)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import smtplib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from projects import SECRET, Project, make_units  # noqa: E402

from service.app.mailing import Mailing  # noqa: E402
from service.app.setup import Setup  # noqa: E402
from service.app.wiring import App  # noqa: E402
from service.config import settings as config_mod  # noqa: E402
from service.mail.compose import Envelope, Headers, Mailbox, compose  # noqa: E402
from service.mail.msgid import make_message_id  # noqa: E402

SINK = textwrap.dedent("""
    import asyncio, sys
    from aiosmtpd.controller import Controller
    class Sink:
        count = 0
        async def handle_DATA(self, server, session, envelope):
            Sink.count += 1
            return "250 OK"
    ctl = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), data_size_limit=0)
    ctl.start()
    print("ready", flush=True)
    for line in sys.stdin:
        print(Sink.count, flush=True)
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SinkProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def count(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


Sendable = tuple[tuple[str, ...], bytes]  # envelope recipients, bytes


def baseline(port: int, msgs: list[Sendable]) -> None:
    for to, raw in msgs:
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.sendmail("bench@example.test", list(to), raw)


async def blast(port: int, msgs: list[Sendable], connections: int = 4) -> None:
    it = iter(msgs)

    async def worker() -> None:
        c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await c.connect()
        for to, raw in it:
            await c.sendmail("bench@example.test", list(to), raw)
        await c.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_profile(title: str, profiler: cProfile.Profile) -> None:
    stats = pstats.Stats(profiler)
    for order in ("tottime", "cumulative"):
        print(f"  profile of {title}, top 20 by {order} (CPU time):")
        stats.sort_stats(order).print_stats(20)


def main(n: int, profile: bool = False) -> None:
    sink = SinkProcess()
    work = Path(tempfile.mkdtemp(prefix="bench-send-"))
    p = Project(work, make_units(n), {"SKJEMAPOST_SECRET": SECRET})
    p.write_config(
        smtp={
            "host": "127.0.0.1",
            "port": sink.port,
            "tls": "none",
            "max_connections": 4,
            "rate_per_minute": 100_000,
        }
    )
    p.write_roster()
    app = App(config_mod.load(p.config, p.env))
    Setup(app).init()
    Setup(app).import_roster()
    first = Setup(app).units()[0]
    for lang in ("nb", "en"):  # the form templates and mail templates built once, as a running
        app.letters.invitation(replace(first, language=lang), app.clock.now())  # service has them

    # where one invitation's time goes
    units = Setup(app).units()[:200]
    now = app.clock.now()
    parts: dict[str, float] = {}
    t = time.perf_counter()
    forms = [app.letters.form_for(u, u.language) for u in units]
    parts["form"] = time.perf_counter() - t
    t = time.perf_counter()
    rendered = [
        app.renderer.render("leader-invitation", u.language, app.letters.leader_context(u, u.language))
        for u in units
    ]
    parts["render"] = time.perf_counter() - t
    t = time.perf_counter()
    for u, r, f in zip(units, rendered, forms, strict=True):
        compose(
            r,
            Envelope(to=(Mailbox(u.leader_email, u.leader_name),)),
            Headers(Mailbox("hms@example.test"), make_message_id("example.test"), now),
            [f],
        )
    parts["compose"] = time.perf_counter() - t

    # skjemapost: queue to sent
    queueing, draining = cProfile.Profile(time.process_time), cProfile.Profile(time.process_time)
    before = sink.count()
    t0, c0 = time.perf_counter(), cpu_seconds()
    if profile:
        queueing.enable()
    queued = Mailing(app).queue_invitations(Mailing(app).invitations_due())
    queueing.disable()
    t1, c1 = time.perf_counter(), cpu_seconds()
    if profile:
        draining.enable()
    report = Mailing(app).drain()
    draining.disable()
    t2, c2 = time.perf_counter(), cpu_seconds()
    assert queued == n and report.sent == n, (queued, report)
    assert sink.count() - before == n
    ours = n / (t2 - t0)
    if profile:
        sink.stop()
        print(f"{n} invitations, under cProfile: queue {t1 - t0:.2f} s, drain {t2 - t1:.2f} s")
        print_profile("queueing (form, render, compose, store)", queueing)
        print_profile("draining (outbox to SMTP)", draining)
        os.system(f"rm -rf {work}")
        return

    rows = app.store.outbox_rows(app.campaign_id, ["sent"])
    firsts: list[Sendable] = [((r.recipients[0],), r.payload) for r in rows]
    alls: list[Sendable] = [(r.recipients, r.payload) for r in rows]
    size = sum(len(m[1]) for m in firsts) / len(firsts)

    before = sink.count()
    t = time.perf_counter()
    baseline(sink.port, firsts)
    base = n / (time.perf_counter() - t)
    assert sink.count() - before == n

    anchors = []
    for msgs in (firsts, alls):
        before = sink.count()
        t, c = time.perf_counter(), cpu_seconds()
        asyncio.run(blast(sink.port, msgs))
        anchors.append((n / (time.perf_counter() - t), (cpu_seconds() - c) / n * 1000))
        assert sink.count() - before == n
    (top, top_cpu), (same, same_cpu) = anchors
    sink.stop()

    recipients = sum(len(m[0]) for m in alls) / n
    print(
        f"{n} invitations, {size / 1024:.1f} KB each (text + HTML + personalised .xlsx) to "
        f"{recipients:g} recipients each, sink in its own process"
    )
    print(
        f"  skjemapost send, queue to sent      {ours:7.0f} msg/s   ({ours / top:.0%} of blast, "
        f"{ours / same:.0%} of blast with the same envelopes; queue {t1 - t0:.2f} s, "
        f"drain {t2 - t1:.2f} s)"
    )
    print(f"  baseline: smtplib, conn per message {base:7.0f} msg/s   (first recipient)")
    print(f"  blast: pre-rendered, 4 connections  {top:7.0f} msg/s   (first recipient)")
    print(f"  blast, the same envelopes           {same:7.0f} msg/s   (every recipient)")
    print(
        "  one invitation, by part (ms):  "
        + ", ".join(f"{k} {v / len(units) * 1000:.2f}" for k, v in parts.items())
    )
    print(
        f"  queueing per message (all parts + store): {(t1 - t0) / n * 1000:.2f} ms;"
        f" draining per message: {(t2 - t1) / n * 1000:.2f} ms"
    )
    print(
        f"  CPU of the sending process per message: queueing {(c1 - c0) / n * 1000:.2f} ms, "
        f"draining {(c2 - c1) / n * 1000:.2f} ms; blast {top_cpu:.2f} ms, "
        f"blast with the same envelopes {same_cpu:.2f} ms"
    )
    os.system(f"rm -rf {work}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="How fast `send` gets invitations out.")
    parser.add_argument("n", type=int, nargs="?", default=2000, help="invitations (default 2000)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top entries")
    args = parser.parse_args()
    main(args.n, args.profile)
