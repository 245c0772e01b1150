"""Build personalised forms for 500 synthetic units (mixed nb/en) and print ms per form.

The goal is < 10 ms per form. The one-off template build per (form, language) is timed on its
own; after that each form is a zip patch of the cached template. A sample is read back to prove
the files are what they claim. Figures only: nothing here asserts on time.

Run: .venv/bin/python bench/form_build.py [N]
"""

from __future__ import annotations

import datetime
import statistics
import sys
import time
from pathlib import Path

from service.forms.build import build_form, build_template
from service.forms.definition import load_form
from service.forms.read import read_form
from service.models import Unit

FORM = Path(__file__).parent.parent / "forms" / "oppsummering-og-evaluering.toml"
DEADLINE = datetime.date(2020, 12, 16)


def units(n):
    for i in range(n):
        lang = "en" if i % 3 == 0 else "nb"
        yield Unit(
            f"U{i:04d}",
            f"Institutt nr. {i} for æøå & <studier>",
            f"FAK{i % 9}",
            f"Leder {i} Ødegård",
            f"leder{i}@example.test",
            lang,
        )


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def main(n=500):
    form = load_form(FORM)
    template = {}
    for lang in ("nb", "en"):
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            build_template(form, lang)
            runs.append(time.perf_counter() - t)
        template[lang] = statistics.median(runs)
    # the first build per language also splits and caches the template
    first = {}
    all_units = list(units(n))
    for lang in ("nb", "en"):
        unit = next(u for u in all_units if u.language == lang)
        t = time.perf_counter()
        build_form(
            form,
            unit,
            lang=lang,
            reference="ABCD-EFGH",
            stamp="warm",
            campaign_title="ARK 2020",
            deadline=DEADLINE,
        )
        first[lang] = time.perf_counter() - t

    times, sizes, built = [], [], []
    for unit in all_units:
        stamp = f"st1.{unit.code}.signature-{unit.code}"
        t = time.perf_counter()
        data = build_form(
            form,
            unit,
            lang=unit.language,
            reference=f"REF-{unit.code}",
            stamp=stamp,
            campaign_title="ARK 2020",
            deadline=DEADLINE,
        )
        times.append(time.perf_counter() - t)
        sizes.append(len(data))
        built.append((unit, stamp, data))

    checked = 0
    read_times = []
    for unit, stamp, data in built[:: max(1, n // 25)]:
        t = time.perf_counter()
        reading = read_form(data, form)
        read_times.append(time.perf_counter() - t)
        assert reading.unit_code == unit.code and reading.stamp == stamp, unit
        assert reading.reference == f"REF-{unit.code}" and reading.language == unit.language
        assert reading.answers["enhet_navn"] == unit.name and not reading.problems
        checked += 1

    times.sort()
    print(
        f"form: {form.id} v{form.version}, {len(form.fields())} fields, {n} units "
        f"({sum(u.language == 'nb' for u in all_units)} nb, "
        f"{sum(u.language == 'en' for u in all_units)} en)"
    )
    print(f"one-off template build (openpyxl, median of 3): nb {ms(template['nb'])}, en {ms(template['en'])}")
    print(f"first form per language (template + split + cache): nb {ms(first['nb'])}, en {ms(first['en'])}")
    print(
        f"per personalised form: mean {ms(statistics.mean(times))}, "
        f"median {ms(statistics.median(times))}, p95 {ms(times[int(0.95 * len(times))])}, "
        f"max {ms(times[-1])}  (goal < 10 ms)"
    )
    print(f"total for {n}: {sum(times):.3f} s; file size {min(sizes)}-{max(sizes)} bytes")
    print(f"read back and checked {checked} forms: read_form median {ms(statistics.median(read_times))}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
