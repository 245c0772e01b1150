"""Flagged answers as their readers see them: most serious first, each with the unit's own words
(the digests), or counted by kind with nothing that names a unit (the observers, the final summary).

The form says which answers raise a flag (``forms.model.Flag``) and, once the definition gives one,
how serious each is (``Flag.severity``, higher first). Until then the order is the one the letter
implies: answers that say the work environment is not (or maybe not) fully satisfactory, then help
asked for, then the rest in form order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from service.campaign.state import UnitState
from service.forms.answers import flags_for
from service.forms.model import FormDef
from service.mail.letters import unit_mapping
from service.models import Language, Unit

#: the order of seriousness while the form does not give one (``Flag.severity``): answers that
#: say the work environment is not (or maybe not) fully satisfactory, then help asked for, then
#: the rest in form order
_NOTICE_ORDER = {"challenges": 0, "help": 1}


def seriousness(form: FormDef, field_id: str) -> tuple[int, int]:
    """How serious a flag on ``field_id`` is (lower first): the form's own ``severity`` when the
    definition gives one (higher is more serious), else the notice it sends; then form order. A
    field the form no longer has comes last."""
    order = {f.id: i for i, f in enumerate(form.fields())}
    if field_id not in order:
        return (1_000_000, 0)
    flag = form.field(field_id).flag
    severity = getattr(flag, "severity", None)
    if isinstance(severity, int) and not isinstance(severity, bool):
        return (-severity, order[field_id])
    return (_NOTICE_ORDER.get(flag.notice if flag else "", 2), order[field_id])


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
    keyed: list[tuple[tuple[tuple[int, int], str, str], dict[str, Any]]] = []
    for s in states:
        stored = sorted(s.flags, key=lambda f: seriousness(form, f.get("field", "")))
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
            keyed.append(((seriousness(form, field), s.faculty, s.code), row))
    keyed.sort(key=lambda k: k[0])
    return [row for _, row in keyed]


def flag_counts(form: FormDef, states: Iterable[UnitState], lang: Language) -> list[dict[str, Any]]:
    """How many units raised each kind of flag (its message), most serious first: numbers only."""
    units: dict[str, set[str]] = defaultdict(set)
    order: dict[str, tuple[int, int]] = {}
    for s in states:
        for raw, shown in zip(s.flags, flags_for(list(s.flags), lang), strict=True):
            kind = shown["message"].strip().rstrip(".")  # a heading, not a sentence
            units[kind].add(s.code)
            rank = seriousness(form, raw.get("field", ""))
            order[kind] = min(order.get(kind, rank), rank)
    return [{"message": m, "units": len(units[m])} for m in sorted(units, key=lambda m: (order[m], m))]
