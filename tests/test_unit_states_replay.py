"""Every person is told the truth about their unit: a whole campaign, one scripted leader per state.

Autumn 2020 against the real relay and Dovecot, on a clock: opens Mon 23 Nov, deadline Wed 16 Dec;
reminders 2, 9 and 14 Dec, the after-deadline one Thu 17 Dec, escalation 3 working days later
(Tue 22 Dec). The runner's cycle runs at 08:00 and 09:00 each day; replies arrive before the
09:00 cycle. Who does what:

  U0 fixer       sends a form with mistakes on 11 Dec, the fixed form on 15 Dec
  U1 unfixed     sends a form with mistakes on 3 Dec and never fixes it
  U2 bounced     the invitation bounces on 24 Nov; the address is never fixed
  U3 corrected   the invitation bounces; HR re-imports the roster with a new address on 30 Nov
  U4 away        out of office until 10 Dec (auto-reply on 24 Nov), then a valid form on 11 Dec
  U5 challenges  a valid form on 1 Dec: the work environment is not fully satisfactory; on 8 Dec
                 a newer version says "unsure"; on 9 Dec the same again
  U6 help        a valid form on 2 Dec asking the coordinator and Bedriftshelsetjenesten for help
  U7 silent      never answers

The mails each person got are asserted by kind (from the outbox row behind each Message-ID), day
and the sentences that must and must not be in them; then the digests, the workbook's «Mangler»,
the web page's view and `status --units --json` are compared unit by unit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import json
import re
from collections import defaultdict
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from harness.filling import answers_with_mistakes, fill, shipped_form, valid_answers
from projects import mail_project
from test_poll import dsn, reply

from service.app.operations import Operations
from service.app.setup import Setup
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.poll import StopFlag
from service.web.users import WebUser
from service.web.views import Views

pytestmark = pytest.mark.servers
OSLO = ZoneInfo("Europe/Oslo")
FORM = shipped_form()
D = dt.date
END = D(2020, 12, 23)
NOT_RECEIVED = ("ikke mottatt", "not received", "har ikke levert", "has not submitted", "not yet received")


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=OSLO)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def auto_reply(unit, original: EmailMessage) -> bytes:
    msg = EmailMessage()
    msg["From"] = unit.leader_email
    msg["To"] = original["From"]
    msg["Subject"] = "Automatisk svar: " + original["Subject"]
    msg["Auto-Submitted"] = "auto-replied"
    msg["Message-ID"] = make_msgid(domain="client.example.test")
    msg["In-Reply-To"] = original["Message-ID"]
    msg.set_content("Jeg er på reise og er tilbake 10. desember 2020.")
    return msg.as_bytes(policy=email.policy.SMTP)


def answers(kind: str) -> dict[str, object]:
    a = valid_answers(1)  # fully satisfactory, no help: nothing to tell anyone
    if kind == "mistakes":
        return answers_with_mistakes(1)
    if kind == "not-satisfactory":
        a |= {"fullt_forsvarlig": "no", "forsvarlig_beskrivelse": "Stort arbeidspress etter nedstengingen."}
    if kind == "unsure":
        a |= {"fullt_forsvarlig": "unsure", "forsvarlig_beskrivelse": "Vi vet ikke ennå hvordan det går."}
    if kind == "help":
        a |= {"hjelp_onsket": ("koordinator", "bht"), "kommentarer": "Vi trenger hjelp med en konflikt."}
    return a


@dataclasses.dataclass
class Replay:
    p: object
    app: App
    units: list
    got: dict[str, list[tuple[dt.date, str, EmailMessage]]]
    new_address: str
    first_form: dict[str, dt.date]  # unit code -> the day its first form (right or wrong) came


@pytest.fixture(scope="module")
def replay(mail_world, tmp_path_factory) -> Replay:
    p = mail_project(tmp_path_factory.mktemp("states"), mail_world, 8)
    units = p.units
    coordinators = [f"koord-{f}@example.test" for f in ("ie", "nv", "hf")]
    mail_world.add_users(
        [u.superior_email for u in units] + coordinators + ["hr@example.test", "bht@example.test"]
    )
    new_address = mail_world.new_user("leader3-new")
    p.config.write_text(
        p.config.read_text() + '\n[schedule]\nsend_hour = 9\ndigest_weekday = "monday"\ndigest_hour = 8\n'
        "reminder_days_before = [14, 7, 2]\nescalation_working_days = 3\n"
        '\n[notices]\nbht = ["bht@example.test"]\n'
    )
    clock = FixedClock(at(D(2020, 11, 23), 8))
    app = App(config_mod.load(p.config, p.env), clock)
    ops = Operations(app)
    Setup(app).init()
    Setup(app).import_roster()
    u = units
    form_replies = {
        (u[0].code, D(2020, 12, 11)): "mistakes",
        (u[0].code, D(2020, 12, 15)): "valid",
        (u[1].code, D(2020, 12, 3)): "mistakes",
        (u[3].code, D(2020, 12, 3)): "valid",
        (u[4].code, D(2020, 12, 11)): "valid",
        (u[5].code, D(2020, 12, 1)): "not-satisfactory",
        (u[5].code, D(2020, 12, 8)): "unsure",
        (u[5].code, D(2020, 12, 9)): "unsure",
        (u[6].code, D(2020, 12, 2)): "help",
    }
    people = (
        {x.leader_email for x in units}
        | {x.superior_email for x in units}
        | set(coordinators)
        | {"hr@example.test", "bht@example.test", new_address}
    )
    got: dict[str, list[tuple[dt.date, str, EmailMessage]]] = defaultdict(list)
    # the superiors', coordinators' and HR's mailboxes are shared with other tests: count from now
    seen: dict[str, int] = defaultdict(int, {a: len(mail_world.messages(a)) for a in people})
    day = D(2020, 11, 23)
    while day <= END:
        for hour in (8, 9):
            clock.set(at(day, hour))
            if hour == 9:
                if day == D(2020, 11, 24):  # the bounces and the out-of-office reply to the invitation
                    for x in (u[2], u[3]):
                        mail_world.deliver(dsn(x, first(mail_world, x.leader_email), p.service), p.service)
                    mail_world.deliver(auto_reply(u[4], first(mail_world, u[4].leader_email)), p.service)
                if day == D(2020, 11, 30):  # HR corrects U3's address
                    fixed = [
                        dataclasses.replace(x, leader_email=new_address) if x is u[3] else x for x in units
                    ]
                    p.write_roster(fixed)
                    Setup(app).import_roster()
                for (code, when), kind in form_replies.items():
                    if when == day:
                        unit = next(x for x in units if x.code == code)
                        address = new_address if unit is u[3] else unit.leader_email
                        original = first(mail_world, address)
                        (att,) = list(original.iter_attachments())
                        data = fill(att.get_content(), FORM, answers(kind), unit.language)
                        sender = dataclasses.replace(unit, leader_email=address)
                        mail_world.deliver(reply(sender, original, (att.get_filename(), data)), p.service)
            ops.cycle(StopFlag())
            kinds = dict(p.query("select message_id, kind from outbox"))
            for address in people:
                raws = mail_world.messages(address)
                for raw in raws[seen[address] :]:
                    msg = parse(raw)
                    got[address].append((day, kinds.get(msg["Message-ID"], "?"), msg))
                seen[address] = len(raws)
        day += dt.timedelta(days=1)
    first_form: dict[str, dt.date] = {}
    for code, when in sorted(form_replies, key=lambda k: k[1]):
        first_form.setdefault(code, when)
    return Replay(p, app, units, got, new_address, first_form)


def m_unit(msg: EmailMessage, unit) -> bool:
    """The mail is about ``unit``."""
    return unit.code in str(msg["Subject"]) or unit.code in body(msg)


def koord(unit) -> str:
    return f"koord-{unit.faculty.lower()}@example.test"


def first(world, address: str) -> EmailMessage:
    return parse(world.messages(address)[0])


def kinds(r: Replay, address: str, *, drop: tuple[str, ...] = ("coordinator-digest", "hr-digest")) -> list:
    return [(d, k) for d, k, _ in r.got[address] if k not in drop]


# -- what each leader got --------------------------------------------------------------------


def test_a_form_with_mistakes_is_never_called_not_received(replay):
    """U1 sent a form with mistakes on 3 Dec: every reminder after it says the form came on 3 Dec
    and what is left to fix, sends the leader's own copy back, and never says "not received"."""
    u1 = replay.units[1]
    assert kinds(replay, u1.leader_email) == [
        (D(2020, 11, 23), "leader-invitation"),
        (D(2020, 12, 2), "leader-reminder-before"),
        (D(2020, 12, 3), "leader-correction"),
        (D(2020, 12, 9), "leader-reminder-correction"),
        (D(2020, 12, 14), "leader-reminder-correction"),
        (D(2020, 12, 17), "leader-reminder-correction"),
    ]
    for day, kind, msg in replay.got[u1.leader_email]:
        if day > D(2020, 12, 3):
            text = body(msg)
            assert not any(w in text for w in NOT_RECEIVED), (day, kind, text)
            assert "03.12" in text or "3. desember" in text, text
            (att,) = list(msg.iter_attachments())
            assert att.get_filename().endswith(".xlsx")


def test_no_reminder_on_the_day_of_a_correction(replay):
    """U0 got its correction on Fri 11 Dec; the reminder of Mon 14 Dec tells what is still wrong
    (the form did come); the fixed form on 15 Dec gets a receipt and nothing follows."""
    u0 = replay.units[0]
    assert kinds(replay, u0.leader_email) == [
        (D(2020, 11, 23), "leader-invitation"),
        (D(2020, 12, 2), "leader-reminder-before"),
        (D(2020, 12, 9), "leader-reminder-before"),
        (D(2020, 12, 11), "leader-correction"),
        (D(2020, 12, 14), "leader-reminder-correction"),
        (D(2020, 12, 15), "leader-receipt"),
    ]


def test_a_bounced_address_gets_nothing_more_but_is_escalated_on_its_day(replay):
    u2 = replay.units[2]
    assert kinds(replay, u2.leader_email) == [(D(2020, 11, 23), "leader-invitation")]
    escalations = [(d, m) for d, k, m in replay.got[u2.superior_email] if k == "escalation"]
    assert [d for d, m in escalations if m_unit(m, u2)] == [D(2020, 12, 22)]
    (msg,) = [m for _, m in escalations if m_unit(m, u2)]
    text = body(msg)
    assert u2.leader_email in text and "User unknown" in text
    assert koord(u2) in msg["To"]


def test_a_corrected_address_gets_the_invitation_again(replay):
    u3 = replay.units[3]
    assert kinds(replay, u3.leader_email) == [(D(2020, 11, 23), "leader-invitation")]
    assert kinds(replay, replay.new_address) == [
        (D(2020, 11, 30), "leader-invitation"),  # the step that bounced, again, to the new address
        (D(2020, 12, 2), "leader-reminder-before"),
        (D(2020, 12, 3), "leader-receipt"),
    ]


def test_no_reminder_goes_into_an_absence(replay):
    """U4 is away until 10 Dec: the reminders of 2 and 9 Dec wait; one comes on 10 Dec."""
    u4 = replay.units[4]
    assert kinds(replay, u4.leader_email) == [
        (D(2020, 11, 23), "leader-invitation"),
        (D(2020, 12, 10), "leader-reminder-before"),
        (D(2020, 12, 11), "leader-receipt"),
    ]


def test_special_challenges_tell_the_leader_what_the_letter_asks_and_the_superior_once_per_change(replay):
    u5 = replay.units[5]
    receipts = [(d, m) for d, k, m in replay.got[u5.leader_email] if k == "leader-receipt"]
    assert [d for d, _ in receipts] == [D(2020, 12, 1), D(2020, 12, 8), D(2020, 12, 9)]
    first_receipt = body(receipts[0][1])
    assert "Bedriftshelse" in first_receipt or "occupational health" in first_receipt
    assert "need not do anything" not in first_receipt and "trenger ikke gjøre noe" not in first_receipt
    notices = [
        (d, m) for d, k, m in replay.got[u5.superior_email] if k == "challenges-notice" and m_unit(m, u5)
    ]
    assert [d for d, _ in notices] == [D(2020, 12, 1), D(2020, 12, 8)]  # the same answers on 9 Dec: none
    assert "Stort arbeidspress" in body(notices[0][1])
    coordinator = [d for d, k, m in replay.got[koord(u5)] if k == "challenges-notice" and m_unit(m, u5)]
    assert coordinator == [D(2020, 12, 1), D(2020, 12, 8)]


def test_help_asked_for_reaches_whoever_was_asked(replay):
    u6 = replay.units[6]
    to_bht = [(d, m) for d, k, m in replay.got["bht@example.test"] if k == "help-notice"]
    assert [d for d, _ in to_bht] == [D(2020, 12, 2)]
    assert "konflikt" in body(to_bht[0][1]) and u6.leader_email in body(to_bht[0][1])
    to_coordinator = [d for d, k, m in replay.got[koord(u6)] if k == "help-notice" and m_unit(m, u6)]
    assert to_coordinator == [D(2020, 12, 2)]
    assert not [d for d, k, m in replay.got[u6.superior_email] if k == "challenges-notice" and m_unit(m, u6)]


def test_the_silent_unit_is_reminded_then_escalated_in_the_institutions_language(replay):
    u7 = replay.units[7]
    assert kinds(replay, u7.leader_email) == [
        (D(2020, 11, 23), "leader-invitation"),
        (D(2020, 12, 2), "leader-reminder-before"),
        (D(2020, 12, 9), "leader-reminder-before"),
        (D(2020, 12, 14), "leader-reminder-before"),
        (D(2020, 12, 17), "leader-reminder-after"),
    ]
    (msg,) = [m for d, k, m in replay.got[u7.superior_email] if k == "escalation" and m_unit(m, u7)]
    assert "dere" in body(msg)


def test_the_unfixed_form_is_escalated_as_received_with_errors_listing_the_correction(replay):
    u1 = replay.units[1]
    (msg,) = [m for d, k, m in replay.got[u1.superior_email] if k == "escalation" and m_unit(m, u1)]
    text = body(msg)
    assert not any(w in text for w in NOT_RECEIVED), text
    assert "03.12" in text or "3. desember" in text
    assert "retting" in text.lower() or "korrigering" in text.lower() or "rett" in text.lower()


def test_an_english_leaders_escalation_is_in_the_institutions_language(replay):
    u2 = replay.units[2]  # an English-speaking leader; the dean and coordinator read Norwegian
    assert u2.language == "en"
    (msg,) = [m for d, k, m in replay.got[u2.superior_email] if k == "escalation" and m_unit(m, u2)]
    assert "Hello" not in body(msg) and "dere" in body(msg)


def test_no_leader_whose_form_is_stored_is_told_it_was_not_received(replay):
    """Once a unit's form (with mistakes or not) is in the store, no mail to its leader says it
    was not received: across every unit of the campaign."""
    for unit in replay.units:
        address = replay.new_address if unit is replay.units[3] else unit.leader_email
        since = replay.first_form.get(unit.code)
        for day, kind, msg in replay.got[address]:
            if since is not None and day >= since:
                assert not any(w in body(msg) for w in NOT_RECEIVED), (unit.code, day, kind)


MONDAYS = [
    D(2020, 11, 30),  # none beside the invitations: five working days after them (first_digest_day)
    D(2020, 12, 7),
    D(2020, 12, 14),
    D(2020, 12, 21),
]


def test_every_superior_coordinator_hr_and_bht_got_exactly_these_mails(replay):
    """Beyond the leaders: who heard what, and when. Superiors: escalations and the notices of
    special challenges; coordinators: their weekly digest, help asked of them, notices and
    escalations; HR: the weekly digest; Bedriftshelsetjenesten: the help asked of it."""
    u = replay.units  # faculties: 0, 3, 6 IE; 1, 4, 7 NV; 2, 5 HF
    digests = [(d, "coordinator-digest") for d in MONDAYS]
    expected = {
        "dekan-ie@example.test": [],
        "dekan-nv@example.test": [(D(2020, 12, 22), "escalation"), (D(2020, 12, 22), "escalation")],
        "dekan-hf@example.test": [
            (D(2020, 12, 1), "challenges-notice"),
            (D(2020, 12, 8), "challenges-notice"),
            (D(2020, 12, 22), "escalation"),
        ],
        "koord-ie@example.test": sorted([*digests, (D(2020, 12, 2), "help-notice")]),
        "koord-nv@example.test": sorted(
            [*digests, (D(2020, 12, 22), "escalation"), (D(2020, 12, 22), "escalation")]
        ),
        "koord-hf@example.test": sorted(
            [
                *digests,
                (D(2020, 12, 1), "challenges-notice"),
                (D(2020, 12, 8), "challenges-notice"),
                (D(2020, 12, 22), "escalation"),
            ]
        ),
        "hr@example.test": [(d, "hr-digest") for d in MONDAYS],
        "bht@example.test": [(D(2020, 12, 2), "help-notice")],
    }
    for address, mails in expected.items():
        assert sorted((d, k) for d, k, _ in replay.got[address]) == mails, address
    escalated = {m["Subject"] for d, k, m in replay.got["dekan-nv@example.test"] if k == "escalation"}
    assert all(any(x.code in s for s in escalated) for x in (u[1], u[7]))


def test_nobody_got_anything_twice(replay):
    for address, mails in replay.got.items():
        ids = [m["Message-ID"] for _, _, m in mails]
        assert len(ids) == len(set(ids)), address


# -- every surface agrees --------------------------------------------------------------------


def test_digest_workbook_web_and_status_agree_on_every_units_state(replay):
    r = replay
    r.app.clock.set(at(END, 12))  # type: ignore[attr-defined]
    status = json.loads(r.p.cli("--as-of", "2020-12-23T12:00", "status", "--units", "--json").output)
    by_status = {row["code"]: row["state"] for row in status}
    ops = Operations(r.app)
    states = {s.code: s.stage.value for s in ops.states(include_inactive=False)}
    assert by_status == states
    assert by_status[r.units[1].code] == "needs-correction"
    assert by_status[r.units[2].code] == "address-failing"
    assert by_status[r.units[7].code] == "invited"
    assert {by_status[r.units[i].code] for i in (0, 3, 4, 5, 6)} == {"valid"}

    path, _ = ops.compile(r.p.dir / "book.xlsx")
    sheet = openpyxl.load_workbook(path, read_only=True)["Mangler"]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    missing = {row[0]: row[header.index("Status")] for row in rows[1:] if row[0]}
    assert set(missing) == {c for c, s in states.items() if s != "valid"}
    assert missing[r.units[1].code] == "må rettes"
    assert missing[r.units[2].code] == "adresse virker ikke"

    hr = WebUser("hr", "hr", None, "x")
    page = Views(r.app).dashboard(hr, "nb")
    web = {m.code: m.state for m in page.missing}
    assert set(web) == set(missing)

    # the last weekly digests to the coordinators (Mon 21 Dec) group the units by the same states
    sections: dict[str, set[str]] = defaultdict(set)
    for faculty in ("ie", "nv", "hf"):
        digest = [m for d, k, m in r.got[f"koord-{faculty}@example.test"] if k == "coordinator-digest"][-1]
        for heading, found in digest_sections(body(digest)).items():
            sections[heading] |= found
    assert sections["SKJEMA MOTTATT, MÅ RETTES"] == {c for c, s in states.items() if s == "needs-correction"}
    assert sections["E-POSTADRESSER SOM IKKE VIRKER"] == {
        c for c, s in states.items() if s == "address-failing"
    }
    assert sections["ENHETER SOM IKKE HAR SENDT SKJEMA"] == {
        c for c, s in states.items() if s in ("invited", "not-invited", "away", "address-failing")
    }
    assert sections["LEDERE SOM ER BORTE"] == set()
    # HR's names only the units someone must act on: the form to correct since 3 Dec and the
    # failing address (the silent unit's escalation comes on 22 Dec, the day after)
    hr = [m for d, k, m in r.got["hr@example.test"] if k == "hr-digest"][-1]
    acting = digest_sections(body(hr))["MÅ FØLGES OPP"]
    assert acting == {r.units[1].code, r.units[2].code}
    assert set(re.findall(r"\b[A-Z]{2}-U\d{3}\b", body(hr))) == acting


def digest_sections(text: str) -> dict[str, set[str]]:
    """The unit codes listed under each capitalised heading of a plain-text digest."""
    out: dict[str, set[str]] = {}
    heading = ""
    for line in text.splitlines():
        found = re.match(r"^([A-ZÆØÅ ,.-]+) \(\d+\)$", line)
        if found:
            heading = found.group(1)
            out[heading] = set()
        elif heading and (code := re.match(r"^  ([A-Z]{2}-U\d{3}) ", line)):
            out[heading].add(code.group(1))
    return out
