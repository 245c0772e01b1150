"""The verneombud's confirmation shown everywhere, alike: the digests, the workbook, the web page's
view and `status --units --json` agree on each unit's co-signature.

A seeded store (no mail servers, a fixed clock: Tuesday 8 Dec 2020), nine units over IE/NV/HF, one
per kind of co-signature:

  IE-U000 confirmed            NV-U001 disputed (two lines)   HF-U002 pending, reminded
  IE-U003 no address (roster)  NV-U004 valid, not asked yet    HF-U005 v1 confirmed, v2 asked: pending
  IE-U006 no valid form        NV-U007 asked, address bounced  HF-U008 confirmed, then a comment

`status --units --json` is read first and checked against that script; every other surface is then
compared with it unit by unit. Then the same with ``[cosign] mode = "off"``: nothing shows it.

Last, the same comparison on tests/test_cosign_replay.py's campaign against the real relay and
Dovecot (its ``replay`` fixture: six scripted verneombud), with the digests as they arrived in the
coordinators' and HR's mailboxes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import re
from collections import Counter
from collections.abc import Iterator

import openpyxl
import pytest
from cosign_people import body
from harness.filling import valid_answers
from harness.website import NOW, T0, bounce, seed, submit, web_project
from test_cosign_replay import END, Replay, replay  # noqa: F401 - the replay fixture, shared
from test_cosign_replay import at as replay_at

from service.app.operations import Operations
from service.app.wiring import App
from service.campaign.cosign import CoSign, CoSignState, NotAsked
from service.campaign.state import Stage, UnitState
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs import confirmations
from service.jobs.confirmations import Bucket
from service.jobs.digest import digests
from service.models import NewMail
from service.web.users import WebUser
from service.web.views import Views

OBSERVERS = (
    '\n[[observers]]\nname = "Hovedverneombudet"\nemail = "hvo@example.test"\n'
    '\n[[observers]]\nname = "Tekna"\nemail = "tekna@example.test"\nlanguage = "en"\n'
)
WORDS = "Vi har ikke hatt noe oppfølgingsmøte ennå.\nTiltak 2 er ikke startet."
LATER = "Enig i det meste, men ikke i at LOSAM var med."
# the script: unit -> (stage, reason) as `status --units --json` must say it
EXPECTED = {
    "IE-U000": ("confirmed", None),
    "NV-U001": ("disputed", None),
    "HF-U002": ("pending", None),
    "IE-U003": ("no-address", "no-address"),
    "NV-U004": ("not-asked", "not-yet"),
    "HF-U005": ("pending", None),
    "IE-U006": ("not-asked", "no-valid-form"),
    "NV-U007": ("no-address", "address-failing"),
    "HF-U008": ("disputed", None),
}
# how the workbook (nb) words each (stage, reason): written out here, not taken from the service
WORKBOOK_WORDS = {
    ("confirmed", None): "bekreftet",
    ("disputed", None): "har kommentar",
    ("pending", None): "venter på svar",
    ("no-address", "no-address"): "ikke spurt: mangler adresse",
    ("no-address", "address-failing"): "ikke spurt: adressen virker ikke",
    ("not-asked", "not-yet"): "ikke spurt ennå",
    ("not-asked", "no-valid-form"): "ikke spurt: ikke gyldig skjema",
}
BUCKETS = {"confirmed": "confirmed", "disputed": "disputed", "pending": "pending"}  # else not asked


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def cosign_seed(p) -> None:
    """The units' forms, the requests to their verneombud and the answers, as the inbox records them."""
    p.units[3] = dataclasses.replace(p.units[3], verneombud_email="")  # IE-U003: none in the roster
    p.write_roster()
    p.setup()
    app = App(config_mod.load(p.config, p.env))
    store, cid = app.store, app.campaign_id
    try:
        for n, code in enumerate(("IE-U000", "NV-U001", "HF-U002", "IE-U003", "NV-U004", "HF-U005"), start=1):
            submit(app, n, code, valid_answers(1), True)
        submit(app, 7, "NV-U007", valid_answers(1), True)
        submit(app, 9, "HF-U008", valid_answers(1), True)
        submit(app, 10, "HF-U005", valid_answers(2), True)  # a second valid version, other answers
        vo = {u.code: u.verneombud_email for u in p.units}

        def ask(code: str, version: int, hours: float) -> int:
            request = store.record_cosign_request(
                cid,
                code,
                version=version,
                message_id=f"<req.{code}.{version}@x>",
                asked_to=vo[code],
                now=at(hours),
            )
            return request.id

        def answer(request: int, reading: str, words: str, hours: float, code: str) -> None:
            store.record_cosign_answer(
                request, reading=reading, words=words, answered_by=vo[code], at=at(hours)
            )

        answer(ask("IE-U000", 1, 1.1), "confirmed", "Enig", 20, "IE-U000")
        answer(ask("NV-U001", 1, 2.1), "disputed", WORDS, 21, "NV-U001")
        reminded = ask("HF-U002", 1, 3.1)
        assert store.record_cosign_reminder(reminded, message_id="<rem.HF-U002@x>", now=at(143))
        answer(ask("HF-U005", 1, 6.1), "confirmed", "Enig.", 22, "HF-U005")
        ask("HF-U005", 2, 10.1)  # the newest request counts: pending again
        ask("NV-U007", 1, 7.1)
        bounce(app, 8, vo["NV-U007"], f"550 5.1.1 <{vo['NV-U007']}>: User unknown")
        first = ask("HF-U008", 1, 9.1)
        answer(first, "confirmed", "Ok", 30, "HF-U008")
        answer(first, "disputed", LATER, 40, "HF-U008")  # the newest answer counts
    finally:
        app.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[object, App]]:
    p = web_project(tmp_path_factory.mktemp("cosign-surfaces"), extra=OBSERVERS)
    cosign_seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    yield p, app
    app.close()


def status_json(p) -> dict[str, dict | None]:
    out = p.cli("--as-of", "2020-12-08T10:00", "status", "--units", "--json")
    assert out.exit_code == 0, out.output
    return {row["code"]: row["cosign"] for row in json.loads(out.output)}


def text_of(mail: NewMail) -> str:
    msg = email.message_from_bytes(mail.payload, policy=email.policy.default)
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


def listed(text: str) -> dict[str, set[str]]:
    """The unit codes under each counted heading ("HEADING (n)") of a plain-text digest."""
    out: dict[str, set[str]] = {}
    heading = ""
    for line in text.splitlines():
        found = re.match(r"^([A-ZÆØÅ' ,.-]+) \((\d+)\)$", line)
        if found:
            heading = found.group(1)
            out[heading] = set()
        elif re.match(r"^[A-ZÆØÅ]", line):
            heading = ""
        elif heading and (code := re.match(r"^  ([A-Z]{2}-U\d{3}) ", line)):
            out[heading].add(code.group(1))
    return out


def bucket_of(cosign: dict) -> str:
    return BUCKETS.get(cosign["stage"], "not-asked")


def counted(status: dict[str, dict | None], valid: set[str]) -> dict[str, Counter[str]]:
    """Per faculty, the units with a valid form in each bucket, from `status --units --json`."""
    out: dict[str, Counter[str]] = {}
    for code, cosign in status.items():
        if code in valid and cosign is not None:
            out.setdefault(code[:2], Counter())[bucket_of(cosign)] += 1
    return out


def stored(p) -> dict[str, tuple[int, str | None]]:
    """Each unit's newest request straight from the database: (version, reading)."""
    newest: dict[str, tuple[int, str | None]] = {}
    for code, version, reading in p.query(
        "select u.code, c.version, c.reading from cosign c join units u on u.id = c.unit_id"
    ):
        if code not in newest or version > newest[code][0]:
            newest[code] = (version, reading)
    return newest


def test_status_says_what_the_script_did(seeded):
    p, _ = seeded
    status = status_json(p)
    assert {c: (s["stage"], s["reason"]) for c, s in status.items() if s} == EXPECTED
    # and what the store holds: the newest request's reading, pending while it has none (a
    # request whose address then bounced is not pending: the verneombud cannot be reached)
    for code, (version, reading) in stored(p).items():
        assert status[code]["version"] == version
        assert status[code]["stage"] == (reading or ("no-address" if code == "NV-U007" else "pending")), code
    assert status["NV-U001"]["words"] == WORDS and status["HF-U008"]["words"] == LATER
    assert status["HF-U005"]["version"] == 2 and status["HF-U002"]["reminded_at"]


def test_digests_workbook_web_and_status_agree_on_each_units_cosignature(seeded, tmp_path):
    p, app = seeded
    status = status_json(p)
    valid = {c for c, (stage, reason) in EXPECTED.items() if reason != "no-valid-form"}
    per_faculty = counted(status, valid)
    disputed = {c for c in valid if status[c]["stage"] == "disputed"}
    pending = {c for c in valid if status[c]["stage"] == "pending"}
    not_asked = valid - disputed - pending - {c for c in valid if status[c]["stage"] == "confirmed"}
    no_address = {c for c in valid if status[c]["stage"] == "no-address"}
    assert (disputed, pending, no_address) == (
        {"NV-U001", "HF-U008"},
        {"HF-U002", "HF-U005"},
        {"IE-U003", "NV-U007"},
    )

    # the workbook: Svar's pair per unit, and Oppsummering's block per faculty
    path, _ = Operations(app).compile(tmp_path / "book.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book["Svar"].iter_rows(values_only=True))
    head = list(rows[0])
    i, j = head.index("Verneombudets bekreftelse"), head.index("Verneombudets kommentar")
    svar = {r[0]: (r[i], r[j]) for r in rows[1:] if r[0]}
    assert svar == {
        c: (WORKBOOK_WORDS[(s["stage"], s["reason"])], s["words"] if s["stage"] == "disputed" else None)
        for c, s in status.items()
        if s is not None
    }
    block = _block(book["Oppsummering"], "Verneombudets bekreftelse av svarene")
    faculties = block.pop("")
    labels = {
        "Bekreftet": "confirmed",
        "Har kommentar": "disputed",
        "Venter på svar": "pending",
        "Ikke spurt: adressen mangler eller feiler": "no-address",
        "Ikke spurt ennå": "not-yet",
    }
    want = {f: Counter() for f in faculties}
    for c in valid:
        s = status[c]
        key = "not-yet" if s["reason"] == "not-yet" else BUCKETS.get(s["stage"], "no-address")
        want[c[:2]][key] += 1
    forms = sum(sum(w.values()) for w in want.values())
    for label, key in labels.items():
        per = tuple(want[f][key] for f in faculties)
        assert block[label] == (*per, sum(per), sum(per) * 100 // forms), label

    # the web page's view (HR's): every unit with a valid form, what needs a person first
    page = Views(app).dashboard(WebUser("hr", "hr", None, "x"), "nb")
    assert {x.code: x.stage.value for x in page.cosign} == {c: status[c]["stage"] for c in valid}
    assert [x.bucket for x in page.cosign] == sorted(
        (x.bucket for x in page.cosign), key=confirmations.ATTENTION.index
    )
    assert {x.code: x.words for x in page.cosign if x.words} == {c: status[c]["words"] for c in disputed}
    assert page.cosign_counts is not None and page.cosign_total is not None
    for faculty, count in page.cosign_counts.items():
        n = per_faculty.get(faculty, Counter())
        assert (count.confirmed, count.disputed, count.pending, count.not_asked) == (
            n["confirmed"],
            n["disputed"],
            n["pending"],
            n["not-asked"],
        ), faculty
        assert count.forms == sum(n.values())
    assert page.cosign_total.forms == len(valid) and page.cosign_total.no_address == len(no_address)

    # the digests: each coordinator's lists, HR's units to act on, the observers' numbers only
    mails = digests(app.store, app.config, app.letters, NOW, include_sent=True)
    lists: dict[str, set[str]] = {}
    for mail in (m for m in mails if m.kind == "coordinator-digest"):
        text = text_of(mail)
        faculty = mail.dedupe_key.split(":")[2]
        n = per_faculty.get(faculty, Counter())
        assert (
            f"{n['confirmed']} av {sum(n.values())} enheter med gyldig skjema har fått svarene bekreftet "
            f"av verneombudet, {n['disputed']} har en kommentar, {n['pending']} venter på svar og "
            f"{n['not-asked']} er ikke spurt."
        ) in text, faculty
        for heading, codes in listed(text).items():
            lists[heading] = lists.get(heading, set()) | codes
    assert lists["VERNEOMBUDET HAR EN KOMMENTAR"] == disputed
    assert lists["VENTER PÅ SVAR FRA VERNEOMBUDET"] == pending
    assert lists["VERNEOMBUDET ER IKKE SPURT"] == not_asked
    (ie,) = [m for m in mails if m.dedupe_key.split(":")[1:3] == ["digest", "IE"]]
    assert "Enhetslisten har ingen e-postadresse til verneombudet" in text_of(ie)
    coordinators = "\n".join(text_of(m) for m in mails if m.kind == "coordinator-digest")
    for code in disputed:  # the words verbatim, line by line
        assert all(line in coordinators for line in status[code]["words"].splitlines())

    (hr,) = [m for m in mails if m.kind == "hr-digest"]
    hr_text = text_of(hr)
    acting = listed(hr_text)["MÅ FØLGES OPP"]
    assert acting == disputed | no_address  # nothing else in this seed needs anyone to act
    assert hr_text.count("har en kommentar til svarene") == len(disputed)
    assert hr_text.count("er ikke spurt om å bekrefte svarene") == len(no_address)
    assert LATER in hr_text

    for mail in (m for m in mails if m.kind == "observer-digest"):
        text = text_of(mail)
        assert not re.search(r"\b[A-Z]{2}-U\d{3}\b", text) and "LOSAM var med" not in text
        assert "oppfølgingsmøte ennå" not in text and "vo0" not in text
        for faculty, n in per_faculty.items():
            line = (
                rf"^  {faculty}\s+{n['confirmed']} (av|of) {sum(n.values())} (bekreftet|confirmed), "
                rf"{n['disputed']} (med kommentar|with a comment), {n['pending']} (venter|awaited), "
                rf"{n['not-asked']} (ikke spurt|not asked)$"
            )
            assert re.search(line, text, re.M), (faculty, text)


def test_with_confirmation_required_the_digests_say_how_many_units_are_done(tmp_path):
    """``[cosign] mode = "required"``: a unit is done only once its verneombud confirmed; the
    coordinators' and HR's digests say so, with how many are (IE-U000 only, of IE's 3 and all 9)."""
    p = web_project(tmp_path, extra=OBSERVERS + '\n[cosign]\nmode = "required"\n')
    cosign_seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    try:
        mails = {
            m.dedupe_key.split(":")[2]: text_of(m) for m in digests(app.store, app.config, app.letters, NOW)
        }
    finally:
        app.close()
    assert "Bekreftelsen er påkrevd" in mails["IE"] and "1 av 3 enheter er ferdige." in mails["IE"]
    assert "0 av 3 enheter er ferdige." in mails["NV"]
    assert "og 1 av 9 enheter er ferdige." in mails["hr"]
    assert "påkrevd" not in mails["observers-nb"]  # numbers only, as ever


def _block(ws, title: str) -> dict[str, tuple]:
    """One block of Oppsummering: {"": faculties, answer: (per faculty..., total, share)}."""
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r and r[0] == title)
    header = next(i for i in range(start, len(rows)) if rows[i][-2:] == ("Totalt", "Andel"))
    out: dict[str, tuple] = {"": rows[header][1:-2]}
    for row in rows[header + 1 :]:
        if not row or row[0] is None:
            break
        out[row[0]] = tuple(row[1:])
    return out


def test_with_the_cosignature_off_no_surface_shows_it(tmp_path):
    """``[cosign] mode = "off"``: no co-signature in `status --units --json`, no columns or block
    in the workbook, no section on the web page, no word of it in any digest."""
    p = web_project(tmp_path, extra=OBSERVERS + '\n[cosign]\nmode = "off"\n')
    seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    try:
        assert set(status_json(p).values()) == {None}
        path, _ = Operations(app).compile(tmp_path / "book.xlsx")
        book = openpyxl.load_workbook(path, read_only=True)
        head = next(book["Svar"].iter_rows(values_only=True))
        assert "Verneombudets bekreftelse" not in head and "Verneombudets kommentar" not in head
        cells = {str(c) for row in book["Oppsummering"].iter_rows(values_only=True) for c in row if c}
        assert "Verneombudets bekreftelse av svarene" not in cells
        page = Views(app).dashboard(WebUser("hr", "hr", None, "x"), "nb")
        assert page.cosign_counts is None and page.cosign_total is None and not page.cosign
        for mail in digests(app.store, app.config, app.letters, NOW, include_sent=True):
            text = text_of(mail)
            assert not re.search("VERNEOMBUDE|SAFETY REPRESENTATIVE|bekreftet av verneombud", text), mail.kind
    finally:
        app.close()


# -- the counting itself, on states made by hand ------------------------------------------------


def state(code: str, cosign: CoSignState | None, stage: Stage = Stage.VALID) -> UnitState:
    return UnitState(code=code, faculty=code[:2], stage=stage, cosign=cosign)


ASKED = dt.datetime(2020, 12, 1, 9, tzinfo=dt.UTC)
STATES = [
    state("IE-A", CoSignState(stage=CoSign.CONFIRMED, version=1, asked_at=ASKED)),
    state("IE-B", CoSignState(stage=CoSign.DISPUTED, version=1, asked_at=ASKED, words="Nei.")),
    state("IE-C", CoSignState(stage=CoSign.PENDING, version=2, asked_at=ASKED)),
    state("IE-D", CoSignState(stage=CoSign.NO_ADDRESS, reason=NotAsked.NO_ADDRESS)),
    state("NV-E", CoSignState(stage=CoSign.NO_ADDRESS, reason=NotAsked.ADDRESS_FAILING, version=1)),
    state("NV-F", CoSignState(stage=CoSign.NOT_ASKED, reason=NotAsked.NOT_YET)),
    # no valid form: nothing to confirm, so not counted (whatever its co-signature says)
    state("NV-G", CoSignState(stage=CoSign.NO_ADDRESS, reason=NotAsked.NO_ADDRESS), Stage.INVITED),
    state("HF-H", CoSignState(stage=CoSign.NOT_ASKED, reason=NotAsked.NO_VALID_FORM), Stage.NEEDS_CORRECTION),
    state("HF-I", None),  # the co-signature off
]


def test_each_unit_with_a_valid_form_is_counted_in_one_bucket():
    assert [confirmations.bucket(s) for s in STATES] == [
        Bucket.CONFIRMED,
        Bucket.DISPUTED,
        Bucket.PENDING,
        Bucket.NOT_ASKED,
        Bucket.NOT_ASKED,
        Bucket.NOT_ASKED,
        None,
        None,
        None,
    ]
    per = confirmations.per_faculty(STATES, ["HF", "IE", "NV", "XX"])
    assert list(per) == ["HF", "IE", "NV", "XX"]
    ie = per["IE"]
    assert (ie.forms, ie.confirmed, ie.disputed, ie.pending, ie.not_asked, ie.no_address) == (
        4,
        1,
        1,
        1,
        1,
        1,
    )
    assert ie.percent == 25
    nv = per["NV"]
    assert (nv.forms, nv.not_asked, nv.no_address) == (2, 2, 1)
    assert per["HF"].forms == per["XX"].forms == 0 and per["XX"].percent == 0
    total = confirmations.total(per)
    assert (total.forms, total.confirmed, total.not_asked, total.no_address) == (6, 1, 3, 2)
    assert total.as_dict()["percent"] == 16  # 1 of 6, rounded down as every share


def test_the_words_name_the_reason_in_both_languages():
    words = {
        s.code: (confirmations.words(s.cosign, "nb"), confirmations.words(s.cosign, "en")) for s in STATES
    }
    assert words == {
        "IE-A": ("bekreftet", "confirmed"),
        "IE-B": ("har kommentar", "has a comment"),
        "IE-C": ("venter på svar", "awaiting an answer"),
        "IE-D": ("ikke spurt: mangler adresse", "not asked: no address"),
        "NV-E": ("ikke spurt: adressen virker ikke", "not asked: address not working"),
        "NV-F": ("ikke spurt ennå", "not asked yet"),
        "NV-G": ("ikke spurt: mangler adresse", "not asked: no address"),
        "HF-H": ("ikke spurt: ikke gyldig skjema", "not asked: no valid form"),
        "HF-I": ("", ""),
    }


def test_a_list_puts_what_needs_a_person_first():
    ordered = sorted(STATES, key=confirmations.attention_order)
    assert [s.code for s in ordered] == [
        "IE-B",
        "IE-D",
        "NV-E",
        "NV-F",
        "IE-C",
        "IE-A",
        "HF-H",
        "HF-I",
        "NV-G",
    ]


# -- on the replay through the real relay and Dovecot --------------------------------------------


@pytest.mark.servers
def test_on_the_replay_the_digests_workbook_web_and_status_agree(replay: Replay, tmp_path):  # noqa: F811
    """After the replay: `status --units --json` as the truth; the workbook's «Svar» and block,
    HR's web view, and the last weekly digests the coordinators and HR received (Mon 14 Dec, after
    which no co-signature changed) say the same of every unit."""
    r = replay
    r.app.clock.set(replay_at(END, 12))  # type: ignore[attr-defined]
    out = r.p.cli("--as-of", "2020-12-16T12:00", "status", "--units", "--json")  # type: ignore[attr-defined]
    status = {row["code"]: row["cosign"] for row in json.loads(out.output)}
    valid = {row["code"] for row in json.loads(out.output) if row["valid"]}
    assert valid == set(status)  # every leader sent a valid form on 1 Dec
    stages = {c: s["stage"] for c, s in status.items()}
    assert sorted(stages.values()) == [
        "confirmed",
        "confirmed",
        "confirmed",
        "confirmed",
        "disputed",
        "pending",
    ]
    disputed = {c for c, s in stages.items() if s == "disputed"}
    pending = {c for c, s in stages.items() if s == "pending"}

    path, _ = Operations(r.app).compile(tmp_path / "replay.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book["Svar"].iter_rows(values_only=True))
    head = list(rows[0])
    i, j = head.index("Verneombudets bekreftelse"), head.index("Verneombudets kommentar")
    assert {x[0]: (x[i], x[j]) for x in rows[1:] if x[0]} == {
        c: (WORKBOOK_WORDS[(s["stage"], s["reason"])], s["words"] if s["stage"] == "disputed" else None)
        for c, s in status.items()
    }
    block = _block(book["Oppsummering"], "Verneombudets bekreftelse av svarene")
    faculties = block.pop("")
    for label, stage in (
        ("Bekreftet", "confirmed"),
        ("Har kommentar", "disputed"),
        ("Venter på svar", "pending"),
    ):
        per = tuple(sum(1 for c, s in stages.items() if c[:2] == f and s == stage) for f in faculties)
        assert block[label][: len(faculties)] == per, label

    page = Views(r.app).dashboard(WebUser("hr", "hr", None, "x"), "nb")
    assert {x.code: x.stage.value for x in page.cosign} == stages
    assert {x.code: x.words for x in page.cosign if x.words} == {c: status[c]["words"] for c in disputed}

    lists: dict[str, set[str]] = {}
    for faculty in ("ie", "nv", "hf"):
        got = [m for _, k, m in r.got[f"koord-{faculty}@example.test"] if k == "coordinator-digest"]
        for heading, codes in listed(body(got[-1])).items():
            lists[heading] = lists.get(heading, set()) | codes
    assert lists["VERNEOMBUDET HAR EN KOMMENTAR"] == disputed
    assert lists["VENTER PÅ SVAR FRA VERNEOMBUDET"] == pending
    assert lists["VERNEOMBUDET ER IKKE SPURT"] == set()
    hr = [m for _, k, m in r.got["hr@example.test"] if k == "hr-digest"][-1]
    assert listed(body(hr))["MÅ FØLGES OPP"] == disputed
    for code in disputed:
        assert status[code]["words"] in body(hr)
