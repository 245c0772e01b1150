"""Bench `compile` end to end: the master workbook read from a real store (SQLite, or PostgreSQL
with a URL), through `collate.load` and `Operations.compile`, as `skjemapost compile` does.

`bench/compile.py` times the writer alone over in-memory rows; this adds the store's queries and
JSON decoding. Setup (roster import, one stored reply and decision per delivered unit) is not
timed. The compile runs in a fresh subprocess; peak memory is that process's ru_maxrss.

    .venv/bin/python bench/compile_store.py [N_UNITS] [DATABASE_URL]
"""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from compile import _answers  # noqa: E402  (the same answers as the writer bench)
from projects import new_project  # noqa: E402

from service.app.operations import Operations  # noqa: E402
from service.app.wiring import App  # noqa: E402
from service.config import settings as config_mod  # noqa: E402
from service.forms.answers import raised_flags, to_json  # noqa: E402
from service.models import Decision, NewSubmission  # noqa: E402

T0 = dt.datetime(2020, 11, 25, 9, tzinfo=dt.UTC)


def seed(folder: Path, n: int, url: str) -> Path:
    p = new_project(folder, n)
    if url:
        p.use_database(url)
    else:
        p.setup()
    app = App(config_mod.load(p.config, p.env))
    for k, unit in enumerate(p.units):
        if not k % 10:
            continue  # 90 % delivered, as in bench/compile.py
        at = T0 + dt.timedelta(minutes=k)
        answers = _answers(k)
        row = app.store.store_inbound(
            app.campaign_id,
            message_id=f"<m{k}@example.test>",
            folder="INBOX",
            uidvalidity=1,
            uid=k + 1,
            received_at=at,
            sender=unit.leader_email,
            subject="skjema",
            raw_path=f"raw/{k}.eml",
            sha256=f"{k:064x}",
            now=at,
        )
        sub = NewSubmission(
            unit.code,
            at,
            unit.leader_email,
            True,
            to_json(answers),
            (),
            tuple(raised_flags(app.form, answers)),
            "skjema.xlsx",
            f"{k:064x}",
        )
        app.store.record_decision(
            app.campaign_id,
            row,
            Decision("submission", "receipt", "Behandlet", unit.code, submissions=(sub,)),
            at,
        )
    app.close()
    return p.config


def compile_once(config: Path, out: Path) -> None:
    app = App(config_mod.load(config, {"SKJEMAPOST_SECRET": "bench"}))
    start = time.perf_counter()
    _, counts = Operations(app).compile(out)
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.3f} {rss:.1f} {out.stat().st_size / 1e6:.1f} {counts.get('Svar', 0)}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--compile":
        compile_once(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    url = sys.argv[2] if len(sys.argv) > 2 else ""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        config = seed(Path(tmp), n, url)
        where = "PostgreSQL" if url else "SQLite"
        print(f"seeded {n} units ({where}) in {time.perf_counter() - start:.1f} s (not timed below)")
        runs = []
        for i in range(3):
            done = subprocess.run(
                [sys.executable, __file__, "--compile", str(config), f"{tmp}/out{i}.xlsx"],
                check=True,
                capture_output=True,
                text=True,
            )
            took, rss, size, rows = done.stdout.split()
            runs.append((float(took), float(rss)))
            print(
                f"compile   {float(took):.3f} s   {float(rss):.1f} MB peak   {size} MB file   "
                f"{rows} Svar rows"
            )
        print(
            f"\n{n} units from the store, best of 3: {min(t for t, _ in runs):.2f} s, "
            f"peak RSS {max(r for _, r in runs):.1f} MB"
        )


if __name__ == "__main__":
    main()
