"""The co-signature wired in, offline: when a request is due (``jobs.cosign.due_request``, pure),
and what the inbox decides about an answer (``jobs.cosignreply``) and what it queues.

The decisions are taken like tests/test_decide.py takes them: a SQLite store, each message
archived, stored, decided by the real ``Processor`` and committed before the next; the requests
are asked by ``jobs.cosign.ask_once`` as `poll` asks them. Nothing connects anywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest
from cosign_people import body, gmail, only_quote, out_of_office, outlook, parse, with_form
from harness.filling import fill, shipped_form, valid_answers
from projects import Project, new_project
from test_poll import reply

from service.app.mailing import Mailing
from service.app.setup import Setup
from service.app.wiring import App
from service.campaign.cosign import CoSign, NotAsked
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.cosign import DueRequest, ask_once, due_request, remind_once, requests_due
from service.mail.parser import parse as parse_mail
from service.mail.parser import received_time
from service.models import Decision, MessageKind, Unit
from service.store.cosign import CosignCandidate, CosignRequest, CosignVersion

UTC = dt.UTC
FORM = shipped_form()
T0 = dt.datetime(2020, 12, 10, 13, 0, tzinfo=UTC)  # Thursday 10 December, 14:00 in Oslo

# ---- the rule: which valid version is asked about, and whom (pure) ------------------------------

UNIT = Unit(
    "IE-U000",
    "Institutt nr. 0",
    "IE",
    "Leder Ås 0",
    "leader000@example.test",
    "nb",
    "Verneombud 0",
    "vo000@example.test",
)
ANSWERS = {"antall_ansatte": 12, "fullt_forsvarlig": "yes"}


def version(
    n: int = 1, answers: dict[str, Any] | None = None, sender: str = UNIT.leader_email
) -> CosignVersion:
    return CosignVersion(
        UNIT.code,
        n,
        T0,
        sender,
        answers or dict(ANSWERS),
        "skjema.xlsx",
        "ab" * 32,
        "/raw/x.eml",
        "<leader@x>",
    )


def candidate(v: CosignVersion, earlier_answers: dict[str, Any] | None = None, **kw: Any) -> CosignCandidate:
    earlier = (
        CosignRequest(1, UNIT.code, v.version - 1, UNIT.verneombud_email, T0, "<req@x>")
        if earlier_answers is not None
        else None
    )
    return CosignCandidate(
        v, UNIT.verneombud_email, UNIT.leader_email, earlier, earlier_answers, "<invitation@x>", **kw
    )


def test_a_first_valid_form_is_asked_about_threaded_under_the_leaders_message():
    due = due_request(candidate(version()), UNIT)
    assert due == DueRequest(UNIT, version(), to_leader=False, updated=False, in_reply_to="<leader@x>")
    assert due.asked_to == "vo000@example.test"


def test_without_the_leaders_message_it_threads_under_our_invitation():
    due = due_request(candidate(dataclasses.replace(version(), message_id="")), UNIT)
    assert due is not None and due.in_reply_to == "<invitation@x>"


def test_a_newer_version_that_changes_the_answers_is_asked_about_again():
    changed = version(2, ANSWERS | {"antall_ansatte": 13})
    due = due_request(candidate(changed, earlier_answers=dict(ANSWERS)), UNIT)
    assert due is not None and due.updated and due.version.version == 2


def test_the_same_answers_again_are_not_asked_about_again():
    assert due_request(candidate(version(2), earlier_answers=dict(ANSWERS)), UNIT) is None


def test_a_version_the_verneombud_sent_is_for_the_leader_to_confirm():
    from_vo = version(2, ANSWERS | {"antall_ansatte": 14}, sender="VO000@example.test")
    due = due_request(candidate(from_vo, earlier_answers=dict(ANSWERS)), UNIT)
    assert due is not None and due.to_leader and due.asked_to == UNIT.leader_email


@pytest.mark.parametrize(
    ("unit", "flags"),
    [
        (dataclasses.replace(UNIT, verneombud_email=""), {}),  # no address in the roster
        (UNIT, {"verneombud_failing": True}),  # their address bounces
    ],
)
def test_nobody_is_asked_without_a_working_address(unit, flags):
    assert due_request(candidate(version(), **flags), unit) is None


def test_the_leader_is_not_asked_at_a_failing_address():
    from_vo = version(2, ANSWERS | {"antall_ansatte": 14}, sender=UNIT.verneombud_email)
    assert due_request(candidate(from_vo, earlier_answers=dict(ANSWERS), leader_failing=True), UNIT) is None


# ---- the inbox: a small campaign on SQLite, every message decided and committed in turn ----------


@dataclasses.dataclass
class Campaign:
    p: Project
    app: App
    clock: FixedClock
    units: list[Unit]
    uid: int = 0

    def now(self) -> dt.datetime:
        return self.clock.now()

    def deliver(self, raw: bytes) -> Decision:
        """Store, decide and commit one message, as ``poll._handle`` does."""
        self.uid += 1
        mail = parse_mail(raw)
        store, now = self.app.store, self.now()
        path, digest = self.app.archive.put(raw)
        row = store.store_inbound(
            self.app.campaign_id,
            message_id=mail.message_id,
            folder="INBOX",
            uidvalidity=1,
            uid=self.uid,
            received_at=received_time(mail, now),
            sender=mail.from_address,
            subject=mail.subject,
            raw_path=path,
            sha256=digest,
            now=now,
        )
        decision = self.app.processor().decide(mail, row, received_time(mail, now), now)
        assert store.record_decision(self.app.campaign_id, row, decision, now)
        return decision

    def queued(self, kind: str) -> list[Any]:
        return [r for r in self.app.store.outbox_rows(self.app.campaign_id, ["queued"]) if r.kind == kind]

    def message(self, kind: str, code: str) -> Any:
        (row,) = [r for r in self.queued(kind) if r.unit_code == code]
        return parse(row.payload)

    def leader_sends(self, unit: Unit, answers: dict[str, object], sender: str | None = None) -> Decision:
        invitation = self.message("leader-invitation", unit.code)
        (att,) = list(invitation.iter_attachments())
        data = fill(att.get_content(), FORM, answers, unit.language)
        return self.deliver(reply(unit, invitation, (att.get_filename(), data), sender=sender))

    def cosign(self, code: str) -> Any:
        (state,) = [s for s in Setup(self.app).unit_status() if s.code == code]
        return state.cosign


def campaign_for(tmp: Path, mode: str = "ask") -> Iterator[Campaign]:
    p = new_project(tmp, n_units=3)
    p.config.write_text(p.config.read_text() + f'\n[cosign]\nmode = "{mode}"\n')
    clock = FixedClock(T0)
    app = App(config_mod.load(p.config, p.env), clock)
    Setup(app).init()
    Setup(app).import_roster()
    Mailing(app).queue_invitations(app.store.units(app.campaign_id))
    try:
        yield Campaign(p, app, clock, list(p.units))
    finally:
        app.close()


@pytest.fixture
def c(tmp_path) -> Iterator[Campaign]:
    yield from campaign_for(tmp_path)


def asked(c: Campaign, unit: Unit, answers: dict[str, object] | None = None) -> Any:
    """The leader sends a valid form and the verneombud is asked: the request as it would arrive."""
    assert c.leader_sends(unit, answers or valid_answers(1)).outcome == "receipt"
    report = ask_once(c.app.store, c.app.config, c.app.letters, c.now())
    assert [(code, v) for code, v, _ in report.asked] == [
        (unit.code, c.app.store.unit_history(c.app.campaign_id, unit.code).versions)
    ]
    return c.message("verneombud-request", unit.code)


VO0 = ("Verneombud 0", "vo000@example.test")


def test_a_valid_form_asks_its_verneombud_once_with_the_leaders_file(c):
    unit = c.units[0]
    receipt = c.leader_sends(unit, valid_answers(1))
    assert "Vi sender derfor svarene til verneombudet, Verneombud 0," in body(
        parse(receipt.answers[0].payload)
    )
    assert c.cosign(unit.code).stage is CoSign.NOT_ASKED and c.cosign(unit.code).reason is NotAsked.NOT_YET
    store, config, letters = c.app.store, c.app.config, c.app.letters
    report = ask_once(store, config, letters, c.now())
    assert report.asked == [(unit.code, 1, "vo000@example.test")]
    assert ask_once(store, config, letters, c.now()).asked == []  # asked once
    request = c.message("verneombud-request", unit.code)
    assert request["To"] == "Verneombud 0 <vo000@example.test>" and request["Auto-Submitted"] is None
    leader_reply = c.app.store.inbound_by_id(1)
    assert request["In-Reply-To"] == leader_reply.message_id  # threaded under the leader's form
    (att,) = list(request.iter_attachments())
    (leader_file,) = list(parse(c.app.archive.get(leader_reply.raw_path)).iter_attachments())
    assert att.get_content() == leader_file.get_content()  # the leader's own file, not a rebuilt one
    state = c.cosign(unit.code)
    assert state.stage is CoSign.PENDING and state.version == 1 and state.asked_to == "vo000@example.test"


def test_the_same_answers_again_ask_nothing_and_changed_answers_ask_again(c):
    unit = c.units[0]
    asked(c, unit)
    c.clock.advance(dt.timedelta(hours=1))
    assert c.leader_sends(unit, valid_answers(1)).outcome == "receipt"
    assert ask_once(c.app.store, c.app.config, c.app.letters, c.now()).asked == []
    c.clock.advance(dt.timedelta(hours=1))
    assert c.leader_sends(unit, valid_answers(5)).outcome == "receipt"
    assert ask_once(c.app.store, c.app.config, c.app.letters, c.now()).asked == [
        (unit.code, 3, "vo000@example.test")
    ]
    assert c.cosign(unit.code).version == 3


def test_enig_from_outlook_is_confirmed_and_thanked(c):
    unit = c.units[0]
    request = asked(c, unit)
    signed = "Enig\n\nMed vennlig hilsen\nSiri Løvås\nHovedverneombud"
    decision = c.deliver(outlook(request, ("Siri Løvås", "vo000@example.test"), signed))
    assert decision.kind is MessageKind.COSIGN and decision.outcome == "cosign-confirmed"
    assert decision.folder == c.app.config.imap.folders.processed
    (ack,) = decision.answers
    assert ack.kind == "verneombud-ack" and ack.recipients == ("vo000@example.test",)
    assert parse(ack.payload)["Auto-Submitted"] not in (None, "no")  # machine mail: never answered
    state = c.cosign(unit.code)
    assert (
        state.stage is CoSign.CONFIRMED
        and state.words == "Enig"
        and state.answered_by == "vo000@example.test"
    )
    assert state.answered_at is not None


def test_a_comment_is_kept_verbatim_and_goes_to_the_leader_and_the_coordinator_once(c):
    unit = c.units[2]  # an English unit
    request = asked(c, unit)
    words = "I do not agree about the meeting. Only half of the staff took part."
    decision = c.deliver(gmail(request, ("Verneombud 2", "vo002@example.test"), words))
    assert decision.outcome == "cosign-disputed"
    assert sorted((m.kind, m.recipients) for m in decision.answers) == [
        ("coordinator-cosign-notice", ("koord-hf@example.test",)),
        ("leader-cosign-comment", (unit.leader_email,)),
        ("verneombud-ack", ("vo002@example.test",)),
    ]
    for mail in decision.answers:
        assert "Only half of the staff took part." in body(parse(mail.payload))
    state = c.cosign(unit.code)
    assert state.stage is CoSign.DISPUTED and state.words == words


def test_a_reply_with_only_the_quote_goes_to_a_person_and_nobody_is_answered(c):
    unit = c.units[0]
    request = asked(c, unit)
    decision = c.deliver(only_quote(request, VO0))
    assert (decision.outcome, decision.folder, decision.answers) == (
        "review",
        c.app.config.imap.folders.review,
        (),
    )
    assert decision.cosign_answer is None and c.cosign(unit.code).stage is CoSign.PENDING


def test_the_leader_answering_the_verneombuds_request_is_for_a_person(c):
    unit = c.units[0]
    request = asked(c, unit)
    decision = c.deliver(outlook(request, (unit.leader_name, unit.leader_email), "Enig"))
    assert decision.outcome == "review" and "their own version" in decision.detail["why"]
    assert c.cosign(unit.code).stage is CoSign.PENDING


def test_an_agreement_in_a_new_mail_with_the_reference_counts(c):
    """No thread: a new mail from the verneombud whose subject carries the unit's reference."""
    unit = c.units[1]
    asked(c, unit)
    mail = EmailMessage()
    mail["From"], mail["To"] = "Verneombud 1 <vo001@example.test>", "service@example.test"
    mail["Subject"] = f"Skjemaet for instituttet [ref {c.app.letters.reference(unit)}]"
    mail["Message-ID"], mail["Date"] = make_msgid(domain="client.example.test"), format_datetime(c.now())
    mail.set_content("Enig.")
    decision = c.deliver(mail.as_bytes())
    assert decision.outcome == "cosign-confirmed" and decision.detail["matched_by"] == "reference"


def test_a_question_about_the_invitation_is_no_comment_on_the_form(c):
    """The verneombud was copied on the invitation; their question to it is a question."""
    unit = c.units[0]
    asked(c, unit)
    invitation = c.message("leader-invitation", unit.code)
    decision = c.deliver(outlook(invitation, VO0, "Når er fristen for å sende inn?"))
    assert decision.kind is MessageKind.QUESTION and decision.outcome == "review"
    assert c.cosign(unit.code).stage is CoSign.PENDING


def test_an_out_of_office_reply_is_not_answered_and_says_when_they_are_back(c):
    unit = c.units[0]
    request = asked(c, unit)
    decision = c.deliver(out_of_office(request, VO0, "Jeg er på kurs og er tilbake 4. januar 2021."))
    assert decision.kind is MessageKind.AUTO_REPLY and decision.answers == ()
    state = c.cosign(unit.code)
    assert state.stage is CoSign.PENDING and state.back_on == dt.date(2021, 1, 4)


def test_a_changed_form_from_the_verneombud_is_a_new_version_and_the_leader_is_asked(c):
    unit = c.units[0]
    request = asked(c, unit)
    (att,) = list(request.iter_attachments())
    changed = fill(att.get_content(), FORM, valid_answers(5), unit.language)
    decision = c.deliver(
        with_form(request, VO0, "Vi ble enige om dette i stedet.", (att.get_filename(), changed))
    )
    assert decision.kind is MessageKind.SUBMISSION and decision.outcome == "receipt"
    (receipt,) = [m for m in decision.answers if m.kind == "leader-receipt"]
    assert receipt.recipients == ("vo000@example.test",)
    assert "Denne versjonen kom fra verneombudet" in body(parse(receipt.payload))
    report = ask_once(c.app.store, c.app.config, c.app.letters, c.now())
    assert report.asked == [(unit.code, 2, unit.leader_email)]
    to_leader = [r for r in c.queued("verneombud-request") if r.recipients == (unit.leader_email,)]
    (mail,) = to_leader
    text = body(parse(mail.payload))
    assert "Fordi denne versjonen kom fra verneombudet, ber vi deg som leder bekrefte" in text
    # the leader's «Enig» to it confirms; the acknowledgement greets the leader
    decision = c.deliver(outlook(parse(mail.payload), (unit.leader_name, unit.leader_email), "Enig"))
    assert decision.outcome == "cosign-confirmed"
    (ack,) = decision.answers
    assert ack.recipients == (unit.leader_email,) and body(parse(ack.payload)).startswith(
        f"Hei {unit.leader_name},"
    )
    assert c.cosign(unit.code).stage is CoSign.CONFIRMED


def test_the_file_we_sent_attached_back_is_no_new_version(c):
    unit = c.units[0]
    request = asked(c, unit)
    (att,) = list(request.iter_attachments())
    decision = c.deliver(with_form(request, VO0, "Enig", (att.get_filename(), att.get_content())))
    assert decision.outcome == "cosign-confirmed"


def test_an_answer_to_an_older_request_is_for_a_person(c):
    unit = c.units[0]
    first = asked(c, unit)
    c.clock.advance(dt.timedelta(hours=1))
    assert c.leader_sends(unit, valid_answers(5)).outcome == "receipt"
    assert ask_once(c.app.store, c.app.config, c.app.letters, c.now()).asked
    decision = c.deliver(outlook(first, VO0, "Enig"))
    assert decision.outcome == "review" and "version 2 was asked about since" in decision.detail["why"]


def test_a_machine_in_the_thread_gets_nothing(c):
    unit = c.units[0]
    request = asked(c, unit)
    raw = outlook(
        request, ("Postmaster", "noreply@example.test"), "Enig", headers={"Auto-Submitted": "auto-generated"}
    )
    decision = c.deliver(raw)
    assert decision.answers == () and decision.cosign_answer is None


def test_one_reminder_after_five_working_days_at_the_send_hour(c):
    unit = c.units[0]
    asked(c, unit)  # Thursday 10 December 2020
    store, config, letters = c.app.store, c.app.config, c.app.letters
    c.clock.set(dt.datetime(2020, 12, 17, 7, 0, tzinfo=UTC))  # Thursday 17th, 08:00: before the hour
    assert remind_once(store, config, letters, c.now()).reminded == []
    c.clock.set(dt.datetime(2020, 12, 17, 8, 30, tzinfo=UTC))  # 09:30 in Oslo
    assert remind_once(store, config, letters, c.now()).reminded == [(unit.code, 1, "vo000@example.test")]
    assert remind_once(store, config, letters, c.now()).reminded == []  # one, never two
    (reminder,) = [parse(r.payload) for r in c.queued("verneombud-reminder")]
    assert reminder["In-Reply-To"] == c.message("verneombud-request", unit.code)["Message-ID"]
    assert reminder["Cc"] is None  # mode "ask": the leader is not copied


def test_with_mode_required_the_reminder_copies_the_leader_and_only_confirmed_is_done(tmp_path):
    for c in campaign_for(tmp_path, "required"):
        unit = c.units[0]
        request = asked(c, unit)
        (state,) = [s for s in Setup(c.app).unit_status() if s.code == unit.code]
        assert state.has_valid and not state.done
        c.clock.set(dt.datetime(2020, 12, 17, 8, 30, tzinfo=UTC))
        remind_once(c.app.store, c.app.config, c.app.letters, c.now())
        (reminder,) = [parse(r.payload) for r in c.queued("verneombud-reminder")]
        assert unit.leader_email in reminder["Cc"]
        assert f"{unit.leader_name} får en kopi av denne påminnelsen" in body(reminder)
        c.deliver(outlook(request, VO0, "Enig"))
        (state,) = [s for s in Setup(c.app).unit_status() if s.code == unit.code]
        assert state.done


def test_with_mode_off_nobody_is_asked_and_no_answer_is_read(tmp_path):
    for c in campaign_for(tmp_path, "off"):
        unit = c.units[0]
        receipt = c.leader_sends(unit, valid_answers(1))
        assert (
            "verneombud"
            not in body(parse(receipt.answers[0].payload)).split("DETTE REGISTRERTE VI")[0].lower()
        )
        assert "bekreftelse på e-post" not in body(parse(receipt.answers[0].payload))
        assert requests_due(c.app.store, c.app.config, c.now()) == []
        assert all(s.cosign is None for s in Setup(c.app).unit_status())
