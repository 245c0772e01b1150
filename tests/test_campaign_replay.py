"""A whole campaign replayed with a clock, against the real SMTP relay and Dovecot.

Spring 2021: it opens Monday 15 March, the deadline is Wednesday 7 April. Summer time begins on
Sunday 28 March, and Easter (1, 2 and 5 April) falls before the deadline, so the reminder two
days before it (Easter Monday) moves back to Wednesday 31 March, where it meets the seven-day
one. The runner's cycle runs at 08:00 and 09:00 every day; leaders reply on various days; the
service is down for three days around one reminder. The campaign closes on Monday 19 April:
that day HR gets the final summary instead of a digest, and a form that comes the day after is
answered, and nothing else goes. HVO (an observer) gets the weekly figures.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from harness.filling import answers_with_mistakes, fill, shipped_form, valid_answers
from projects import mail_project
from test_poll import reply

from service.app.operations import Operations
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.poll import StopFlag

pytestmark = pytest.mark.servers
OSLO = ZoneInfo("Europe/Oslo")
FORM = shipped_form()
D = dt.date
HVO = "hvo@example.test"


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=OSLO)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


KINDS = (
    ("Påminnelse:", "reminder"),
    ("Reminder:", "reminder"),
    ("vi mangler skjemaet", "reminder-after"),
    ("we have not received", "reminder-after"),
    ("Kvittering:", "receipt"),
    ("Receipt:", "receipt"),
    ("må rettes", "correction"),
    ("Please correct", "correction"),
    ("Ukesoversikt i tall", "observer-digest"),
    ("Ukesoversikt", "digest"),
    ("Weekly summary", "digest"),
    ("Skjema mangler", "escalation"),
    ("Form missing", "escalation"),
    ("innsamlingen ble avsluttet", "after-closing"),
    ("after the collection closed", "after-closing"),
    ("Sluttoppsummering", "final-summary"),
    ("Final summary", "final-summary"),
    ("Weekly figures", "observer-digest"),
    ("– skjema for", "invitation"),
    ("– form for", "invitation"),
)


def kind_of(msg) -> str:
    """What a mail is, by its subject (the templates' wording)."""
    return next((kind for word, kind in KINDS if word in msg["Subject"]), msg["Subject"])


@pytest.fixture(scope="module")
def replay(mail_world, tmp_path_factory):
    """Run the spring 2021 campaign day by day; return what every mailbox received, and when."""
    p = mail_project(tmp_path_factory.mktemp("replay"), mail_world, 9)
    units = p.units  # IE-U000, NV-U001, HF-U002 (en), IE-U003, …
    coordinators = [f"koord-{f}@example.test" for f in ("ie", "nv", "hf")]
    mail_world.add_users([u.superior_email for u in units] + coordinators + ["hr@example.test", HVO])
    text = (
        p.config.read_text()
        .replace('opens = "2020-11-23"', 'opens = "2021-03-15"')
        .replace('deadline = "2020-12-16"', 'deadline = "2021-04-07"\ncloses = "2021-04-19"')
    )
    p.config.write_text(
        text + '\n[schedule]\nsend_hour = 9\ndigest_weekday = "monday"\ndigest_hour = 8\n'
        "reminder_days_before = [14, 7, 2]\nescalation_working_days = 3\n"
        f'\n[[observers]]\nname = "Hovedverneombudet"\nemail = "{HVO}"\n'
    )
    clock = FixedClock(at(D(2021, 3, 15), 8))
    app = App(config_mod.load(p.config, p.env), clock)
    ops = Operations(app)
    # who replies when (before that day's 09:00 cycle), and with what
    replies = {
        units[0].code: [(D(2021, 3, 17), "valid")],  # early
        units[1].code: [(D(2021, 3, 25), "mistakes"), (D(2021, 3, 26), "valid")],
        units[2].code: [(D(2021, 4, 6), "valid")],  # after two reminders
        units[3].code: [(D(2021, 4, 9), "valid")],  # after the deadline
        units[7].code: [(D(2021, 4, 20), "valid")],  # after the campaign closed
    }
    down = {D(2021, 3, 23), D(2021, 3, 24), D(2021, 3, 25)}  # the 14-day reminder day
    received: dict[str, list[tuple[dt.date, str]]] = defaultdict(list)
    # coordinators' and HR's mailboxes are shared with other tests: count from now
    shared = [f"koord-{f}@example.test" for f in ("ie", "nv", "hf")] + ["hr@example.test", HVO]
    seen: dict[str, int] = defaultdict(int, {a: len(mail_world.messages(a)) for a in shared})
    day = D(2021, 3, 15)
    while day <= D(2021, 4, 21):
        for hour in (8, 9):
            for code, plan in replies.items():
                for when, what in plan:
                    if when == day and hour == 9:
                        unit = next(u for u in units if u.code == code)
                        original = parse(mail_world.messages(unit.leader_email)[0])
                        (att,) = list(original.iter_attachments())
                        answers = valid_answers(1) if what == "valid" else answers_with_mistakes(1)
                        data = fill(att.get_content(), FORM, answers, unit.language)
                        mail_world.deliver(reply(unit, original, (att.get_filename(), data)), p.service)
            clock.set(at(day, hour))
            if day not in down:
                ops.cycle(StopFlag())
            for address in (
                {u.leader_email for u in units}
                | {u.superior_email for u in units}
                | {f"koord-{f}@example.test" for f in ("ie", "nv", "hf")}
                | {"hr@example.test", HVO}
            ):
                got = mail_world.messages(address)
                for raw in got[seen[address] :]:
                    received[address].append((day, kind_of(parse(raw)), parse(raw)))
                seen[address] = len(got)
        day += dt.timedelta(days=1)
    return p, units, received


def kinds(received, address):
    return [(d, k) for d, k, _ in received[address]]


def test_non_submitters_get_exactly_the_reminders_on_working_days(replay):
    """A unit that never replies: invitation, reminders (the missed 14-day one once, on return;
    the 7-day one before Easter, merged with the 2-day one), the after-deadline reminder on the
    first working day after the deadline, then nothing more to the leader."""
    _, units, received = replay
    silent = units[8]
    assert kinds(received, silent.leader_email) == [
        (D(2021, 3, 15), "invitation"),
        (D(2021, 3, 26), "reminder"),  # due 24 March while down; sent once when back
        (D(2021, 3, 31), "reminder"),  # 7 days before; the 2-day one (Easter Monday) moved here
        (D(2021, 4, 8), "reminder-after"),  # Thursday after the deadline
    ]


def test_mails_go_out_at_the_local_send_hour_across_summer_time(replay):
    """09:00 in Oslo: 08:00 UTC before 28 March, 07:00 UTC after."""
    _, units, received = replay
    hours = {d: m["Date"].datetime.astimezone(dt.UTC).hour for d, k, m in received[units[8].leader_email]}
    assert hours[D(2021, 3, 15)] == 8 and hours[D(2021, 3, 31)] == 7


def test_no_submitter_is_reminded_after_their_valid_form(replay):
    """Each replying unit gets what was due until its valid form, then only its receipt; a form
    with mistakes does not stop the reminders, and the reply sent while the service was down is
    answered when it is back, before any reminder."""
    _, units, received = replay
    invited, missed, before = (
        (D(2021, 3, 15), "invitation"),
        (D(2021, 3, 26), "reminder"),
        (D(2021, 3, 31), "reminder"),
    )
    assert kinds(received, units[0].leader_email) == [invited, (D(2021, 3, 17), "receipt")]
    assert kinds(received, units[1].leader_email) == [
        invited,
        (D(2021, 3, 26), "correction"),
        (D(2021, 3, 26), "receipt"),
    ]
    assert kinds(received, units[2].leader_email) == [invited, missed, before, (D(2021, 4, 6), "receipt")]
    assert kinds(received, units[3].leader_email) == [
        invited,
        missed,
        before,
        (D(2021, 4, 8), "reminder-after"),
        (D(2021, 4, 9), "receipt"),
    ]


def test_the_runner_writes_the_master_workbook_each_day(replay):
    """The cycle compiles data/compiled/<campaign>-nightly.xlsx once a day, with every unit."""
    import openpyxl

    p, units, _ = replay
    book = openpyxl.load_workbook(p.dir / "data" / "compiled" / "aml-2020-nightly.xlsx")
    codes = {row[0] for row in book["Svar"].iter_rows(min_row=2, values_only=True) if row[0]}
    assert codes == {u.code for u in units}


def test_escalation_reaches_the_superior_and_the_coordinator(replay):
    """Three working days after the after-deadline reminder: the superior leader and the faculty
    coordinator get the escalation, once."""
    _, units, received = replay
    silent = units[8]
    coordinator = f"koord-{silent.faculty.lower()}@example.test"
    for address in (silent.superior_email, coordinator):
        escalations = [
            (d, m) for d, k, m in received[address] if silent.name in m["Subject"] and k == "escalation"
        ]
        assert [d for d, _ in escalations] == [D(2021, 4, 13)], address
        assert silent.verneombud_email in escalations[0][1]["Cc"]


def test_each_coordinator_gets_one_digest_a_week_with_their_faculty_only(replay):
    """Mondays at 08:00 (Tuesday after Easter Monday): one digest per coordinator per week, with
    their faculty's numbers only; none on the opening day, beside the invitations (the first is
    five working days after them, Monday 22 March), and none once the campaign has closed
    (Monday 19 April)."""
    _, units, received = replay
    mondays = [D(2021, 3, 22) + dt.timedelta(weeks=n) for n in range(4)]
    mondays[2] = D(2021, 4, 6)  # Easter Monday is a public holiday: digests go on working days
    valid_on = {
        units[0].code: D(2021, 3, 17),
        units[1].code: D(2021, 3, 26),
        units[2].code: D(2021, 4, 6),
        units[3].code: D(2021, 4, 9),
    }
    for faculty in ("IE", "NV", "HF"):
        digests = [(d, m) for d, k, m in received[f"koord-{faculty.lower()}@example.test"] if k == "digest"]
        assert [d for d, _ in digests] == mondays, faculty
        mine = [u for u in units if u.faculty == faculty]
        others = [u for u in units if u.faculty != faculty]
        for d, m in digests:
            valid = sum(1 for u in mine if u.code in valid_on and valid_on[u.code] < d)
            assert f"Ukesoversikt {faculty}: {valid} av {len(mine)} enheter" in m["Subject"], d
            text = m.get_body(("plain",)).get_content()
            assert not any(u.code in text or u.name in text for u in others), (faculty, d)
    hr = [(d, m) for d, k, m in received["hr@example.test"] if k == "digest"]
    assert [d for d, _ in hr] == mondays
    assert "4 av 9 enheter" in hr[-1][1]["Subject"]


def test_hr_gets_the_final_summary_once_on_the_closing_day_with_the_workbook(replay):
    """Monday 19 April, the closing day, at the send hour: the final summary with the master
    workbook, once; no digest that day or after."""
    _, _, received = replay
    finals = [(d, m) for d, k, m in received["hr@example.test"] if k == "final-summary"]
    assert [d for d, _ in finals] == [D(2021, 4, 19)]
    final = finals[0][1]
    assert final["Date"].datetime.astimezone(OSLO).hour == 9
    assert [a.get_filename() for a in final.iter_attachments()] == ["aml-2020-20210419.xlsx"]
    assert "4 av 9 enheter leverte" in final["Subject"]
    assert not [d for d, k, _ in received["hr@example.test"] if k == "digest" and d >= D(2021, 4, 19)]


def test_after_closing_nothing_goes_but_the_answer_to_a_late_form(replay):
    """From 19 April: no reminder, escalation, digest or notice to anyone; the leader whose form
    came on 20 April gets the after-closing answer, and its form is kept."""
    p, units, received = replay
    late = units[7]
    assert kinds(received, late.leader_email)[-2:] == [
        (D(2021, 4, 8), "reminder-after"),
        (D(2021, 4, 20), "after-closing"),
    ]
    for address, mails in received.items():
        after = [(d, k) for d, k, _ in mails if d >= D(2021, 4, 19)]
        expected = {
            "hr@example.test": [(D(2021, 4, 19), "final-summary")],
            late.leader_email: [(D(2021, 4, 20), "after-closing")],
        }.get(address, [])
        assert after == expected, address
    assert p.query(
        f"select count(*) from submissions s join units u on u.id = s.unit_id where u.code = '{late.code}'"
    ) == [(1,)]


def test_the_observer_gets_weekly_figures_with_no_names(replay):
    """HVO: the same Mondays as the digests, numbers only: no unit, leader, verneombud or
    coordinator by name or address."""
    _, units, received = replay
    got = [(d, m) for d, k, m in received[HVO]]
    assert [d for d, _ in got] == [D(2021, 3, 22), D(2021, 3, 29), D(2021, 4, 6), D(2021, 4, 12)]
    names = {f"Koordinator {f}" for f in ("IE", "NV", "HF")} | {
        f"koord-{f}@example.test" for f in ("ie", "nv", "hf")
    }
    for u in units:
        names |= {u.code, u.name, u.leader_name, u.leader_email, u.verneombud_name, u.verneombud_email}
        names |= {u.superior_email}
    for _, m in got:
        assert kind_of(m) == "observer-digest"
        text = m.get_body(("plain",)).get_content() + m.get_body(("html",)).get_content() + m["Subject"]
        assert not [n for n in names if n in text]
    assert "4 av 9 enheter har levert" in got[-1][1]["Subject"]
