"""How fast `send` gets invitations out: queue (form + render + compose + store) to sent.

Prints messages per second for 2,000 personalised invitations sent through skjemapost's outbox to
an SMTP sink in its own process, and, in the same run, two anchors over the same bytes:
  baseline  smtplib, a new connection per message
  blast     the pre-rendered messages over 4 concurrent aiosmtplib connections (the ceiling here:
            the sink, not the client, limits it)
and where the time of one invitation goes (form, render, compose). Run: python bench/send.py [N]
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
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


def baseline(port: int, msgs: list[tuple[str, bytes]]) -> None:
    for to, raw in msgs:
        with smtplib.SMTP("127.0.0.1", port) as s:
            s.sendmail("bench@example.test", [to], raw)


async def blast(port: int, msgs: list[tuple[str, bytes]], connections: int = 4) -> None:
    it = iter(msgs)

    async def worker() -> None:
        c = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await c.connect()
        for to, raw in it:
            await c.sendmail("bench@example.test", [to], raw)
        await c.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))


def main(n: int) -> None:
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
    app.letters.form_for(Setup(app).units()[0], "nb")  # build the per-language form templates once,
    app.letters.form_for(Setup(app).units()[0], "en")  # as a running service has them
    app.renderer.render("leader-invitation", "nb", app.letters.unit_context(Setup(app).units()[0], "nb"))

    # where one invitation's time goes
    units = Setup(app).units()[:200]
    now = app.clock.now()
    parts: dict[str, float] = {}
    t = time.perf_counter()
    forms = [app.letters.form_for(u, u.language) for u in units]
    parts["form"] = time.perf_counter() - t
    t = time.perf_counter()
    rendered = [
        app.renderer.render("leader-invitation", u.language, app.letters.unit_context(u, u.language))
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
    before = sink.count()
    t0 = time.perf_counter()
    queued = Mailing(app).queue_invitations(Mailing(app).invitations_due())
    t1 = time.perf_counter()
    report = Mailing(app).drain()
    t2 = time.perf_counter()
    assert queued == n and report.sent == n, (queued, report)
    assert sink.count() - before == n
    ours = n / (t2 - t0)

    rows = app.store.outbox_rows(app.campaign_id, ["sent"])
    msgs = [(r.recipients[0], r.payload) for r in rows]
    size = sum(len(m[1]) for m in msgs) / len(msgs)

    before = sink.count()
    t = time.perf_counter()
    baseline(sink.port, msgs)
    base = n / (time.perf_counter() - t)
    assert sink.count() - before == n

    before = sink.count()
    t = time.perf_counter()
    asyncio.run(blast(sink.port, msgs))
    top = n / (time.perf_counter() - t)
    assert sink.count() - before == n
    sink.stop()

    print(
        f"{n} invitations, {size / 1024:.1f} KB each (text + HTML + personalised .xlsx), "
        "sink in its own process"
    )
    print(
        f"  skjemapost send, queue to sent      {ours:7.0f} msg/s   ({ours / top:.0%} of blast; "
        f"queue {t1 - t0:.2f} s, drain {t2 - t1:.2f} s)"
    )
    print(f"  baseline: smtplib, conn per message {base:7.0f} msg/s")
    print(f"  blast: pre-rendered, 4 connections  {top:7.0f} msg/s")
    print(
        "  one invitation, by part (ms):  "
        + ", ".join(f"{k} {v / len(units) * 1000:.2f}" for k, v in parts.items())
    )
    print(
        f"  queueing per message (all parts + store): {(t1 - t0) / n * 1000:.2f} ms;"
        f" draining per message: {(t2 - t1) / n * 1000:.2f} ms"
    )
    os.system(f"rm -rf {work}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
