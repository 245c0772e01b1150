"""The digests and the end of a campaign, read from a seeded store (no mail servers, a fixed clock).

The seed (harness.website): IE-U000 valid; IE-U003 valid, flagged (unsure about the work
environment, help from the coordinator, verneombud not involved); NV-U001 valid; HF-U002 a form
with two mistakes since 1 Dec; IE-U006 invited, reminded and escalated; HF-U005's address
bounces; NV-U007's leader is away; the rest not yet invited. Now is Tuesday 8 Dec 2020.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from harness.website import NOW, seed, web_project

from service.app.wiring import App
from service.cli.main import cli
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs import closing
from service.jobs.chase import chase_once
from service.jobs.digest import digests
from service.jobs.notices import notices
from service.mail.compose import Mailbox
from service.mail.letters import Reply
from service.models import NewMail

OBSERVERS = (
    'public_url = "https://skjema.example.test/"\n\n'
    '[[observers]]\nname = "Hovedverneombudet"\nemail = "hvo@example.test"\n\n'
    '[[observers]]\nname = "Tekna"\nemail = "tekna@example.test"\nlanguage = "en"\n'
)
CLOSED = dt.datetime(2021, 1, 13, 9, 30, tzinfo=dt.UTC)  # closing day (the default), after 09:00 Oslo


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[tuple[object, App]]:
    p = web_project(tmp_path_factory.mktemp("digests"), extra=OBSERVERS)
    seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    yield p, app
    app.close()


def reading(mail: NewMail) -> tuple[str, str, str]:
    """Its headers, plain text and HTML, as the reader gets them."""
    msg = email.message_from_bytes(mail.payload, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    headers = "\n".join(f"{k}: {v}" for k, v in msg.items())
    return headers, text, html


def section(text: str, heading: str) -> str:
    """The lines under a capitalised heading of a plain-text digest, up to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^[A-ZÆØÅ][A-ZÆØÅ ,.-]+", lines[i])), None
    )
    return "\n".join(lines[start + 1 : end])


def codes(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Z]{2}-U\d{3}\b", text))


def by_kind(mails: list[NewMail], kind: str) -> list[NewMail]:
    return [m for m in mails if m.kind == kind]


def test_the_hr_digest_lists_only_the_units_someone_must_act_on(seeded):
    """The escalated unit, the failing address and the form with mistakes open a week: each with
    its reason. Valid, away and not-yet-invited units are not named at all; the rest is in the
    workbook and on the web page, whose address is given."""
    _, app = seeded
    (hr,) = by_kind(digests(app.store, app.config, app.letters, NOW), "hr-digest")
    _, text, html = reading(hr)
    acting = section(text, "MÅ FØLGES OPP")
    assert codes(acting) == {"IE-U006", "HF-U005", "HF-U002"}
    assert codes(text) == {"IE-U006", "HF-U005", "HF-U002"}  # nobody else is named anywhere
    assert codes(html) == {"IE-U006", "HF-U005", "HF-U002"}
    assert "Eskalert til overordnet leder og koordinator 07.12.2020" in acting
    assert "Adressen virker ikke" in acting and "Rett den i enhetslisten" in acting
    assert "Skjema mottatt 01.12.2020, men 2 feil er fortsatt ikke rettet" in acting
    assert "3 e-poster venter dessuten på manuell vurdering" in text
    assert "https://skjema.example.test/" in text and "https://skjema.example.test/" in html
    # one line per faculty: delivered, to correct, without a form, flagged
    per_faculty = section(text, "PER FAKULTET")
    assert re.search(r"IE\s+[█░]{10}\s+66\s%  2 av 3 har levert", per_faculty)
    assert re.search(
        r"HF\s+[█░]{10}\s+0\s%  0 av 3 har levert\n\s+1 må rettes, 2 uten skjema, 0 med", per_faculty
    )


def test_the_web_line_is_left_out_without_a_public_url(tmp_path):
    p = web_project(tmp_path)
    seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    try:
        (hr,) = by_kind(digests(app.store, app.config, app.letters, NOW), "hr-digest")
    finally:
        app.close()
    _, text, html = reading(hr)
    assert "Nettsiden" not in text and "nettsiden" not in text and "http" not in text
    assert "Nettsiden" not in html and "http" not in html.split("<body", 1)[1]
    assert "Arbeidsboken har alle enhetene" in text


def test_flagged_answers_come_most_serious_first_with_the_units_own_words(seeded):
    """IE's coordinators see IE-U003's answers: unsure about the work environment (with the
    unit's description), then the help it asks for, then the verneombud not involved."""
    _, app = seeded
    (ie,) = [
        m
        for m in by_kind(digests(app.store, app.config, app.letters, NOW), "coordinator-digest")
        if ":IE:" in m.dedupe_key
    ]
    _, text, html = reading(ie)
    flags = section(text, "SVAR SOM BØR FØLGES OPP")
    order = [
        flags.index(w) for w in ("fullt forsvarlig?", "hjelp i det videre arbeidet?", "Verneombudet var ikke")
    ]
    assert order == sorted(order), flags
    assert "«Høy arbeidsbelastning.»" in flags
    assert flags.index("Høy arbeidsbelastning") < flags.index("hjelp i det videre arbeidet?")
    assert "Høy arbeidsbelastning." in html
    # the coordinators' digest stays complete: every IE unit is there, and no other faculty's
    assert codes(text) == {"IE-U000", "IE-U003", "IE-U006"}


def test_the_observers_digest_names_no_unit_and_no_person(seeded):
    """One per language, to the observers only; per-faculty numbers and flags counted by kind;
    no leader, verneombud, superior or coordinator by name or address, and no unit."""
    p, app = seeded
    mails = by_kind(digests(app.store, app.config, app.letters, NOW), "observer-digest")
    assert sorted(m.recipients for m in mails) == [("hvo@example.test",), ("tekna@example.test",)]
    people = {c.name for c in app.config.coordinators} | {c.email for c in app.config.coordinators}
    for u in p.units:
        people |= {u.leader_name, u.leader_email, u.verneombud_name, u.verneombud_email, u.superior_email}
        people |= {u.code, u.name}
    people |= {"Verneombud Ås 0"}  # the verneombud's name as the form holds it
    for mail in mails:
        headers, text, html = reading(mail)
        for said in (headers, text, html, mail.subject):
            found = [x for x in people if x and x in said]
            assert not found, (mail.dedupe_key, found)
        assert not codes(text) and not codes(html)
    nb = next(m for m in mails if m.recipients == ("hvo@example.test",))
    _, text, _ = reading(nb)
    assert (
        "4 av 9 enheter har levert gyldig skjema" in text or "3 av 9 enheter har levert gyldig skjema" in text
    )
    assert re.search(r"fullt forsvarlig: 1 enhet", text)
    en = next(m for m in mails if m.recipients == ("tekna@example.test",))
    assert en.subject.startswith("Weekly figures:")


# -- the end of the campaign -----------------------------------------------------------------------


@pytest.fixture
def fresh(tmp_path) -> Iterator[App]:
    p = web_project(tmp_path)
    seed(p)
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    yield app
    app.close()


def test_nothing_is_due_once_the_campaign_is_closed(fresh):
    """On the closing day, at the send hour: no reminder, no escalation, no digest, no notice."""
    app = fresh
    before = chase_once(
        app.store, app.config, app.letters, dt.datetime(2021, 1, 12, 9, 30, tzinfo=dt.UTC), dry_run=True
    )
    assert before.due and not before.closed  # the units without a form were still due something
    after = chase_once(app.store, app.config, app.letters, CLOSED)
    assert after.closed and after.due == [] and after.queued == 0
    assert digests(app.store, app.config, app.letters, CLOSED) == []
    assert digests(app.store, app.config, app.letters, CLOSED, include_sent=True)  # a preview still shows
    unit = app.store.unit(app.campaign_id, "IE-U003")
    answers = {"fullt_forsvarlig": "no", "forsvarlig_beskrivelse": "x", "hjelp_onsket": ["koordinator"]}
    told = notices(
        app.config,
        app.letters.form,
        app.letters,
        unit,
        answers=answers,
        before=None,
        received_at=CLOSED,
        now=CLOSED,
    )
    assert told == []
    open_day = dt.datetime(2020, 12, 8, 9, tzinfo=dt.UTC)
    assert notices(
        app.config,
        app.letters.form,
        app.letters,
        unit,
        answers=answers,
        before=None,
        received_at=open_day,
        now=open_day,
    )


def test_each_digest_goes_once_a_week(fresh):
    """Queued digests are not built again in the same ISO week; next week's are."""
    app = fresh
    first = digests(app.store, app.config, app.letters, NOW)
    assert {m.kind for m in first} == {"coordinator-digest", "hr-digest"}
    app.store.queue(app.campaign_id, first, NOW)
    assert digests(app.store, app.config, app.letters, NOW + dt.timedelta(hours=2)) == []
    assert len(digests(app.store, app.config, app.letters, NOW + dt.timedelta(days=6))) == 4


def test_the_final_summary_is_due_once_from_the_closing_day(fresh):
    """Not before the closing day's send hour; then once; again only when asked, under a key of
    its own; and by hand not before the campaign is closed."""
    app = fresh
    store, cfg, letters = app.store, app.config, app.letters
    assert not closing.final_summary_due(store, cfg, dt.datetime(2021, 1, 12, 12, tzinfo=dt.UTC))
    assert not closing.final_summary_due(
        store, cfg, dt.datetime(2021, 1, 13, 7, 59, tzinfo=dt.UTC)
    )  # 08:59 Oslo
    assert closing.final_summary_due(store, cfg, CLOSED)
    with pytest.raises(closing.NotClosed, match="closes on 2021-01-13"):
        closing.require_closed(cfg, dt.datetime(2021, 1, 12, 12, tzinfo=dt.UTC))
    closing.require_closed(cfg, CLOSED)
    from service.mail.compose import Attachment

    book = [Attachment("aml-2020-20210113.xlsx", b"PK\x03\x04 not really")]
    mail = closing.final_summary(store, cfg, letters, CLOSED, book)
    assert mail is not None and mail.kind == "hr-final" and mail.dedupe_key == "aml-2020:final:hr"
    assert mail.recipients == ("hr@example.test",)
    store.queue(app.campaign_id, [mail], CLOSED)
    for later in (CLOSED + dt.timedelta(minutes=5), CLOSED + dt.timedelta(days=1)):
        assert not closing.final_summary_due(store, cfg, later)
    assert closing.final_summary(store, cfg, letters, CLOSED, book) is None
    again = closing.final_summary(store, cfg, letters, CLOSED, book, again=True)
    assert again is not None and again.dedupe_key == "aml-2020:final:hr@2"
    msg = email.message_from_bytes(mail.payload, policy=email.policy.default)
    assert [a.get_filename() for a in msg.iter_attachments()] == ["aml-2020-20210113.xlsx"]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ENHETER UTEN GYLDIG SKJEMA (6)" in text
    assert "HF-U005" in text and "IE-U003" not in text


def test_a_late_form_is_answered_and_kept(fresh):
    """After closing, a valid form's receipt and a faulty form's correction both become the
    after-closing answer to the person who sent it; before it they are what they were."""
    app = fresh
    unit = app.store.unit(app.campaign_id, "IE-U006")
    reply = Reply(Mailbox(unit.leader_email, unit.leader_name), "inbound99:IE-U006:receipt")
    submission = {
        "version": 1,
        "updated": False,
        "received_at": CLOSED,
        "sent_by": "",
        "summary": [],
        "flags": [],
        "challenges": [{"label": "Fullt forsvarlig?", "value": "Nei"}],
        "challenges_shared": True,
    }
    late = app.letters.receipt(unit, reply, submission, CLOSED)
    assert late.kind == "leader-after-closing" and late.recipients == (unit.leader_email,)
    _, text, _ = reading(late)
    assert "innsamlingen ble avsluttet onsdag 13. januar 2021" in text
    assert "ingen andre beskjed om dette automatisk" in text
    problems = [{"label": "Antall ansatte", "cell": "Skjema!C14", "message": "Skriv et helt tall."}]
    faulty = app.letters.correction(unit, reply, problems, received_at=CLOSED, attachment=None, now=CLOSED)
    assert faulty.kind == "leader-after-closing"
    assert "Skriv et helt tall." in reading(faulty)[1]
    assert app.letters.receipt(unit, reply, submission, NOW).kind == "leader-receipt"


def test_final_summary_by_hand_waits_for_the_closing(tmp_path):
    """`skjemapost final-summary` before campaign.closes says when it closes, and sends nothing."""
    from projects import new_project

    p = new_project(tmp_path, 3)
    p.setup()
    result = CliRunner().invoke(
        cli, ["--config", str(p.config), "--as-of", "2020-12-20T12:00", "final-summary"], env=p.env
    )
    assert result.exit_code == 2, result.output
    assert "closes on 2021-01-13 (campaign.closes)" in result.output
    assert p.query("select count(*) from outbox where kind = 'hr-final'") == [(0,)]


def test_a_digest_by_hand_after_closing_says_the_campaign_is_closed(tmp_path):
    """`skjemapost digest` once the campaign has closed sends nothing and says why (not that
    this week's went out), and where HR's final summary comes from."""
    from projects import new_project

    p = new_project(tmp_path, 3)
    p.setup()
    result = CliRunner().invoke(
        cli, ["--config", str(p.config), "--as-of", "2021-01-18T12:00", "digest"], env=p.env
    )
    assert result.exit_code == 0, result.output
    assert "the campaign closed on 2021-01-13 (campaign.closes)" in result.output
    assert "final-summary" in result.output and "gone out" not in result.output
    assert p.query("select count(*) from outbox where kind like '%digest'") == [(0,)]
