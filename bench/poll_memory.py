"""How much memory a poll takes: peak RSS of `skjemapost poll` over large replies.

Against a real Dovecot (tests/harness/mailservers.py), each reply is a leader's filled form plus a
scanned PDF of about 29 MB (about 40 MB as mail, base64), and the inbox holds 1, then 8 of them.
Each poll runs in a fresh process (the `poll` command's work: connect, poll, send the receipts),
which reports its RSS before the poll (the fixed base: interpreter, libraries, the app loaded)
and its peak during it (Linux's high-water mark, reset just before). Goal: the peak stays under
the base plus 2.5x the largest message, whatever the number of messages.

    python bench/poll_memory.py [--counts 1,8] [--mb 40] [--baseline REV]

--baseline REV measures the same mail with the code of git revision REV too (extracted with
`git archive` into a temporary folder, put first on the child's PYTHONPATH, and setting up its
own project: its schema, form and templates), in the same run. The replies are built by this
tree, so an older revision may read the form differently: the outcomes are printed with the
figures.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOAL = 2.5


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(config: str) -> None:
    """One poll in this process; prints its figures as one JSON line."""
    from service.app.mailing import Mailing
    from service.app.wiring import App
    from service.config import settings

    app = App(settings.load(Path(config), dict(os.environ)))
    app.ready()
    app.processor()  # the directory and the form loaded: part of the base, not of the poll
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the RSS now
    base = _rss_kb("VmRSS")
    report, sent = Mailing(app).poll()
    peak = _rss_kb("VmHWM")
    doc = {"base_kb": base, "peak_kb": peak, "fetched": report.fetched, "sent": sent.sent}
    print(json.dumps(doc | {"outcomes": dict(report.outcomes)}))


def big_reply(project: object, unit: object, i: int, mb: float) -> bytes:
    """A leader's reply with the filled form and a scanned PDF, ``mb`` MB as mail."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_poll import form_reply

    msg = email.message_from_bytes(form_reply(project, unit, i), policy=email.policy.default)
    pdf = b"%PDF-1.7\n" + os.urandom(int(mb * 1_000_000 * 57 / 78))  # base64 + CRLF lines: 78/57
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="referat-styremote.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def measure(world: object, work: Path, count: int, mb: float, code: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from projects import mail_project

    work.mkdir(parents=True)
    p = mail_project(work, world, count)
    largest = 0
    with world.mailbox(p.service) as box:  # type: ignore[attr-defined]
        for i, unit in enumerate(p.units):
            raw = big_reply(p, unit, i, mb)
            largest = max(largest, len(raw))
            box.append(raw, "INBOX")
            del raw
    env = {**os.environ, **p.env, "PYTHONPATH": str(code)}
    if code != ROOT:  # the project as that revision sets it up: its schema, its form and templates
        p.config.write_text(p.config.read_text().replace(str(ROOT), str(code)))
        for db in (p.dir / "data").glob("skjemapost.db*"):
            db.unlink()
        for args in (["init"], ["roster", "import"]):
            command = [sys.executable, "-m", "service", "--config", str(p.config), *args]
            subprocess.run(command, env=env, cwd=code, capture_output=True, check=True)
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(p.config)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the poll failed:\n{out.stderr[-3000:]}")
    doc: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if doc["fetched"] != count:
        raise RuntimeError(f"the poll did not take every reply: {doc}")
    return doc | {"largest": largest}


def extracted(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` under ``into`` (git archive: no change to this checkout)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="1,8", help="messages per poll, comma-separated")
    parser.add_argument("--mb", type=float, default=40.0, help="size of each message as mail")
    parser.add_argument("--baseline", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from harness.mailservers import MailWorld

    counts = [int(c) for c in args.counts.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-pollmem-", dir="/tmp"))
    codes = [("this tree", ROOT)]
    if args.baseline:
        codes.insert(0, (f"baseline {args.baseline}", extracted(args.baseline, work / "baseline")))
    print(f"peak RSS of one poll, replies of {args.mb:.0f} MB (form + scanned PDF), Dovecot on loopback")
    with MailWorld(["service@example.test"]) as world:
        for label, code in codes:
            for count in counts:
                d = measure(world, work / f"{label.split()[0]}-{count}", count, args.mb, code)
                largest, base, peak = d["largest"], d["base_kb"] * 1024, d["peak_kb"] * 1024
                ratio = (peak - base) / largest
                verdict = "within" if peak <= base + GOAL * largest else "OVER"
                print(
                    f"  {label:<18} {count} x {largest / 1e6:.1f} MB: peak {peak / 1e6:6.0f} MB, "
                    f"base {base / 1e6:4.0f} MB, peak - base {(peak - base) / 1e6:5.0f} MB = "
                    f"{ratio:.2f}x the largest message ({verdict} the goal of {GOAL}x); "
                    + ", ".join(f"{k} {v}" for k, v in sorted(d["outcomes"].items()))
                )


if __name__ == "__main__":
    main()
