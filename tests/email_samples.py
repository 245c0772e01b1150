"""Complete, realistic contexts for every mail kind, for tests and for previewing the templates.

``sample_context(kind, lang)`` returns a fresh dict each call, so a test may change it freely. The
contract it follows is documented in templates/email/README.md. Names carry æøå on purpose.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from cosign_samples import COSIGN_KIND_KEYS, DIGEST_COSIGN_KINDS, cosign_sample, digest_cosign

OSLO = ZoneInfo("Europe/Oslo")
CAMPAIGN_OPENS = dt.date(2020, 11, 23)
DEADLINE = dt.date(2020, 12, 16)  # a Wednesday
CLOSES = dt.date(2021, 1, 13)  # the default: four weeks after the deadline
REFERENCE = "7KQM-4XPZ"
GUIDANCE_URL = "https://innsida.example.edu/arbeidsmiljoundersokelse-for-ledere"
REMINDERS = [dt.date(2020, 12, 2), dt.date(2020, 12, 9), dt.date(2020, 12, 14), dt.date(2020, 12, 17)]


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """An aware time, given as Oslo wall time."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=OSLO)


def unit(code: str, name: str, leader: str, verneombud: str, faculty: str = "IE") -> dict[str, str]:
    """A unit as the templates see it; e-mail addresses are made from the names."""

    def address(person: str) -> str:
        plain = person.lower().translate(str.maketrans({"æ": "ae", "ø": "o", "å": "a", ".": ""}))
        return ".".join(plain.split()) + "@example.edu"

    return {
        "code": code,
        "name": name,
        "faculty": faculty,
        "leader_name": leader,
        "leader_email": address(leader),
        "verneombud_name": verneombud,
        "verneombud_email": address(verneombud) if verneombud else "",
    }


UNIT = unit("IE-IBM", "Institutt for bygg- og miljøteknikk", "Bjørn Å. Æsøy", "Siri Løvås")
OTHER_UNITS = [
    unit("IE-IDI", "Institutt for datateknologi og informatikk", "Marit Solberg", "Per Olsen"),
    unit("IE-IIK", "Institutt for informasjonssikkerhet og kommunikasjonsteknologi", "Lars Haugen", ""),
    unit("IE-IES", "Institutt for elektroniske systemer", "Anna Kowalska", "Jon Dahl"),
    unit("NV-IBI", "Institutt for biologi", "Åse Grønli", "Tor Ødegård", faculty="NV"),
    unit("HF-ISL", "Institutt for språk og litteratur", "Øystein Bråten", "Kjersti Hæg", faculty="HF"),
    unit("IE-ITK", "Institutt for teknisk kybernetikk", "Sigrid Åmot", "Nils Brå"),
]

COORDINATORS = {
    "IE": [{"name": "Kari Nordmann", "email": "kari.nordmann@example.edu"}],
    "NV": [{"name": "Ola Hansen", "email": "ola.hansen@example.edu"}],
    "HF": [
        {"name": "Ingrid Berg", "email": "ingrid.berg@example.edu"},
        {"name": "Håkon Sæther", "email": "hakon.saether@example.edu"},
    ],
}

#: which optional part of the contract each kind uses, besides campaign and sender
KIND_KEYS = {
    "leader-invitation": ("unit", "reference", "coordinators", "attachment_name", "verneombud_copied"),
    "leader-reminder-before": (
        "unit",
        "reference",
        "coordinators",
        "attachment_name",
        "verneombud_copied",
        "days_left",
        "reminder_number",
        "invited_on",
    ),
    "leader-reminder-after": (
        "unit",
        "reference",
        "coordinators",
        "attachment_name",
        "verneombud_copied",
        "days_overdue",
    ),
    "leader-reminder-correction": (
        "unit",
        "reference",
        "coordinators",
        "attachment_name",
        "verneombud_copied",
        "received_on",
        "problems",
        "days_left",
        "answers_kept",
    ),
    "escalation": (
        "unit",
        "reference",
        "coordinators",
        "days_overdue",
        "stage",
        "has_superior",
        "received_on",
        "problems",
        "failure",
        "back_on",
        "mails",
    ),
    "leader-receipt": ("unit", "reference", "coordinators", "submission", "cosign_asked"),
    "leader-correction": (
        "unit",
        "reference",
        "coordinators",
        "submission",
        "problems",
        "attachment_name",
        "answers_kept",
        "days_left",
    ),
    "coordinator-digest": (
        "coordinators",
        "faculty",
        "period_start",
        "period_end",
        "progress",
        "new_submissions",
        "corrections_pending",
        "missing_units",
        "away",
        "flags",
        "bounces",
        "review_count",
    ),
    "hr-digest": (
        "period_start",
        "period_end",
        "progress",
        "faculties",
        "actions",
        "flag_counts",
        "new_count",
        "review_count",
        "web_url",
    ),
    "observer-digest": (
        "observers",
        "period_start",
        "period_end",
        "progress",
        "faculties",
        "flag_counts",
        "new_count",
    ),
    "hr-final": (
        "closes_on",
        "as_of",
        "progress",
        "faculties",
        "flag_counts",
        "without_form",
        "workbook_name",
        "web_url",
    ),
    "leader-after-closing": ("unit", "reference", "coordinators", "submission", "problems", "closes_on"),
    "challenges-notice": (
        "unit",
        "reference",
        "coordinators",
        "answers",
        "words",
        "received_at",
        "changed",
        "has_superior",
    ),
    "help-notice": ("unit", "reference", "coordinators", "audience", "wanted", "words", "received_at"),
}
KIND_KEYS.update(COSIGN_KIND_KEYS)  # the co-signature's mails (cosign_samples.py)
for _kind in DIGEST_COSIGN_KINDS:  # the digests count and list it (cosign_samples.py)
    KIND_KEYS[_kind] += ("cosign",)


def _pick(lang: str, nb: str, en: str) -> str:
    return nb if lang == "nb" else en


def _summary(lang: str) -> list[dict[str, str]]:
    rows = [
        (
            "Løp høsten 2020",
            "Track in autumn 2020",
            "Lysark 8: ferdig tiltaksplan i vår",
            "Slide 8: plan of measures finished in spring",
        ),
        ("Antall ansatte", "Number of employees", "42", "42"),
        ("Oppfølgingsmøte", "Follow-up meeting", "05.11.2020", "05.11.2020"),
        ("Møteform", "Meeting form", "Digitalt", "Digital"),
        ("Verneombud", "Safety representative", "Siri Løvås", "Siri Løvås"),
        ("Tiltaksplan i ePhorte", "Plan of measures in ePhorte", "Ja, 2020/12345", "Yes, 2020/12345"),
        ("Tiltak", "Measures", "3", "3"),
    ]
    return [{"label": _pick(lang, ln, le), "value": _pick(lang, vn, ve)} for ln, le, vn, ve in rows]


def _forsvarlig(lang: str) -> dict[str, str]:
    """The answer that says the work environment is maybe not fully satisfactory (a challenge)."""
    return {
        "label": _pick(
            lang,
            "Vurderes arbeidsmiljøet i enheten som fullt forsvarlig?",
            "Is the working environment in the unit considered fully satisfactory (fullt forsvarlig)?",
        ),
        "value": _pick(lang, "Usikker", "Unsure"),
    }


def _flags(lang: str) -> list[dict[str, str]]:
    return [
        _forsvarlig(lang)
        | {
            "message": _pick(
                lang,
                "Leder og verneombud er usikre på om arbeidsmiljøet er fullt forsvarlig.",
                "The leader and the safety representative are unsure whether the working environment "
                "is fully satisfactory.",
            ),
        },
        {
            "label": _pick(
                lang,
                "Ønsker enheten hjelp i det videre arbeidet?",
                "Would the unit like help with the further work?",
            ),
            "value": _pick(
                lang,
                "Koordinator for arbeidsmiljøundersøkelsen",
                "Coordinator for the work-environment survey",
            ),
            "message": _pick(
                lang,
                "Enheten ønsker hjelp i det videre arbeidet.",
                "The unit would like help with the further work.",
            ),
        },
    ]


def _words(lang: str) -> list[dict[str, str]]:
    """The unit's own descriptions, verbatim (one spans two lines)."""
    return [
        {
            "label": _pick(
                lang,
                "Beskriv situasjonen: hvorfor er arbeidsmiljøet ikke (eller kanskje ikke) fullt forsvarlig, "
                "og hva gjøres?",
                "Describe the situation: why is the working environment not (or perhaps not) fully "
                "satisfactory, and what is being done?",
            ),
            "value": _pick(
                lang,
                "Høy arbeidsbelastning etter nedstengningen; flere er slitne.\n"
                "Vi har startet ukentlige møter på Teams.",
                "Heavy workload after the lockdown; several people are worn out.\n"
                "We have started weekly meetings on Teams.",
            ),
        },
        {
            "label": _pick(lang, "Andre kommentarer", "Other comments"),
            "value": _pick(
                lang, "Vi ønsker hjelp til en samtale i gruppen.", "We would like help with a group talk."
            ),
        },
    ]


def _problems(lang: str) -> list[dict[str, str]]:
    return [
        {
            "label": _pick(lang, "Saksnummer i ePhorte", "ePhorte case number"),
            "cell": "Skjema!C24",
            "message": _pick(
                lang, "Skriv saksnummeret slik: 2020/12345.", "Write the case number like this: 2020/12345."
            ),
        },
        {
            "label": _pick(lang, "Bekreftelse", "Confirmation"),
            "cell": "Skjema!C52",
            "message": _pick(
                lang,
                "Kryss av for at skjemaet er fylt ut av leder og verneombud sammen.",
                "Tick the box confirming that the leader and the safety representative "
                "filled in the form together.",
            ),
        },
    ]


def _progress(units: int, submitted: int, valid: int) -> dict[str, int]:
    return {
        "units": units,
        "submitted": submitted,
        "valid": valid,
        "missing": units - valid,
        "percent": valid * 100 // units if units else 0,
    }


def _digest(lang: str, faculty: str | None) -> dict[str, Any]:
    units = [u for u in [*OTHER_UNITS, UNIT] if faculty is None or u["faculty"] == faculty]
    idi, iik, ies = OTHER_UNITS[0], OTHER_UNITS[1], OTHER_UNITS[2]
    ibi, isl, itk = OTHER_UNITS[3], OTHER_UNITS[4], OTHER_UNITS[5]

    def keep(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r["unit"] in units]

    # most serious first, each with the unit's own words (a description goes with its first flag)
    words = _words(lang)
    flags = [{"unit": ibi, **_flags(lang)[0], "value": _pick(lang, "Nei", "No"), "words": []}]
    flags.append({"unit": UNIT, **_flags(lang)[0], "words": words[:1]})
    flags.append({"unit": UNIT, **_flags(lang)[1], "words": words[1:]})
    return {
        "period_start": dt.date(2020, 12, 7),
        "period_end": dt.date(2020, 12, 14),
        "progress": _progress(20, 15, 14) if faculty == "IE" else _progress(61, 40, 37),
        "new_submissions": keep(
            [
                {
                    "unit": UNIT,
                    "received_at": at(dt.date(2020, 12, 10), 14, 5),
                    "version": 2,
                    "updated": True,
                    "valid": True,
                },
                {
                    "unit": idi,
                    "received_at": at(dt.date(2020, 12, 8), 9, 41),
                    "version": 1,
                    "updated": False,
                    "valid": True,
                },
                {
                    "unit": ies,
                    "received_at": at(dt.date(2020, 12, 11), 16, 20),
                    "version": 1,
                    "updated": False,
                    "valid": False,
                },
                {
                    "unit": ibi,
                    "received_at": at(dt.date(2020, 12, 9), 11, 2),
                    "version": 1,
                    "updated": False,
                    "valid": True,
                },
            ]
        ),
        # a form in, with mistakes; its leader is also away (so in "away" too)
        "corrections_pending": keep(
            [
                {
                    "unit": ies,
                    "received_on": dt.date(2020, 12, 11),
                    "problems": 2,
                    "reminders": REMINDERS[:2],
                    "escalated_on": None,
                },
            ]
        ),
        # no form: one whose address fails, one away, one escalated
        "missing_units": keep(
            [
                {
                    "unit": iik,
                    "state": "address-failing",
                    "reminders": REMINDERS[:1],
                    "escalated_on": None,
                    "back_on": None,
                    "address_fails": True,
                },
                {
                    "unit": itk,
                    "state": "away",
                    "reminders": REMINDERS[:2],
                    "escalated_on": None,
                    "back_on": dt.date(2020, 12, 18),
                    "address_fails": False,
                },
                {
                    "unit": isl,
                    "state": "invited",
                    "reminders": REMINDERS[:3],
                    "escalated_on": dt.date(2020, 12, 14),
                    "back_on": None,
                    "address_fails": False,
                },
            ]
        ),
        "away": keep(
            [
                {"unit": ies, "back_on": dt.date(2020, 12, 21)},
                {"unit": itk, "back_on": dt.date(2020, 12, 18)},
            ]
        ),
        "flags": keep(flags),
        # persistent: every address that fails now, since when
        "bounces": keep(
            [
                {
                    "unit": iik,
                    "address": iik["leader_email"],
                    "at": at(dt.date(2020, 11, 23), 9, 3),
                    "reason": "550 5.1.1 User unknown",
                },
            ]
        ),
        "review_count": 2,
    }


def _flag_counts(lang: str) -> list[dict[str, Any]]:
    """How many units raised each kind of flag, most serious first (numbers only)."""
    return [
        {
            "message": _pick(
                lang,
                "Arbeidsmiljøet vurderes ikke som fullt forsvarlig",
                "The working environment is not considered fully satisfactory",
            ),
            "units": 4,
        },
        {"message": _flags(lang)[1]["message"].rstrip("."), "units": 1},
    ]


def _overview(lang: str, kind: str) -> dict[str, Any]:
    """HR's digest, the observers' digest and HR's final summary: numbers per faculty; HR's digest
    also the units that need someone to act (one for each reason), the final one the units
    without a valid form."""
    per_faculty = {"HF": (21, 12, 10, 2, 1), "IE": (20, 15, 14, 1, 2), "NV": (20, 13, 13, 0, 1)}
    faculties = [
        {"faculty": f, **_progress(*n[:3]), "corrections": n[3], "flagged": n[4]}
        for f, n in per_faculty.items()
    ]
    _, iik, ies, ibi, isl, _ = OTHER_UNITS[:6]
    common = {
        "progress": _progress(61, 40, 37) | {"corrections": 3},
        "faculties": faculties,
        "flag_counts": _flag_counts(lang),
    }
    if kind == "observer-digest":
        observers = [{"name": "Hovedverneombudet"}, {"name": "Forskerforbundet"}, {"name": "NTL"}]
        return common | {
            "observers": observers,
            "period_start": dt.date(2020, 12, 7),
            "period_end": dt.date(2020, 12, 14),
            "new_count": 3,
        }
    if kind == "hr-final":
        return common | {
            "closes_on": CLOSES,
            "as_of": at(CLOSES, 9),
            "without_form": [
                {"unit": iik, "state": "address-failing"},
                {"unit": ies, "state": "needs-correction"},
                {"unit": isl, "state": "invited"},
            ],
            "workbook_name": "aml-2020-20210113.xlsx",
            "web_url": "https://skjema.example.edu/",
        }
    bht = _pick(lang, "Bedriftshelsetjenesten", "the occupational health service")
    return common | {
        "period_start": dt.date(2020, 12, 7),
        "period_end": dt.date(2020, 12, 14),
        "new_count": 3,
        "review_count": 2,
        "web_url": "https://skjema.example.edu/",
        "actions": [
            {
                "unit": iik,
                "why": [
                    {
                        "kind": "address",
                        "address": iik["leader_email"],
                        "reason": "550 5.1.1 User unknown",
                        "since": dt.date(2020, 11, 23),
                    }
                ],
            },
            {
                "unit": ies,
                "why": [{"kind": "correction", "received_on": dt.date(2020, 12, 3), "problems": 2}],
            },
            {"unit": UNIT, "why": [{"kind": "help", "wanted": [bht]}]},
            {"unit": ibi, "why": [{"kind": "challenges"}]},
            {"unit": isl, "why": [{"kind": "escalated", "on": dt.date(2020, 12, 14)}]},
        ],
    }


def sample_context(kind: str, lang: str) -> dict[str, Any]:
    """A complete context for ``kind`` in ``lang`` (nb or en), as the service would build it."""
    if kind not in KIND_KEYS:
        raise KeyError(f"no sample for kind {kind!r}")
    context: dict[str, Any] = {
        # the title and the sender in the reader's language (Config.title_for, from_name_for)
        "campaign": {
            "id": "aml-2020",
            "title": _pick(lang, "Oppsummering og evaluering 2020", "Summary and evaluation 2020"),
            "opens": CAMPAIGN_OPENS,
            "deadline": DEADLINE,
            "guidance_url": GUIDANCE_URL,
        },
        "sender": {
            "name": _pick(lang, "HR- og HMS-avdelingen", "HR and HSE Division"),
            "address": "hms-skjema@example.edu",
        },
    }
    if kind in ("hr-digest", "observer-digest", "hr-final"):
        context.update(_overview(lang, kind))
    elif kind == "coordinator-digest":
        context.update(_digest(lang, "IE"), faculty="IE", coordinators=COORDINATORS["IE"])
    else:
        context.update(
            unit=dict(UNIT),
            reference=REFERENCE,
            coordinators=list(COORDINATORS["IE"]),
            attachment_name=_pick(
                lang, "Oppsummering og evaluering – IE-IBM.xlsx", "Summary and evaluation – IE-IBM.xlsx"
            ),
            verneombud_copied=True,
            cosign_asked="verneombud",  # the receipt: the verneombud is asked to confirm
            invited_on=CAMPAIGN_OPENS,
            days_left=2,
            days_overdue=1,
            reminder_number=3,
            answers_kept=True,
            problems=_problems(lang),
            received_on=dt.date(2020, 12, 10),
            submission={
                "version": 2,
                "updated": True,
                "received_at": at(dt.date(2020, 12, 10), 14, 5),
                "sent_by": "",
                "summary": _summary(lang),
                "flags": _flags(lang),
                "challenges": [_forsvarlig(lang)],
                "challenges_shared": True,
            },
            # the escalation of a unit whose form came with mistakes: every mail its leader got
            stage="needs-correction",
            has_superior=True,
            failure=None,
            back_on=None,
            mails=[
                {"day": CAMPAIGN_OPENS, "what": "invitation", "bounced": False},
                {"day": REMINDERS[0], "what": "reminder", "bounced": False},
                {"day": REMINDERS[1], "what": "reminder", "bounced": False},
                {"day": dt.date(2020, 12, 10), "what": "correction", "bounced": False},
                {"day": REMINDERS[2], "what": "reminder", "bounced": False},
                {"day": REMINDERS[3], "what": "reminder", "bounced": False},
            ],
            # the notices about a valid form's answers
            answers=[_forsvarlig(lang)],
            words=_words(lang),
            received_at=at(dt.date(2020, 12, 10), 14, 5),
            changed=False,
            audience="bht",
            wanted=[
                _pick(lang, "Bedriftshelsetjenesten", "Occupational health service"),
                _pick(
                    lang,
                    "Koordinator for arbeidsmiljøundersøkelsen",
                    "Coordinator for the work-environment survey",
                ),
            ],
        )
        if kind == "escalation":
            context["days_overdue"] = 6
        if kind == "leader-after-closing":
            # a form with mistakes, after the closing, that also says it is not fully satisfactory
            context["submission"] = {
                "received_at": at(dt.date(2021, 1, 18), 10, 12),
                "challenges": [_forsvarlig(lang)],
            }
            context["problems"] = _problems(lang)[:1]
            context["closes_on"] = CLOSES
    if kind in COSIGN_KIND_KEYS:  # built by the service's own context functions (cosign_samples.py)
        context.update(cosign_sample(kind, lang, context))
    if kind in DIGEST_COSIGN_KINDS:
        digest_cosign(kind, lang, context, UNIT, OTHER_UNITS)
    return {k: v for k, v in context.items() if k in ("campaign", "sender", *KIND_KEYS[kind])}
