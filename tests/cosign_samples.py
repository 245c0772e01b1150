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
