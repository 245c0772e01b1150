"""Sample contexts for the co-signature's mails, for tests and the golden renderings.

``email_samples.sample_context`` hands over its context for the fixed unit (IE-IBM, its leader
Bjørn Å. Æsøy and its verneombud Siri Løvås); the kind's own part is built by the service's own
context functions (``service.mail.cosignletters``), so the golden renderings show what the service
sends. The request is the first one (version 1, sent by the leader); the answer is a comment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from service.mail.cosignletters import Answer, Asked, answer_context, reminder_context, request_context

OSLO = ZoneInfo("Europe/Oslo")
ASKED_AT = dt.datetime(2020, 12, 10, 14, 6, tzinfo=OSLO)  # a minute after the form came
ANSWERED_AT = dt.datetime(2020, 12, 11, 8, 47, tzinfo=OSLO)
ANSWERED_BY = "Siri Løvås (siri.lovas@example.edu)"

_UNIT_KEYS = ("unit", "reference", "coordinators", "submission")
COSIGN_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "verneombud-request": (*_UNIT_KEYS, "attachment_name", "to_leader"),
    "verneombud-reminder": (*_UNIT_KEYS, "attachment_name", "cosign", "to_leader", "leader_copied"),
    "verneombud-ack": (*_UNIT_KEYS, "cosign"),
    "leader-cosign-comment": (*_UNIT_KEYS, "cosign"),
    "coordinator-cosign-notice": (*_UNIT_KEYS, "cosign"),
}

WORDS = {
    "nb": (
        "Jeg er ikke enig i at alle ansatte var med på oppfølgingsmøtet 5. november.\n"
        "Vi hadde bare ett digitalt møte, og flere på verkstedet var ikke med."
    ),
    "en": (
        "I do not agree that all staff took part in the follow-up meeting on 5 November.\n"
        "We only had one digital meeting, and several people from the workshop were not there."
    ),
}


def asked(base: Mapping[str, Any]) -> Asked:
    """The first version of the fixed unit's form, as its receipt read it back."""
    submission = base["submission"]
    return Asked(version=1, received_at=submission["received_at"], summary=submission["summary"])


def answer(lang: str, reading: str = "disputed") -> Answer:
    words = WORDS[lang] if reading == "disputed" else {"nb": "Enig.", "en": "Agree."}[lang]
    return Answer(reading=reading, words=words, answered_at=ANSWERED_AT, answered_by=ANSWERED_BY)


def cosign_sample(kind: str, lang: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """The context of co-signature ``kind`` in ``lang`` over ``base`` (the unit's context)."""
    if kind == "verneombud-request":
        return request_context(base, asked(base), base["attachment_name"])
    if kind == "verneombud-reminder":
        return reminder_context(base, asked(base), base["attachment_name"], ASKED_AT)
    return answer_context(base, asked(base), answer(lang))


# ---- the co-signature in the digests (``jobs.digest``: ``cosign``) ------------------------------

#: the digests that show the co-signature, each under its ``cosign`` key
DIGEST_COSIGN_KINDS = ("coordinator-digest", "hr-digest", "observer-digest")
#: a valid unit of IE whose roster row has no verneombud address, and one of HF whose fails
NO_ADDRESS = {
    "code": "IE-IMF",
    "name": "Institutt for maskinteknikk og produksjon",
    "faculty": "IE",
    "leader_name": "Gunnar Lie",
    "leader_email": "gunnar.lie@example.edu",
    "verneombud_name": "",
    "verneombud_email": "",
}
FAILING = {
    "code": "HF-IFR",
    "name": "Institutt for filosofi og religionsvitenskap",
    "faculty": "HF",
    "leader_name": "Eirik Nygård",
    "leader_email": "eirik.nygard@example.edu",
    "verneombud_name": "Liv Sæbø",
    "verneombud_email": "liv.saebo@example.edu",
}


def _count(
    faculty: str, forms: int, confirmed: int, disputed: int, pending: int, not_asked: int
) -> dict[str, Any]:
    return {
        "faculty": faculty,
        "forms": forms,
        "confirmed": confirmed,
        "disputed": disputed,
        "pending": pending,
        "not_asked": not_asked,
        "no_address": not_asked,
        "percent": confirmed * 100 // forms if forms else 0,
    }


# per faculty, of the units with a valid form (as in email_samples' progress: 10, 14 and 13)
COUNTS = {"HF": (10, 7, 0, 2, 1), "IE": (14, 11, 1, 1, 1), "NV": (13, 12, 1, 0, 0)}


def digest_cosign(
    kind: str, lang: str, context: dict[str, Any], unit: Mapping[str, str], others: list[dict[str, str]]
) -> None:
    """Add the co-signature to digest ``context``: IE-IBM's verneombud has a comment (``WORDS``),
    IE-IDI's is asked and away, IE-IMF has no verneombud address; NV-IBI's verneombud has a comment
    too, HF-IFR's address fails (HR's digest lists what someone must act on)."""
    idi, ibi = others[0], others[3]
    if kind == "coordinator-digest":
        context["cosign"] = {
            "required": False,
            "count": _count("IE", *COUNTS["IE"]),
            "disputed": [{"unit": unit, "words": WORDS[lang], "answered_at": ANSWERED_AT, "version": 2}],
            "pending": [
                {
                    "unit": idi,
                    "version": 1,
                    "asked_at": dt.datetime(2020, 12, 8, 9, 42, tzinfo=OSLO),
                    "reminded_at": None,
                    "back_on": dt.date(2020, 12, 16),
                }
            ],
            "not_asked": [{"unit": NO_ADDRESS, "reason": "no-address"}],
        }
        return
    per = {f: _count(f, *n) for f, n in COUNTS.items()}
    total = _count("", *(sum(n[i] for n in COUNTS.values()) for i in range(5)))
    context["cosign"] = {"required": False, "total": total, "faculties": per}
    if kind != "hr-digest":
        return
    disputed = {"kind": "cosign-disputed", "words": WORDS[lang], "answered_at": ANSWERED_AT}
    for row in context["actions"]:
        if row["unit"]["code"] in (unit["code"], ibi["code"]):
            row["why"].append(disputed)
    context["actions"] += [
        {"unit": NO_ADDRESS, "why": [{"kind": "cosign-no-address", "reason": "no-address", "address": ""}]},
        {
            "unit": FAILING,
            "why": [
                {
                    "kind": "cosign-no-address",
                    "reason": "address-failing",
                    "address": FAILING["verneombud_email"],
                }
            ],
        },
    ]
