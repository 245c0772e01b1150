"""The verneombud's confirmation (the co-signature) as its readers see it: each unit's standing in
words, and the units counted per faculty.

The digests, the workbook, the web page and `status` read ``UnitState.cosign``
(``campaign.cosign.CoSignState``) through here, so every surface counts the same units the same
way and words a stage alike.

What is counted: the active units with a valid form, the only ones there is something to confirm
for. Each is in exactly one ``Bucket``:

- confirmed: the verneombud confirmed the newest version they were asked about;
- disputed: they answered with a comment (their words, verbatim, go with it);
- pending: asked, no answer yet;
- not asked: the roster has no verneombud address, their address fails (``no_address`` counts
  these two: someone must fix the roster), or the request is still to go (a moment under `run`).

A unit without a valid form is in no bucket; its co-signature reads "not asked: no valid form".
With ``[cosign] mode = "off"`` a unit has no co-signature (None) and no surface shows one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.campaign.cosign import CoSign, CoSignState, NotAsked
from service.campaign.state import UnitState
from service.models import Language, share_percent


class Bucket(StrEnum):
    """Where a unit with a valid form stands with its verneombud, as it is counted."""

    CONFIRMED = "confirmed"
    DISPUTED = "disputed"
    PENDING = "pending"
    NOT_ASKED = "not-asked"


# the order a list of units is read in: what needs a person first
ATTENTION = (Bucket.DISPUTED, Bucket.NOT_ASKED, Bucket.PENDING, Bucket.CONFIRMED)

_STAGE = {
    CoSign.CONFIRMED: Bucket.CONFIRMED,
    CoSign.DISPUTED: Bucket.DISPUTED,
    CoSign.PENDING: Bucket.PENDING,
    CoSign.NOT_ASKED: Bucket.NOT_ASKED,
    CoSign.NO_ADDRESS: Bucket.NOT_ASKED,
}

#: each stage (and each reason not to ask) in the reader's words; nb is the workbook's
WORDS: dict[Language, dict[CoSign | NotAsked, str]] = {
    "nb": {
        CoSign.CONFIRMED: "bekreftet",
        CoSign.DISPUTED: "har kommentar",
        CoSign.PENDING: "venter på svar",
        NotAsked.NO_VALID_FORM: "ikke spurt: ikke gyldig skjema",
        NotAsked.NOT_YET: "ikke spurt ennå",
        NotAsked.NO_ADDRESS: "ikke spurt: mangler adresse",
        NotAsked.ADDRESS_FAILING: "ikke spurt: adressen virker ikke",
    },
    "en": {
        CoSign.CONFIRMED: "confirmed",
        CoSign.DISPUTED: "has a comment",
        CoSign.PENDING: "awaiting an answer",
        NotAsked.NO_VALID_FORM: "not asked: no valid form",
        NotAsked.NOT_YET: "not asked yet",
        NotAsked.NO_ADDRESS: "not asked: no address",
        NotAsked.ADDRESS_FAILING: "not asked: address not working",
    },
}


def bucket(state: UnitState) -> Bucket | None:
    """The bucket a unit is counted in; None without a valid form or with the co-signature off."""
    cosign = state.cosign
    if cosign is None or not state.has_valid:
        return None
    return _STAGE[cosign.stage]


def lacks_address(cosign: CoSignState | None) -> bool:
    """Not asked because the roster has no address for the verneombud, or it fails."""
    return cosign is not None and cosign.stage is CoSign.NO_ADDRESS


def words(cosign: CoSignState | None, lang: Language) -> str:
    """The unit's co-signature in ``lang``: "bekreftet", "ikke spurt: mangler adresse"; "" when
    the co-signature is off."""
    if cosign is None:
        return ""
    if cosign.stage in (CoSign.NOT_ASKED, CoSign.NO_ADDRESS):
        fallback = NotAsked.NO_ADDRESS if cosign.stage is CoSign.NO_ADDRESS else NotAsked.NO_VALID_FORM
        return WORDS[lang][cosign.reason or fallback]
    return WORDS[lang][cosign.stage]


@dataclass(frozen=True)
class Count:
    """One faculty's co-signatures (or the total's, ``faculty`` ""): the units with a valid form,
    each in one bucket."""

    faculty: str
    forms: int = 0  # active units with a valid form
    confirmed: int = 0
    disputed: int = 0
    pending: int = 0
    not_asked: int = 0
    no_address: int = 0  # of the not asked: no verneombud address in the roster, or it fails

    @property
    def percent(self) -> int:
        """The share confirmed, of the units with a valid form (``models.share_percent``)."""
        return share_percent(self.confirmed, self.forms)

    def as_dict(self) -> dict[str, int | str]:
        """For a template or JSON: every count, and the share confirmed."""
        return {
            "faculty": self.faculty,
            "forms": self.forms,
            "confirmed": self.confirmed,
            "disputed": self.disputed,
            "pending": self.pending,
            "not_asked": self.not_asked,
            "no_address": self.no_address,
            "percent": self.percent,
        }


def count(states: Iterable[UnitState], faculty: str = "") -> Count:
    """The co-signatures of ``states`` (active units), counted together under ``faculty``."""
    n: dict[Bucket, int] = dict.fromkeys(Bucket, 0)
    forms = no_address = 0
    for s in states:
        b = bucket(s)
        if b is None:
            continue
        forms += 1
        n[b] += 1
        no_address += lacks_address(s.cosign)
    return Count(
        faculty,
        forms,
        n[Bucket.CONFIRMED],
        n[Bucket.DISPUTED],
        n[Bucket.PENDING],
        n[Bucket.NOT_ASKED],
        no_address,
    )


def per_faculty(states: Iterable[UnitState], faculties: Iterable[str] = ()) -> dict[str, Count]:
    """Each faculty's count, by faculty name in order; ``faculties`` are listed even with no unit
    counted (a faculty whose units have sent nothing yet reads 0 of 0)."""
    by: dict[str, list[UnitState]] = {f: [] for f in faculties}
    for s in states:
        by.setdefault(s.faculty, []).append(s)
    return {f: count(by[f], f) for f in sorted(by)}


def total(counts: Mapping[str, Count]) -> Count:
    """The faculties' counts added up."""
    rows = list(counts.values())
    return Count(
        "",
        *(
            sum(getattr(c, k) for c in rows)
            for k in ("forms", "confirmed", "disputed", "pending", "not_asked", "no_address")
        ),
    )


def attention_order(state: UnitState) -> tuple[int, str, str]:
    """Sort key of a list of units with a valid form: disputed, not asked, pending, confirmed;
    then by faculty and code."""
    b = bucket(state)
    return (ATTENTION.index(b) if b is not None else len(ATTENTION), state.faculty, state.code)
