"""The verneombud confirm by email: a campaign against the real relay and Dovecot, one scripted
verneombud per way of answering.

Autumn 2020 on a clock: opens Mon 23 Nov, deadline Wed 16 Dec; `run`'s cycle at 08:00 and 09:00
each day, replies delivered before a cycle. Every leader sends a valid form on Tue 1 Dec, and the
poll that registers it asks the unit's verneombud at once. Then:

  U0 (nb)  answers «Enig» on 2 Dec from Outlook, the whole request quoted below
  U1 (nb)  disagrees in two sentences on 3 Dec: the leader and the coordinator hear of it
  U2 (en)  answers "Agree, thanks!" above a Gmail-style quote on 2 Dec
  U3 (nb)  is away: an out-of-office reply on 2 Dec (back Mon 14 Dec); answers «Enig» on 14 Dec.
           The reminder due on 8 Dec never goes: they were away, then they answered.
  U4 (nb)  never answers: exactly one reminder, five working days after the request (Tue 8 Dec)
  U5 (en)  sends back a corrected form on 3 Dec: a new version from the verneombud, and the
           leader is asked to confirm it; the leader answers "Agree." on 4 Dec

Every person's mailbox is compared with the mails expected (by kind, from the outbox row behind
each Message-ID, and day); nobody gets anything twice, no machine gets anything, and
`status --units --json` agrees with the stored co-signature of each unit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from cosign_people import body, gmail, out_of_office, outlook, parse, with_form
from harness.filling import fill, shipped_form, valid_answers
from projects import mail_project
from test_poll import reply

from service.app.operations import Operations
from service.app.setup import Setup
from service.app.wiring import App
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.poll import StopFlag

pytestmark = pytest.mark.servers
OSLO = ZoneInfo("Europe/Oslo")
FORM = shipped_form()
D = dt.date
START, END = D(2020, 11, 23), D(2020, 12, 16)
DIGESTS = ("coordinator-digest", "hr-digest", "observer-digest")


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=OSLO)


@dataclasses.dataclass
class Replay:
    p: object
    app: App
    units: list
    got: dict[str, list[tuple[dt.date, str, EmailMessage]]]
    kinds: dict[str, str]  # Message-ID -> outbox kind


def latest(world, address: str, kind: str, kinds: dict[str, str]) -> EmailMessage:
    """The newest mail of ``kind`` in ``address``'s mailbox."""
    found = [m for m in (parse(r) for r in world.messages(address)) if kinds.get(m["Message-ID"]) == kind]
    assert found, f"no {kind} in {address}'s mailbox"
    return found[-1]


@pytest.fixture(scope="module")
def replay(mail_world, tmp_path_factory) -> Replay:
    p = mail_project(tmp_path_factory.mktemp("cosign"), mail_world, 6)
    # each verneombud a real mailbox of their own (the shared world's vo000… are nobody's)
    units = [
        dataclasses.replace(u, verneombud_name=name, verneombud_email=mail_world.new_user(f"vo{i}"))
        for i, (u, name) in enumerate(
            zip(
                p.units,
                ("Siri Løvås", "Ola Nordmann", "John Smith", "Kari Dahl", "Per Holm", "Mary Jones"),
                strict=True,
            )
        )
    ]
    p.units = units
    p.write_roster(units)
    p.config.write_text(
        p.config.read_text() + '\n[schedule]\nsend_hour = 9\ndigest_weekday = "monday"\ndigest_hour = 8\n'
        "reminder_days_before = [14, 7, 2]\nescalation_working_days = 3\n"
        '\n[cosign]\nmode = "ask"\nreminder_working_days = 5\n'
    )
    clock = FixedClock(at(START, 8))
    app = App(config_mod.load(p.config, p.env), clock)
    ops = Operations(app)
    Setup(app).init()
    Setup(app).import_roster()
    u = units
    vo = {x.code: (x.verneombud_name, x.verneombud_email) for x in units}
    people = {x.leader_email for x in units} | {x.verneombud_email for x in units}
    people |= {x.superior_email for x in units} | {f"koord-{f}@example.test" for f in ("ie", "nv", "hf")}
    people |= {"hr@example.test", p.service}
    got: dict[str, list[tuple[dt.date, str, EmailMessage]]] = defaultdict(list)
    seen: dict[str, int] = defaultdict(int, {a: len(mail_world.messages(a)) for a in people})
    kinds: dict[str, str] = {}

    def request(unit, to: str | None = None) -> EmailMessage:
        return latest(mail_world, to or unit.verneombud_email, "verneombud-request", kinds)

    def send(raw: bytes) -> None:
        mail_world.deliver(raw, p.service)

    # what each scripted person does, (day, hour before which it arrives) -> what
    def leaders_send() -> None:
        for unit in units:
            invitation = latest(mail_world, unit.leader_email, "leader-invitation", kinds)
            (att,) = list(invitation.iter_attachments())
            data = fill(att.get_content(), FORM, valid_answers(1), unit.language)
            send(reply(unit, invitation, (att.get_filename(), data)))

    def u5_corrects() -> None:
        req = request(u[5])
        (att,) = list(req.iter_attachments())
        data = fill(att.get_content(), FORM, valid_answers(5), u[5].language)
        words = "We agreed on a different number of measures; the corrected form is attached."
        send(with_form(req, vo[u[5].code], words, (att.get_filename(), data)))

    script = {
        (D(2020, 12, 1), 8): [leaders_send],
        (D(2020, 12, 2), 8): [
            lambda: send(outlook(request(u[0]), vo[u[0].code], "Enig")),
            lambda: send(gmail(request(u[2]), vo[u[2].code], "Agree, thanks!\n\nJohn")),
            lambda: send(
                out_of_office(request(u[3]), vo[u[3].code], "Jeg er på kurs og er tilbake 14. desember 2020.")
            ),
        ],
        (D(2020, 12, 3), 8): [
            lambda: send(
                outlook(
                    request(u[1]),
                    vo[u[1].code],
                    "Jeg er ikke enig i at tiltaksplanen er ferdig. Vi har bare diskutert to av tiltakene.",
                )
            ),
            u5_corrects,
        ],
        (D(2020, 12, 4), 8): [
            lambda: send(
                outlook(request(u[5], u[5].leader_email), (u[5].leader_name, u[5].leader_email), "Agree.")
            )
        ],
        (D(2020, 12, 14), 8): [lambda: send(outlook(request(u[3]), vo[u[3].code], "Enig, takk."))],
    }
    day = START
    while day <= END:
        for hour in (8, 9):
            clock.set(at(day, hour))
            for act in script.get((day, hour), []):
                act()
            ops.cycle(StopFlag())
            kinds.update(dict(p.query("select message_id, kind from outbox")))
            for address in people:
                raws = mail_world.messages(address)
                for raw in raws[seen[address] :]:
                    msg = parse(raw)
                    got[address].append((day, kinds.get(msg["Message-ID"], "?"), msg))
                seen[address] = len(raws)
        day += dt.timedelta(days=1)
    return Replay(p, app, units, got, kinds)


def mails(r: Replay, address: str) -> list[tuple[dt.date, str]]:
    return [(d, k) for d, k, _ in r.got[address] if k not in DIGESTS]


def the(r: Replay, address: str, kind: str) -> EmailMessage:
    (msg,) = [m for _, k, m in r.got[address] if k == kind]
    return msg


INVITED, FORMS = D(2020, 11, 23), D(2020, 12, 1)


def test_outlook_enig_with_the_request_quoted_below_is_confirmed_and_thanked(replay):
    u0 = replay.units[0]
    assert mails(replay, u0.verneombud_email) == [
        (INVITED, "leader-invitation"),  # copied: the form is filled in i samråd med verneombud
        (FORMS, "verneombud-request"),
        (D(2020, 12, 2), "verneombud-ack"),
    ]
    request = the(replay, u0.verneombud_email, "verneombud-request")
    assert request["Auto-Submitted"] is None and "[ref " in request["Subject"]
    # the leader's own file (the invitation's form, filled in), not a rebuilt one
    (sent,) = [a.get_filename() for a in the(replay, u0.leader_email, "leader-invitation").iter_attachments()]
    assert [a.get_filename() for a in request.iter_attachments()] == [sent]
    ack = body(the(replay, u0.verneombud_email, "verneombud-ack"))
    assert "Vi har registrert at du bekrefter skjemaet" in ack
    assert mails(replay, u0.leader_email) == [(INVITED, "leader-invitation"), (FORMS, "leader-receipt")]
    receipt = body(the(replay, u0.leader_email, "leader-receipt"))
    assert "Vi sender derfor svarene til verneombudet, Siri Løvås," in receipt


def test_agree_thanks_above_a_gmail_quote_is_confirmed_in_english(replay):
    u2 = replay.units[2]
    assert u2.language == "en"
    assert mails(replay, u2.verneombud_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "verneombud-request"),
        (D(2020, 12, 2), "verneombud-ack"),
    ]
    assert "We have registered that you confirm the form" in body(
        the(replay, u2.verneombud_email, "verneombud-ack")
    )


def test_a_disagreement_reaches_the_leader_kindly_and_the_coordinator_once_verbatim(replay):
    u1 = replay.units[1]
    words = "Jeg er ikke enig i at tiltaksplanen er ferdig. Vi har bare diskutert to av tiltakene."
    assert mails(replay, u1.verneombud_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "verneombud-request"),
        (D(2020, 12, 3), "verneombud-ack"),
    ]
    assert words in body(the(replay, u1.verneombud_email, "verneombud-ack"))
    assert mails(replay, u1.leader_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "leader-receipt"),
        (D(2020, 12, 3), "leader-cosign-comment"),
    ]
    to_leader = body(the(replay, u1.leader_email, "leader-cosign-comment"))
    assert words in to_leader and "Vi ber deg ta en prat med Ola Nordmann" in to_leader
    coordinator = f"koord-{u1.faculty.lower()}@example.test"
    notices = [(d, m) for d, k, m in replay.got[coordinator] if k == "coordinator-cosign-notice"]
    assert [d for d, _ in notices] == [D(2020, 12, 3)]
    text = body(notices[0][1])
    for fact in (words, u1.leader_email, u1.verneombud_email, u1.code):
        assert fact in text


def test_no_reminder_goes_while_the_verneombud_is_away_and_their_later_enig_counts(replay):
    u3 = replay.units[3]
    assert mails(replay, u3.verneombud_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "verneombud-request"),
        (D(2020, 12, 14), "verneombud-ack"),  # nothing answered the out-of-office reply
    ]


def test_a_verneombud_who_never_answers_gets_exactly_one_reminder(replay):
    u4 = replay.units[4]
    assert mails(replay, u4.verneombud_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "verneombud-request"),
        (D(2020, 12, 8), "verneombud-reminder"),  # five working days after Tue 1 Dec, at 09:00
    ]
    reminder = the(replay, u4.verneombud_email, "verneombud-reminder")
    request = the(replay, u4.verneombud_email, "verneombud-request")
    assert reminder["In-Reply-To"] == request["Message-ID"] and reminder["Cc"] is None
    assert "Dette er den eneste påminnelsen" in body(reminder)
    assert mails(replay, u4.leader_email) == [(INVITED, "leader-invitation"), (FORMS, "leader-receipt")]


def test_a_corrected_form_from_the_verneombud_is_for_the_leader_to_confirm(replay):
    u5 = replay.units[5]
    assert mails(replay, u5.verneombud_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "verneombud-request"),
        (D(2020, 12, 3), "leader-receipt"),  # their version is registered
    ]
    assert "This version came from the safety representative" in body(
        the(replay, u5.verneombud_email, "leader-receipt")
    )
    assert mails(replay, u5.leader_email) == [
        (INVITED, "leader-invitation"),
        (FORMS, "leader-receipt"),
        (D(2020, 12, 3), "verneombud-request"),  # the leader is asked about version 2
        (D(2020, 12, 4), "verneombud-ack"),
    ]
    asked = body(the(replay, u5.leader_email, "verneombud-request"))
    assert "Since this version came from the safety representative, we ask you, as the leader" in asked
    assert body(the(replay, u5.leader_email, "verneombud-ack")).startswith(f"Dear {u5.leader_name},")


def test_nobody_else_heard_of_it_and_nobody_got_anything_twice(replay):
    """The superiors and HR get nothing but their digests; each coordinator one notice at most;
    no Message-ID twice in any mailbox."""
    for unit in replay.units:
        assert mails(replay, unit.superior_email) == []
    assert mails(replay, "hr@example.test") == []
    for faculty in ("ie", "nv", "hf"):
        expected = [(D(2020, 12, 3), "coordinator-cosign-notice")] if faculty == "nv" else []
        assert mails(replay, f"koord-{faculty}@example.test") == expected
    for address, got in replay.got.items():
        ids = [m["Message-ID"] for _, _, m in got]
        assert len(ids) == len(set(ids)), address


def test_no_machine_got_anything(replay):
    """The out-of-office reply was recorded and never answered: nothing in the outbox answers an
    inbound message of a machine's kind, and nothing went to the service's own address."""
    machine_rows = replay.p.query(
        "select count(*) from outbox o join inbound i on o.dedupe_key like '%inbound' || i.id || ':%' "
        "where i.kind in ('auto-reply', 'bounce', 'delay', 'report', 'list', 'own')"
    )
    assert machine_rows == [(0,)]
    auto = replay.p.query("select outcome from inbound where kind = 'auto-reply'")
    assert auto == [("auto-reply-noted",)]
    assert mails(replay, replay.p.service) == []


def test_status_agrees_with_the_stored_co_signature_of_every_unit(replay):
    r = replay
    out = r.p.cli("--as-of", "2020-12-16T12:00", "status", "--units", "--json").output
    status = {row["code"]: row["cosign"] for row in json.loads(out)}
    u = r.units
    expected = {
        u[0].code: ("confirmed", 1, "Enig"),
        u[1].code: (
            "disputed",
            1,
            "Jeg er ikke enig i at tiltaksplanen er ferdig. Vi har bare diskutert to av tiltakene.",
        ),
        u[2].code: ("confirmed", 1, "Agree, thanks!"),  # their name, a signature, cut
        u[3].code: ("confirmed", 1, "Enig, takk."),
        u[4].code: ("pending", 1, None),
        u[5].code: ("confirmed", 2, "Agree."),
    }
    assert {code: (s["stage"], s["version"], s["words"]) for code, s in status.items()} == expected
    for unit in u:
        (stored,) = r.app.store.cosign_requests(r.app.campaign_id, unit.code)[-1:]
        s = status[unit.code]
        assert (s["stage"], s["version"], s["asked_to"], s["words"]) == (
            stored.reading or "pending",
            stored.version,
            stored.asked_to,
            stored.words,
        )
        assert (s["reminded_at"] is None) is (stored.reminded_at is None)
        assert (s["answered_by"] or None) == stored.answered_by
    assert (
        status[u[5].code]["asked_to"] == u[5].leader_email
        and status[u[5].code]["answered_by"] == u[5].leader_email
    )
    assert status[u[4].code]["reminded_at"].startswith("2020-12-08T09:")
    assert status[u[3].code]["back_on"] is None  # back since 14 December
