"""How soon a leader learns that the form arrived: reply delivered -> receipt in their mailbox.

Against a real Dovecot and the SMTP relay (tests/harness/mailservers.py), with `skjemapost run`
as its own process, prints
  1. the time from a reply's delivery into the service's inbox (LMTP done) to its receipt's
     arrival in the leader's mailbox (seen by IMAP IDLE on that mailbox), for N replies delivered
     one at a time: p50, p95 and the slowest; goal: p95 under 5 s. `schedule.poll_minutes` is
     60, so no cycle polls meanwhile: every receipt comes through `run`'s IDLE watch;
  2. the CPU time `run` used over an idle stretch (default a minute) after the last receipt,
     from /proc/<pid>/stat: what an idle `run` costs (its heartbeats, every 30 s, included).
Run: python bench/latency.py [N] [--idle-seconds S]   (defaults: 20 replies, 60 s)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from harness.mailservers import MailWorld  # noqa: E402
from projects import mail_project  # noqa: E402
from test_poll import form_reply  # noqa: E402

AS_OF = "2020-11-23T10:00"  # the campaign's first day, after the send hour: invitations go first
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (fields 14 and 15 of /proc/pid/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def wait_until(condition: object, what: str, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main(n: int, idle_seconds: float) -> None:
    with MailWorld(["service@example.test"]) as world:
        work = Path(tempfile.mkdtemp(prefix="bench-latency-", dir="/tmp"))
        p = mail_project(work, world, n)
        p.config.write_text(p.config.read_text() + "\n[schedule]\npoll_minutes = 60\n")
        replies = [form_reply(p, unit, i) for i, unit in enumerate(p.units)]
        log = work / "run.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "--config", str(p.config), "--as-of", AS_OF, "run"],
            cwd=ROOT,
            env={**os.environ, **p.env},
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        try:
            wait_until(
                lambda: (
                    proc.poll() is not None
                    or (
                        '"event": "watch.idle"' in log.read_text()
                        and all(len(world.messages(u.leader_email)) == 1 for u in p.units)
                    )
                ),
                "the invitations, and `run` watching the inbox",
            )
            if proc.poll() is not None:
                raise SystemExit(f"run ended early:\n{log.read_text()}")
            took = []
            for unit, raw in zip(p.units, replies, strict=True):
                with world.mailbox(unit.leader_email) as leader:
                    leader.idle.start()  # before the delivery: the receipt's EXISTS is not missed
                    world.deliver(raw, p.service, mail_from=unit.leader_email)
                    delivered = time.perf_counter()
                    while not any(b"EXISTS" in line for line in leader.idle.poll(timeout=60)):
                        if time.perf_counter() - delivered > 60:
                            raise SystemExit(f"no receipt for {unit.code} within 60 s:\n{log.read_text()}")
                    took.append(time.perf_counter() - delivered)
                    leader.idle.stop()
            cycles = log.read_text().count('"event": "cycle.done"')
            before = cpu_seconds(proc.pid)
            time.sleep(idle_seconds)
            idle_cpu = cpu_seconds(proc.pid) - before
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        took.sort()
        p95 = took[max(0, round(0.95 * len(took)) - 1)]
        print(
            f"{n} replies with their unit's filled form, delivered one at a time into Dovecot, "
            "each answered by `skjemapost run` (poll_minutes = 60: by its IDLE watch)"
        )
        print(
            f"  reply -> receipt in the leader's mailbox: p50 {statistics.median(took):.2f} s, "
            f"p95 {p95:.2f} s, slowest {took[-1]:.2f} s (goal: p95 under 5 s)"
        )
        print(f"  cycles run meanwhile: {cycles} (the first, at start)")
        print(
            f"  CPU used by `run` over {idle_seconds:.0f} s idle: {idle_cpu * 1000:.0f} ms "
            f"({idle_cpu / idle_seconds:.3%} of one core; /proc counts in {1000 / CLOCK_TICK:.0f} ms ticks)"
        )
        os.system(f"rm -rf {work}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=20, help="replies, one at a time")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="the idle stretch measured")
    args = parser.parse_args()
    main(args.n, args.idle_seconds)
