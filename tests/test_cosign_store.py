"""The co-signature's rows: one request per valid version, one reminder, the newest answer, and
each unit's facts in one read; on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from service.errors import StoreError, UnknownUnitError
from service.models import NewMail, Unit
from service.store import tables as t
from service.store.cosign import CosignStore, answer_in, scrub_cosign_in
from service.store.database import Store
from service.store.roster import CampaignInfo

NOW = dt.datetime(2020, 12, 10, 13, 0, tzinfo=dt.UTC)
CAMPAIGN = "aml-2020"
INFO = CampaignInfo(
    CAMPAIGN,
    "Test",
    "oppsummering-og-evaluering",
    1,
    dt.date(2020, 11, 23),
    dt.date(2020, 12, 16),
    "Europe/Oslo",
)


def unit(code: str, verneombud: str = "") -> Unit:
    return Unit(
        code=code,
        name=f"Unit {code}",
        faculty="IE",
        leader_name="Leder",
        leader_email=f"{code.lower()}@example.edu",
        language="nb",
        verneombud_name="Verneombud" if verneombud else "",
        verneombud_email=verneombud,
    )


@pytest.fixture
def store(db_url) -> tuple[Store, CosignStore]:
    s = Store.open(db_url)
    s.upgrade()
    s.ensure_campaign(INFO, NOW)
    s.import_roster(CAMPAIGN, [unit("A", "vo-a@example.edu"), unit("B", "VO-B@example.edu"), unit("C")], NOW)
    yield s, CosignStore(s.engine)
    s.close()


def add_form(s: Store, code: str, version: int, *, valid: bool = True) -> None:
    """A version of the unit's form, as the inbox stores it (only what the co-signature reads)."""
    with s.engine.begin() as conn:
        uid = conn.execute(sa.select(t.units.c.id).where(t.units.c.code == code)).scalar_one()
        conn.execute(
            t.submissions.insert().values(
                campaign_id=CAMPAIGN,
                unit_id=uid,
                version=version,
                received_at=NOW,
                sender=f"{code.lower()}@example.edu",
                valid=valid,
                current=valid,
                answers={},
                problems=[],
                flags=[],
                file_name="skjema.xlsx",
                file_sha256="0" * 64,
                created_at=NOW,
            )
        )


def queue_request(s: Store, code: str, message_id: str) -> None:
    s.queue(
        CAMPAIGN,
        [NewMail("verneombud-request", code, f"{CAMPAIGN}:{code}:x", message_id, ("vo@x",), "S", b"")],
        NOW,
    )


def test_a_request_is_recorded_once_per_version_with_its_outbox_row(store):
    """Asking about a version records who, when and the request's Message-ID (and its outbox row);
    asking about it again returns the same request and changes nothing."""
    s, cs = store
    add_form(s, "A", 1)
    queue_request(s, "A", "<req-a1@example.edu>")
    first = cs.record_cosign_request(
        CAMPAIGN, "a", version=1, message_id="<req-a1@example.edu>", asked_to="VO-A@example.edu", now=NOW
    )
    again = cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<other@example.edu>", asked_to="x@example.edu", now=NOW
    )
    assert again == first
    assert (first.unit_code, first.version, first.asked_to, first.asked_at) == (
        "A",
        1,
        "vo-a@example.edu",
        NOW,
    )
    assert first.reading is None and first.reminded_at is None
    with s.engine.connect() as conn:
        outbox_id = conn.execute(sa.select(t.cosign.c.request_outbox_id)).scalar_one()
        assert outbox_id == conn.execute(sa.select(t.outbox.c.id)).scalar_one()
    assert [e["kind"] for e in s.events(CAMPAIGN, "cosign.")] == ["cosign.asked"]


def test_only_a_valid_version_of_a_known_unit_is_asked_about(store):
    """An invalid or missing version, or an unknown unit, is refused with what is wrong."""
    s, cs = store
    add_form(s, "A", 1, valid=False)
    with pytest.raises(StoreError, match="version 1: that version is not valid"):
        cs.record_cosign_request(CAMPAIGN, "A", version=1, message_id="<m>", asked_to="vo@x", now=NOW)
    with pytest.raises(StoreError, match="version 2: no such version"):
        cs.record_cosign_request(CAMPAIGN, "A", version=2, message_id="<m>", asked_to="vo@x", now=NOW)
    with pytest.raises(UnknownUnitError):
        cs.record_cosign_request(CAMPAIGN, "ZZ", version=1, message_id="<m>", asked_to="vo@x", now=NOW)


def test_one_reminder_and_the_newest_answer_counts(store):
    """A second reminder is refused; a later answer replaces the earlier one, and both are events."""
    s, cs = store
    add_form(s, "A", 1)
    req = cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<r1>", asked_to="vo-a@example.edu", now=NOW
    )
    later = NOW + dt.timedelta(days=7)
    assert cs.record_cosign_reminder(req.id, message_id="<rem1>", now=later) is True
    assert cs.record_cosign_reminder(req.id, message_id="<rem2>", now=later) is False
    cs.record_cosign_answer(
        req.id,
        reading="confirmed",
        words="Enig.",
        answered_by="VO-A@example.edu",
        at=later + dt.timedelta(hours=1),
    )
    final = cs.record_cosign_answer(
        req.id,
        reading="disputed",
        words="Jeg er likevel ikke enig.\nPunkt 3.",
        answered_by="vo-a@example.edu",
        answered_by_name="Verneombud A",
        at=later + dt.timedelta(hours=2),
    )
    assert (final.reading, final.words, final.answered_by_name) == (
        "disputed",
        "Jeg er likevel ikke enig.\nPunkt 3.",
        "Verneombud A",
    )
    assert final.reminded_at == later and final.reminder_message_id == "<rem1>"
    assert final.answered_at == later + dt.timedelta(hours=2)
    answered = [e["detail"]["reading"] for e in s.events(CAMPAIGN, "cosign.answered")]
    assert answered == ["confirmed", "disputed"]
    with pytest.raises(ValueError, match="confirmed or disputed, not 'empty'"):
        cs.record_cosign_answer(req.id, reading="empty", words="", answered_by="x", at=later)


def test_a_reply_is_matched_to_its_request_by_the_request_or_the_reminder(store):
    """In-Reply-To/References naming the request or its reminder find it; others find nothing."""
    s, cs = store
    add_form(s, "A", 1)
    add_form(s, "B", 1)
    cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<ra>", asked_to="vo-a@example.edu", now=NOW
    )
    rb = cs.record_cosign_request(
        CAMPAIGN, "B", version=1, message_id="<rb>", asked_to="vo-b@example.edu", now=NOW
    )
    cs.record_cosign_reminder(rb.id, message_id="<rb-rem>", now=NOW)
    assert cs.cosign_request_for(CAMPAIGN, ["<unrelated>", "<ra>"]).unit_code == "A"  # type: ignore[union-attr]
    assert cs.cosign_request_for(CAMPAIGN, ["<rb-rem>"]).unit_code == "B"  # type: ignore[union-attr]
    assert cs.cosign_request_for(CAMPAIGN, ["<unrelated>"]) is None
    assert cs.cosign_request_for(CAMPAIGN, []) is None


def test_whether_a_message_may_answer_a_request_is_one_cheap_question(store):
    """The inbox's first filter: a request in the thread, to the sender or about a unit the
    message names makes it a candidate; anything else (most mail) is not."""
    s, cs = store
    add_form(s, "A", 1)
    rb = cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<ra>", asked_to="vo-a@example.edu", now=NOW
    )
    cs.record_cosign_reminder(rb.id, message_id="<ra-rem>", now=NOW)
    assert cs.cosign_may_answer(CAMPAIGN, ["<x>", "<ra-rem>"], "someone@example.edu", [])
    assert cs.cosign_may_answer(CAMPAIGN, [], " VO-A@example.edu", [])
    assert cs.cosign_may_answer(CAMPAIGN, [], "someone@example.edu", ["b", "a"])
    assert not cs.cosign_may_answer(CAMPAIGN, ["<x>"], "leader-a@example.edu", ["B"])
    assert not cs.cosign_may_answer("another-campaign", ["<ra>"], "vo-a@example.edu", ["A"])


def test_records_give_each_unit_its_newest_request_absence_and_failing_address(store):
    """Per unit: the newest version's request, the verneombud's newest out-of-office (by their
    address, case aside) and a bounce of their address; a unit never asked has none."""
    s, cs = store
    for version in (1, 2):
        add_form(s, "A", version)
    cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<a1>", asked_to="vo-a@example.edu", now=NOW
    )
    cs.record_cosign_request(
        CAMPAIGN, "A", version=2, message_id="<a2>", asked_to="vo-a@example.edu", now=NOW
    )
    with s.engine.begin() as conn:
        for n, (sender, back) in enumerate(
            [("vo-b@example.edu", "2020-12-14"), ("Vo-B@Example.edu", "2020-12-21"), ("a@example.edu", None)]
        ):
            conn.execute(
                t.inbound.insert().values(
                    campaign_id=CAMPAIGN,
                    message_id=f"<ooo{n}>",
                    folder="INBOX",
                    uidvalidity=1,
                    uid=n + 1,
                    received_at=NOW + dt.timedelta(hours=n),
                    sender=sender,
                    subject="Fraværende",
                    raw_path="",
                    sha256="",
                    kind="auto-reply",
                    status="done",
                    detail={"returns_on": back},
                    created_at=NOW,
                )
            )
        conn.execute(
            t.address_failures.insert().values(
                campaign_id=CAMPAIGN, address="vo-a@example.edu", reason="550 5.1.1 User unknown", since=NOW
            )
        )
    records = cs.cosign_records(CAMPAIGN)
    assert set(records) == {"A", "B", "C"}
    a, b, c = records["A"], records["B"], records["C"]
    assert a.request is not None and a.request.version == 2 and a.away is None
    assert a.failure is not None and a.failure.reason == "550 5.1.1 User unknown"
    assert b.request is None and b.away is not None and b.away.returns_on == dt.date(2020, 12, 21)
    assert c.verneombud_email == "" and c.away is None and c.failure is None
    assert [r.version for r in cs.cosign_requests(CAMPAIGN, "a")] == [1, 2]


def test_an_answer_commits_with_the_callers_transaction_or_not_at_all(store):
    """answer_in runs in the caller's transaction: rolled back, nothing is recorded."""
    s, cs = store
    add_form(s, "A", 1)
    req = cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<a1>", asked_to="vo-a@example.edu", now=NOW
    )
    with s.engine.connect() as conn:
        tx = conn.begin()
        answer_in(conn, req.id, reading="confirmed", words="Enig", answered_by="vo-a@example.edu", at=NOW)
        tx.rollback()
    assert cs.cosign_requests(CAMPAIGN, "A")[0].reading is None


def test_retention_scrubs_the_people_and_keeps_the_readings(store):
    """scrub_cosign_in removes who was asked, their words and who answered; the reading stays."""
    s, cs = store
    add_form(s, "A", 1)
    req = cs.record_cosign_request(
        CAMPAIGN, "A", version=1, message_id="<a1>", asked_to="vo-a@example.edu", now=NOW
    )
    cs.record_cosign_answer(req.id, reading="disputed", words="Nei.", answered_by="vo-a@example.edu", at=NOW)
    cutoff = NOW + dt.timedelta(days=1)
    with s.engine.begin() as conn:
        assert scrub_cosign_in(conn, CAMPAIGN, cutoff) == 1
        assert scrub_cosign_in(conn, CAMPAIGN, cutoff) == 0  # nothing left to scrub
    after = cs.cosign_requests(CAMPAIGN, "A")[0]
    assert (after.asked_to, after.words, after.answered_by, after.reading) == ("", None, None, "disputed")


def mail(code: str, message_id: str, key: str) -> NewMail:
    return NewMail("verneombud-request", code, f"{CAMPAIGN}:{code}:{key}", message_id, ("vo@x",), "S", b"")


def test_candidates_are_the_valid_versions_not_asked_about_with_what_the_rules_need(store):
    """A unit is a candidate while its current valid version has no request: with the newest
    earlier request and its answers, our invitation's Message-ID and whether an address fails."""
    s, cs = store
    add_form(s, "A", 1)
    add_form(s, "C", 1, valid=False)  # nothing valid: no candidate
    s.queue(
        CAMPAIGN,
        [
            NewMail(
                "leader-invitation", "A", f"{CAMPAIGN}:A:invitation", "<inv-a>", ("a@example.edu",), "S", b""
            )
        ],
        NOW,
    )
    with s.engine.begin() as conn:
        conn.execute(
            t.address_failures.insert().values(
                campaign_id=CAMPAIGN, address="vo-a@example.edu", reason="550 5.1.1", since=NOW
            )
        )
    (first,) = cs.cosign_candidates(CAMPAIGN)
    assert (first.version.unit_code, first.version.version, first.earlier) == ("A", 1, None)
    assert first.invitation_message_id == "<inv-a>" and first.verneombud_failing and not first.leader_failing
    assert cs.queue_cosign_request(
        CAMPAIGN,
        mail("A", "<r1>", "cosign-request:1"),
        unit_code="A",
        version=1,
        asked_to="vo-a@example.edu",
        now=NOW,
    )
    assert cs.cosign_candidates(CAMPAIGN) == []  # asked: no longer a candidate
    add_form(s, "A", 2)
    with s.engine.begin() as conn:  # version 2 is the current one now
        conn.execute(t.submissions.update().where(t.submissions.c.version == 1).values(current=False))
    (second,) = cs.cosign_candidates(CAMPAIGN)
    assert second.version.version == 2 and second.earlier is not None and second.earlier.version == 1
    assert second.earlier_answers == {}


def test_a_request_is_queued_and_recorded_together_and_only_once(store):
    """The outbox row and the request commit together; asking again queues nothing."""
    s, cs = store
    add_form(s, "B", 1)
    args = {"unit_code": "B", "version": 1, "asked_to": "vo-b@example.edu", "now": NOW}
    assert cs.queue_cosign_request(CAMPAIGN, mail("B", "<rb1>", "cosign-request:1"), **args) is True
    assert cs.queue_cosign_request(CAMPAIGN, mail("B", "<rb2>", "cosign-request:1b"), **args) is False
    (req,) = cs.cosign_requests(CAMPAIGN, "B")
    assert req.request_message_id == "<rb1>"
    assert [r.message_id for r in s.outbox_rows(CAMPAIGN, ["queued"])] == ["<rb1>"]
    with pytest.raises(StoreError):  # no valid version 2: neither the row nor the request
        cs.queue_cosign_request(CAMPAIGN, mail("B", "<rb3>", "cosign-request:2"), **(args | {"version": 2}))
    assert len(s.outbox_rows(CAMPAIGN, ["queued"])) == 1


def test_the_one_reminder_is_queued_with_its_mark_or_not_at_all(store):
    s, cs = store
    add_form(s, "A", 1)
    cs.queue_cosign_request(
        CAMPAIGN,
        mail("A", "<r1>", "cosign-request:1"),
        unit_code="A",
        version=1,
        asked_to="vo-a@example.edu",
        now=NOW,
    )
    (req,) = cs.cosign_requests(CAMPAIGN, "A")
    later = NOW + dt.timedelta(days=7)
    assert cs.queue_cosign_reminder(CAMPAIGN, req.id, mail("A", "<rem1>", "cosign-reminder:1"), now=later)
    assert not cs.queue_cosign_reminder(
        CAMPAIGN, req.id, mail("A", "<rem2>", "cosign-reminder:1b"), now=later
    )
    (req,) = cs.cosign_requests(CAMPAIGN, "A")
    assert (req.reminded_at, req.reminder_message_id) == (later, "<rem1>")
    assert [r.message_id for r in s.outbox_rows(CAMPAIGN, ["queued"])] == ["<r1>", "<rem1>"]


def test_requests_to_an_address_are_each_units_newest(store):
    """A reply with no thread and no reference may answer the newest request to its sender."""
    s, cs = store
    for version in (1, 2):
        add_form(s, "A", version)
    add_form(s, "B", 1)
    for code, version, to in (
        ("A", 1, "vo-a@example.edu"),
        ("A", 2, "leader@example.edu"),
        ("B", 1, "VO-A@example.edu"),
    ):
        cs.record_cosign_request(
            CAMPAIGN, code, version=version, message_id=f"<{code}{version}>", asked_to=to, now=NOW
        )
    assert [(r.unit_code, r.version) for r in cs.cosign_requests_to(CAMPAIGN, "Vo-A@example.edu")] == [
        ("B", 1)
    ]
    assert [(r.unit_code, r.version) for r in cs.cosign_requests_to(CAMPAIGN, "leader@example.edu")] == [
        ("A", 2)
    ]
    version = cs.cosign_version(CAMPAIGN, "a", 2)
    assert version is not None and (version.version, version.file_sha256, version.raw_path) == (
        2,
        "0" * 64,
        "",
    )
    assert cs.cosign_version(CAMPAIGN, "A", 3) is None
