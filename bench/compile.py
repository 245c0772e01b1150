"""Bench `compile`: 10,000 units, every field answered, 1-3 measures each, written as the master
workbook, against the anchor: the same cells written bare by xlsxwriter in constant_memory.

The sources are built directly as row data (``collate.Sources`` over generators), not through the
store, so setup takes no time and the figures are the workbook's own. Each variant runs in a fresh
subprocess; peak memory is that process's ru_maxrss.

    .venv/bin/python bench/compile.py [N_UNITS]
"""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from harness.filling import valid_answers  # noqa: E402

from service.campaign.state import Outreach, Stage, UnitState  # noqa: E402
from service.forms.answers import raised_flags, to_json  # noqa: E402
from service.forms.definition import load_form  # noqa: E402
from service.jobs import collate  # noqa: E402
from service.models import Unit  # noqa: E402

FORM = load_form(ROOT / "forms/oppsummering-og-evaluering.toml")
FACULTIES = ("HF", "IE", "MH", "NV", "OK", "SU", "AD")
T0 = dt.datetime(2020, 11, 25, 9, tzinfo=dt.UTC)


def _units(n: int) -> list[Unit]:
    units = [
        Unit(
            f"{FACULTIES[i % 7]}-U{i:05d}",
            f"Institutt nr. {i} for æøå-studier",
            FACULTIES[i % 7],
            f"Leder Ås {i}",
            f"leder{i:05d}@example.test",
            "nb",
            f"Verneombud {i}",
            f"vo{i:05d}@example.test",
        )
        for i in range(n)
    ]
    return sorted(units, key=lambda u: (u.faculty, u.code))


def _answers(i: int) -> dict[str, object]:
    a = valid_answers(i)
    a.update(
        enhet_kode=f"U{i:05d}",
        enhet_navn=f"Institutt {i}",
        fakultet="IE",
        leder=f"Leder {i}",
        forsvarlig_beskrivelse=f"Beskrivelse {i} av arbeidsmiljøet",
        kommentarer=f"Kommentar fra enhet {i}",
    )
    a["tiltak"] = [
        {
            "beskrivelse": f"Tiltak {k} for enhet {i}",
            "tema": "sosialt_fellesskap",
            "status": "nytt",
            "ansvarlig": "Leder",
            "frist": dt.date(2021, 3, 1 + k),
        }
        for k in range(1 + i % 3)
    ]
    return a


def _state(unit: Unit, valid: bool) -> UnitState:
    """Invited, and reminded once; a valid form in, or not."""
    sent = (Outreach("invitation", T0, "invitation"), Outreach("reminder", T0, "reminder-before:1"))
    return UnitState(
        code=unit.code,
        faculty=unit.faculty,
        leader_email=unit.leader_email,
        stage=Stage.VALID if valid else Stage.INVITED,
        outreach=sent,
        invitation_sent_at=T0,
    )


def sources(n: int) -> collate.Sources:
    units = _units(n)
    done = [u for k, u in enumerate(units) if k % 10]  # 90 % delivered, every field answered
    delivered = frozenset(u.code for u in done)
    stored = {u.code: to_json(_answers(k)) for k, u in enumerate(units)}
    flags = {c: raised_flags(FORM, _answers(k)) for k, c in enumerate(list(stored)[:50])}

    def current() -> Iterator[collate.Version]:
        for k, u in enumerate(done):
            yield collate.Version(
                u.code,
                1,
                T0 + dt.timedelta(minutes=k),
                True,
                answers=stored[u.code],
                flags=flags.get(u.code, []),
            )

    def log() -> Iterator[collate.Version]:
        for k, u in enumerate(done):
            yield collate.Version(
                u.code,
                1,
                T0 + dt.timedelta(minutes=k),
                True,
                u.leader_email,
                f"<m{k}@example.test>",
                f"{u.code}.xlsx",
                f"{k:064x}",
            )

    return collate.Sources(
        units,
        {u.code: (1, T0) for u in done},
        delivered,
        current,
        log,
        {u.code: _state(u, u.code in delivered) for u in units},
        {f: f"Koordinator {f}" for f in FACULTIES},
    )


def run(mode: str, n: int, out: Path) -> None:
    src = sources(n)
    start = time.perf_counter()
    book = collate.sheets(src, FORM)
    cells = 0
    if mode == "compile":
        collate.write_xlsx(book, out)
    elif mode == "rows":
        cells = sum(len(r) for s in book for r in s.rows)
    else:  # the anchor: the same cells, bare
        import xlsxwriter  # type: ignore[import-untyped]

        wb = xlsxwriter.Workbook(
            str(out),
            {"constant_memory": True, "default_date_format": "yyyy-mm-dd", "strings_to_formulas": False},
        )
        for s in book:
            ws = wb.add_worksheet(s.name)
            ws.write_row(0, 0, [c.title for c in s.columns])
            for r, row in enumerate(s.rows, start=1):
                ws.write_row(r, 0, row)
                cells += len(row)
        wb.close()
    took = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.3f} {rss:.1f} {cells}")


def main() -> None:
    if len(sys.argv) > 2:
        run(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            for mode in ("rows", "anchor", "compile"):
                out = Path(tmp) / f"{mode}.xlsx"
                done = subprocess.run(
                    [sys.executable, __file__, mode, str(n), str(out)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                took, rss, _cells = done.stdout.split()
                results.setdefault(mode, []).append((float(took), float(rss)))
                if mode != "rows":
                    print(f"{mode:8} {took:>7} s  {rss:>6} MB peak  {out.stat().st_size / 1e6:.1f} MB file")
    best = {m: (min(t for t, _ in v), max(r for _, r in v)) for m, v in results.items()}
    print(f"\n{n} units, best of 3 (peak RSS: max of 3):")
    for m, (took, rss) in best.items():
        print(f"  {m:8} {took:6.2f} s  {rss:6.1f} MB")
    print(
        f"  ratio compile/anchor: {best['compile'][0] / best['anchor'][0]:.2f}x time, "
        f"{best['compile'][1] / best['anchor'][1]:.2f}x memory "
        f"(rows alone, no writer: {best['rows'][0]:.2f} s)"
    )


if __name__ == "__main__":
    main()
