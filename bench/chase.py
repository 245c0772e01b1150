"""Bench the reminder step over a large campaign: every unit's state read and the rules asked.

`run` asks this every cycle (every `schedule.poll_minutes`), so it must stay cheap for hundreds
of units and bearable for ten thousand. A store is seeded with N units (90 % of them with a valid
form, as in bench/compile_store.py) and an invitation and a reminder each; then
`chase_once(..., dry_run=True)` (read the states, ask `due` for every unit) is timed on a
reminder day. Setup is not timed.

    .venv/bin/python bench/chase.py [N_UNITS]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from compile_store import seed  # noqa: E402

from service.app.wiring import App  # noqa: E402
from service.config import settings as config_mod  # noqa: E402
from service.jobs.chase import chase_once  # noqa: E402
from service.models import NewMail  # noqa: E402

SENT = dt.datetime(2020, 11, 23, 8, tzinfo=dt.UTC)
REMINDER_DAY = dt.datetime(2020, 12, 9, 8, 30, tzinfo=dt.UTC)  # 09:30 in Oslo, a reminder day


def outreach(app: App) -> None:
    """An invitation and the first reminder for every unit, as sent rows."""
    mails = []
    for unit in app.store.units(app.campaign_id):
        for kind, key in (
            ("leader-invitation", "invitation"),
            ("leader-reminder-before", "reminder-before:1"),
        ):
            digest = hashlib.sha1(f"{unit.code}{key}".encode()).hexdigest()[:16]
            mails.append(
                NewMail(
                    kind,
                    unit.code,
                    f"{app.campaign_id}:{unit.code}:{key}",
                    f"<{digest}@x>",
                    (unit.leader_email,),
                    "s",
                    b"x",
                )
            )
    app.store.queue(app.campaign_id, mails, SENT)
    for row in app.store.outbox_rows(app.campaign_id, ["queued"]):
        app.store.mark(row.id, "sent", SENT)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        config = seed(Path(tmp), n, "")
        app = App(config_mod.load(config, {"SKJEMAPOST_SECRET": "bench"}))
        outreach(app)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            report = chase_once(app.store, app.config, app.letters, REMINDER_DAY, dry_run=True)
            times.append(time.perf_counter() - start)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"chase (dry run) over {n} units: best {min(times):.3f} s of 3, {len(report.due)} due, peak RSS {rss:.0f} MB"
        )
        app.close()


if __name__ == "__main__":
    main()
