"""Flagged answers as their readers see them: most serious first, each with the unit's own words
(the digests), or counted by kind with nothing that names a unit (the observers, the final summary).

The form says which answers raise a flag and how serious each is (``forms.model.Flag.severity``,
higher first; the shipped form ranks "not, or maybe not, fully satisfactory" highest, then help
asked for, the verneombud not involved, the tiltaksplan not in ePhorte, …); equals keep form order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from service.campaign.state import UnitState
from service.forms.answers import flags_for
from service.forms.model import FormDef
from service.mail.letters import unit_mapping
from service.models import Language, Unit


def seriousness(form: FormDef) -> Callable[[str], tuple[int, int]]:
    """The sort key of a flag on a field id (most serious first): the form's ``Flag.severity``
    (higher is more serious), then form order. A field the form no longer has (a flag stored
    under an older definition) comes last."""
    order = {f.id: i for i, f in enumerate(form.fields())}

    def rank(field_id: str) -> tuple[int, int]:
        if field_id not in order:
            return (1, 0)
        flag = form.field(field_id).flag
        return (-(flag.severity if flag else 0), order[field_id])

    return rank


def _words(
    form: FormDef, field_id: str, answers: Mapping[str, object], lang: Language
) -> list[dict[str, str]]:
    """The unit's own description that goes with a flag (its ``words`` fields), answered."""
    try:
        flag = form.field(field_id).flag
    except LookupError:
        return []
    out = []
    for wid in flag.words if flag else ():
        text = str(answers.get(wid) or "").strip()
        if text:
            out.append({"id": wid, "label": form.field(wid).label.get(lang), "value": text})
    return out


def flag_rows(
    form: FormDef,
    states: Iterable[UnitState],
    answers: Mapping[str, Mapping[str, object]],
    units: Mapping[str, Unit],
    lang: Language,
) -> list[dict[str, Any]]:
    """Flagged answers of valid forms, most serious first (then by faculty and unit), each with
    the unit's own words; a description shared by two flags of one unit goes with the first."""
    rank = seriousness(form)
    keyed: list[tuple[tuple[tuple[int, int], str, str], dict[str, Any]]] = []
    for s in states:
        stored = sorted(s.flags, key=lambda f: rank(f.get("field", "")))
        said: set[str] = set()
        for raw, shown in zip(stored, flags_for(stored, lang), strict=True):
            field = raw.get("field", "")
            words = [w for w in _words(form, field, answers.get(s.code, {}), lang) if w["id"] not in said]
            said |= {w["id"] for w in words}
            row = {
                "unit": unit_mapping(units[s.code]),
                **shown,
                "words": [{"label": w["label"], "value": w["value"]} for w in words],
            }
            keyed.append(((rank(field), s.faculty, s.code), row))
    keyed.sort(key=lambda k: k[0])
    return [row for _, row in keyed]


def flag_counts(form: FormDef, states: Iterable[UnitState], lang: Language) -> list[dict[str, Any]]:
    """How many units raised each kind of flag (its message), most serious first: numbers only."""
    units: dict[str, set[str]] = defaultdict(set)
    order: dict[str, tuple[int, int]] = {}
    rank = seriousness(form)
    for s in states:
        for raw, shown in zip(s.flags, flags_for(list(s.flags), lang), strict=True):
            kind = shown["message"].strip().rstrip(".")  # a heading, not a sentence
            units[kind].add(s.code)
            here = rank(raw.get("field", ""))
            order[kind] = min(order.get(kind, here), here)
    return [{"message": m, "units": len(units[m])} for m in sorted(units, key=lambda m: (order[m], m))]
