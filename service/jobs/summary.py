"""What the units answered: the counts HR asks for, per faculty and in total (the «Oppsummering»
sheet and its «Diagrammer»).

Built from the form definition alone, so a question added to the form gets its block without a
change here: every choice, yes/no, multichoice and 1–5 scale field has a block counting units,
and every choice column of a table has one counting rows (measures, not units). Counted over
each unit's current version, the newest valid one. A confirmation the form requires (``must_be``)
is left out: every valid form gives the same answer. With the co-signature on, a block after the
first counts what the units' verneombud answered (``COSIGN_KEY``, from ``jobs.confirmations``),
drawn with HR's questions. Pure: answers in, ``Report`` and ``Charts`` out; ``xlsxout`` writes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from service.forms.answers import value_text_choice
from service.forms.model import Field, FormDef, Item
from service.jobs.confirmations import Count
from service.jobs.xlsxout import Block, Charts, Col, Report, Value
from service.models import Language, share_percent

LANG: Language = "nb"  # the workbook's language
COUNTED = frozenset({"choice", "yesno", "multichoice", "scale"})
UNANSWERED = "Ikke besvart"
# HR's questions (issue 14, "The workbook for HR"), drawn as charts in this order: the track, the
# tiltaksplan in ePhorte, a fully satisfactory work environment, the verneombud and LOSAM
# involved, the help asked for, and the measures new or continued. Keys the form lacks are skipped.
CHARTED = (
    "forlop",
    "handlingsplan_ephorte",
    "fullt_forsvarlig",
    "verneombud_involvert",
    "losam_involvert",
    "hjelp_onsket",
    "tiltak.status",
)
COSIGN_KEY = "verneombud_bekreftelse"  # the co-signature's block, and its chart after HR's questions


@dataclass(frozen=True)
class Question:
    """One block's question: a field, or a choice column of a table (``table`` set)."""

    key: str
    item: Item
    title: str
    table: Field | None = None

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """(stored value, label) in the form's order; a scale's steps are its numbers."""
        if self.item.type == "scale":
            low = self.item.min if isinstance(self.item.min, int) else 1
            high = self.item.max if isinstance(self.item.max, int) else 5
            return tuple((str(n), str(n)) for n in range(low, high + 1))
        return tuple((c.value, c.label.get(LANG)) for c in self.item.options)


def questions(form: FormDef) -> list[Question]:
    """Every question the summary counts, in the form's order."""
    out: list[Question] = []
    for f in form.fields():
        if f.type == "table":
            out += [
                Question(f"{f.id}.{c.id}", c, f"{f.label.get(LANG)} – {c.label.get(LANG)}", f)
                for c in f.columns
                if c.type in COUNTED
            ]
        elif f.type in COUNTED and f.must_be is None:
            out.append(Question(f.id, f, f.label.get(LANG)))
    return out


def _picked(value: object) -> list[str]:
    """The stored values an answer counts under; [] when it is unanswered."""
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


@dataclass
class _Tally:
    """Counts of one question: answer value -> faculty -> n; and the base (units or rows)."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    base: Counter[str] = field(default_factory=Counter)

    def add(self, faculty: str, picked: Sequence[str]) -> None:
        self.base[faculty] += 1
        for value in picked or [UNANSWERED]:
            self.counts.setdefault(value, Counter())[faculty] += 1


@dataclass
class Tallies:
    """Everything counted in one pass over the current valid versions."""

    forms: Counter[str] = field(default_factory=Counter)  # faculty -> valid forms
    rows: dict[str, Counter[str]] = field(default_factory=dict)  # table -> faculty -> rows
    questions: dict[str, _Tally] = field(default_factory=dict)  # question key -> its counts


def tally(form: FormDef, answered: Iterable[tuple[str, Mapping[str, object]]]) -> Tallies:
    """Count every question over (faculty, answers) of the units' current valid versions."""
    qs = questions(form)
    tables = [f.id for f in form.fields() if f.type == "table"]
    out = Tallies(rows={t: Counter() for t in tables}, questions={q.key: _Tally() for q in qs})
    for faculty, answers in answered:
        out.forms[faculty] += 1
        for t in tables:
            out.rows[t][faculty] += len(_rows(answers, t))
        for q in qs:
            if q.table is None:
                out.questions[q.key].add(faculty, _picked(answers.get(q.key)))
            else:
                for row in _rows(answers, q.table.id):
                    out.questions[q.key].add(faculty, _picked(row.get(q.item.id)))
    return out


def _rows(answers: Mapping[str, object], table: str) -> list[Mapping[str, object]]:
    rows = answers.get(table)
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def report(
    form: FormDef,
    answered: Iterable[tuple[str, Mapping[str, object]]],
    *,
    units: Mapping[str, int],
    title: str,
    subtitle: str,
    name: str = "Oppsummering",
    cosign: Mapping[str, Count] | None = None,
) -> Report:
    """The summary: a block on what was counted (units, valid forms, table rows), the verneombud's
    confirmations when ``cosign`` is given (per faculty, ``confirmations.per_faculty``), then one
    block per question. ``units``: the active units per faculty, in the order the columns show
    them."""
    faculties = tuple(units)
    counts = tally(form, answered)

    def line(label: str, per: Mapping[str, int], base: int | None) -> tuple[Value, ...]:
        total = sum(per.get(f, 0) for f in faculties)
        share = None if base is None else share_percent(total, base)
        return (label, *(per.get(f, 0) for f in faculties), total, share)

    n_forms = sum(counts.forms.values())
    tables = [f for f in form.fields() if f.type == "table"]
    basis = (
        line("Aktive enheter", units, None),
        line("Levert gyldig skjema", counts.forms, sum(units.values())),
        *(line(f"{f.label.get(LANG)}: rader i alt", counts.rows[f.id], None) for f in tables),
    )
    blocks = [
        Block(
            "grunnlag",
            "Grunnlag: enhetene og de gyldige skjemaene som er telt",
            "Andel: av de aktive enhetene.",
            ("", *faculties, "Totalt", "Andel"),
            basis,
        )
    ]
    if cosign is not None:
        blocks.append(_cosign_block(faculties, cosign, line))
    header = ("Svar", *faculties, "Totalt", "Andel")
    for q in questions(form):
        t = counts.questions[q.key]
        base = sum(t.base.values()) if q.table is not None else n_forms
        known = dict(q.options)
        stray = [v for v in t.counts if v not in known and v != UNANSWERED]  # no longer offered
        rows = tuple(
            line(known.get(v) or value_text_choice(q.item, v, LANG), t.counts.get(v, Counter()), base)
            for v in [*known, *stray, UNANSWERED]
            if v in known or t.counts.get(v)
        )
        blocks.append(Block(q.key, q.title, _note(q), header, rows, stacked=q.item.type != "multichoice"))
    label_width = max([30, *(len(str(r[0])) + 2 for b in blocks for r in b.rows)])
    cols = (
        Col("Svar", min(label_width, 60)),
        *(Col(f, max(8, len(f) + 2)) for f in faculties),
        Col("Totalt", 9),
        Col("Andel", 9, percent=True),
    )
    return Report(name, title, subtitle, cols, tuple(blocks))


def _cosign_block(
    faculties: Sequence[str],
    counts: Mapping[str, Count],
    line: Callable[[str, Mapping[str, int], int | None], tuple[Value, ...]],
) -> Block:
    """What the verneombud answered, counted per faculty over the units with a valid form; a unit
    whose request has still to go gets its row only when there is one."""

    def per(field: str) -> dict[str, int]:
        return {f: getattr(counts[f], field) for f in faculties if f in counts}

    forms = sum(per("forms").values())
    not_yet = {f: counts[f].not_asked - counts[f].no_address for f in faculties if f in counts}
    rows = [
        line("Bekreftet", per("confirmed"), forms),
        line("Har kommentar", per("disputed"), forms),
        line("Venter på svar", per("pending"), forms),
        line("Ikke spurt: adressen mangler eller feiler", per("no_address"), forms),
    ]
    if any(not_yet.values()):
        rows.append(line("Ikke spurt ennå", not_yet, forms))
    return Block(
        COSIGN_KEY,
        "Verneombudets bekreftelse av svarene",
        "Antall enheter med gyldig skjema, etter hva verneombudet svarte da det ble bedt om å bekrefte "
        "svarene (siste forespørsel). Andel: av enhetene med gyldig skjema.",
        ("Bekreftelse", *faculties, "Totalt", "Andel"),
        tuple(rows),
    )


def charts(summary: Report, *, name: str = "Diagrammer") -> Charts:
    """HR's questions (``CHARTED``) drawn from the summary's blocks, and the co-signature's when
    the summary has it."""
    cosign = (COSIGN_KEY,) if any(b.key == COSIGN_KEY for b in summary.blocks) else ()
    return Charts(name, f"{summary.title}: diagrammer", summary.subtitle, summary.name, CHARTED + cosign)


def _note(q: Question) -> str:
    if q.table is not None:
        return f"Antall rader i tabellen «{q.table.label.get(LANG)}» (ikke antall enheter). Andel: av alle radene."
    if q.item.type == "multichoice":
        return "Antall enheter; en enhet kan velge flere svar. Andel: av enhetene med gyldig skjema."
    scale = f" {q.item.help.get(LANG)}" if q.item.type == "scale" and q.item.help else ""
    return f"Antall enheter.{scale} Andel: av enhetene med gyldig skjema."
