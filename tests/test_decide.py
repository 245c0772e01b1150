"""Every corpus message through the decision step alone, offline: no Dovecot, no SMTP.

The same campaign as tests/test_corpus_pipeline.py (the example roster, its secret and domain) in
a SQLite file; each message is stored and decided the way ``poll._handle`` does it, in the order
the pipeline delivers them (sorted by name), and each decision is committed before the next one,
since a decision may depend on earlier ones (the per-address loop guard counts queued answers,
a receipt counts the unit's earlier versions). Kind, outcome and folder must be those in
outcomes.json; machines are never answered, and a bounce names the address that failed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from projects import Project

from service.app.wiring import App
from service.campaign.roster import read_roster
from service.config import settings as config_mod
from service.mail.answerable import answer_address, refusal
from service.mail.classifier import MACHINE_KINDS, classify, is_machine
from service.mail.parser import parse, received_time
from service.models import Decision
from service.store.outbox import OutboxRow

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).parent.parent
EXPECTED: dict[str, dict[str, str]] = json.loads((CORPUS / "outcomes.json").read_text(encoding="utf-8"))
NAMES = sorted(x.stem for x in CORPUS.glob("*.eml"))
# After the newest corpus message (2020-12-23): every received time comes from the message itself.
NOW = dt.datetime(2021, 1, 4, 9, 0, tzinfo=dt.UTC)
# The classifier's machine kinds (one spelling with Decision.kind since MessageKind).
MACHINE_DECISION_KINDS = {k.replace("_", "-") for k in MACHINE_KINDS}
# What the poller would record for a message it fetched: UIDs are its position in NAMES.
INBOX, UIDVALIDITY = "INBOX", 1


def corpus_project(path: Path) -> Project:
    """The deployment the corpus was made for, as test_corpus_pipeline.corpus_project builds it,
    but with nothing listening behind [imap] and [smtp]: nothing here connects."""
    units = list(read_roster(ROOT / "config/roster.example.csv").units)
    p = Project(path, units, {"SKJEMAPOST_SECRET": "corpus-secret"})
    p.write_config(mail={"from_address": "hms-skjema@example.edu"})
    p.config.write_text(
        p.config.read_text().replace(
            'institution_domains = ["example.test"]', 'institution_domains = ["example.edu"]'
        )
    )
    p.write_roster()
    p.setup()
    return p


#: the outbox after every corpus message was decided and committed (filled by ``decided``)
OUTBOX: list[OutboxRow] = []


@pytest.fixture(scope="module")
def decided(tmp_path_factory) -> Iterator[dict[str, Decision | Exception]]:
    """Store, decide and commit every corpus message in the pipeline's order; a message whose
    decision raises keeps its exception (the poller would quarantine it), so its own test fails
    and the others still run."""
    p = corpus_project(tmp_path_factory.mktemp("decide"))
    app = App(config_mod.load(p.config, p.env))
    try:
        # Built as the poller gets it: with [inbox] convert_with_libreoffice at its default (on),
        # as in the pipeline, the .ods and .xls messages go through LibreOffice (~2.5 s each).
        processor = app.processor()
        store, archive, campaign = app.store, app.archive, app.campaign_id
        out: dict[str, Decision | Exception] = {}
        for uid, name in enumerate(NAMES, start=1):
            raw = (CORPUS / f"{name}.eml").read_bytes()
            mail = parse(raw)
            received_at = received_time(mail, NOW)
            path, digest = archive.put(raw)
            row_id = store.store_inbound(
                campaign,
                message_id=mail.message_id,
                folder=INBOX,
                uidvalidity=UIDVALIDITY,
                uid=uid,
                received_at=received_at,
                sender=mail.from_address,
                subject=mail.subject,
                raw_path=path,
                sha256=digest,
                now=NOW,
            )
            try:
                decision = processor.decide(mail, row_id, received_at, NOW)
            except Exception as exc:  # reported by the message's own test
                out[name] = exc
                continue
            assert store.record_decision(campaign, row_id, decision, NOW), name
            out[name] = decision
        OUTBOX[:] = store.outbox_rows(campaign, ["queued", "sending", "sent", "failed", "bounced"])
        yield out
    finally:
        app.close()


def _decision(decided: dict[str, Decision | Exception], name: str) -> Decision:
    found = decided[name]
    if isinstance(found, Exception):
        pytest.fail(f"deciding {name} raised {type(found).__name__}: {found}")
    return found


def _twin(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


def test_outcomes_file_covers_the_whole_corpus():
    """outcomes.json names every .eml, and nothing else (and no two share a Message-ID, so the
    poller's duplicate check, which is not part of decide, never applies to the corpus)."""
    assert sorted(EXPECTED) == NAMES
    ids = [parse((CORPUS / f"{n}.eml").read_bytes()).message_id for n in NAMES]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("name", NAMES)
def test_message_is_decided_as_expected(decided, name):
    """Kind, outcome and folder as outcomes.json says."""
    d = _decision(decided, name)
    assert {"kind": d.kind, "outcome": d.outcome, "folder": d.folder} == EXPECTED[name]


@pytest.mark.parametrize("name", NAMES)
def test_machines_and_review_are_never_answered_and_people_are(decided, name):
    """A machine is never answered and files nothing; a message for review waits for a person
    with nothing queued; everything else a person sent gets at least one answer."""
    d = _decision(decided, name)
    if d.kind in MACHINE_DECISION_KINDS or d.outcome == "review":
        assert d.answers == () and d.submissions == ()
    else:
        assert d.kind == "submission"
        assert len(d.answers) >= 1
        if d.outcome in ("receipt", "correction"):
            assert len(d.submissions) >= 1
            assert all(s.valid == (d.outcome == "receipt") for s in d.submissions)


BOUNCES = [n for n in NAMES if EXPECTED[n]["kind"] == "bounce"]
DELAYS = [n for n in NAMES if EXPECTED[n]["kind"] == "delay"]


@pytest.mark.parametrize("name", BOUNCES)
def test_a_bounce_carries_the_failed_address(decided, name):
    """The failed recipients the twin .json names are the addresses the bounce marks failing."""
    d = _decision(decided, name)
    failed = [a.lower() for a in _twin(name).get("failed_recipients", [])]
    assert d.detail["failed"] == failed
    assert [a for a, _ in d.failing_addresses] == failed
    assert all(reason for _, reason in d.failing_addresses)


@pytest.mark.parametrize("name", DELAYS)
def test_a_delay_names_the_delayed_recipient_and_marks_nothing_failing(decided, name):
    d = _decision(decided, name)
    assert d.detail["recipients"] == _twin(name).get("failed_recipients", [])
    assert d.failing_addresses == ()


def test_every_bounce_in_the_corpus_names_its_failed_address():
    """The bounce test above is not vacuous: every bounce twin lists its failed recipients."""
    assert BOUNCES and all(_twin(n).get("failed_recipients") for n in BOUNCES)


# ---- never answer a machine ----------------------------------------------------------------------


def test_no_machine_message_in_the_corpus_put_a_row_in_the_outbox(decided):
    """The whole corpus decided and committed: every outbox row is an answer that a person's
    message queued (a receipt, a correction or a notice), none is owed to a machine's message,
    and every message the classifier calls a machine's queued nothing."""
    machines = [n for n in NAMES if is_machine(classify(parse((CORPUS / f"{n}.eml").read_bytes())))]
    assert len(machines) >= 30
    for name in machines:
        d = _decision(decided, name)
        assert (d.answers, d.submissions) == ((), ()), name
    queued = [m.dedupe_key for n in NAMES if n not in machines for m in _decision(decided, n).answers]
    assert sorted(row.dedupe_key for row in OUTBOX) == sorted(queued)


@pytest.mark.parametrize("name", NAMES)
def test_the_answer_rule_holds_for_every_corpus_message(decided, name):
    """Whatever ``answerable.refusal`` turns away (hourly cap aside) got no answer at its sender."""
    mail = parse((CORPUS / f"{name}.eml").read_bytes())
    found = refusal(mail, classify(mail), sent_last_hour=lambda address: 0, per_hour=5)
    to_sender = [m for m in _decision(decided, name).answers if answer_address(mail) in m.recipients]
    if found is not None:
        assert to_sender == [], found.reason


RETURNED = [n for n in NAMES if n.startswith("returned-invitation-")]


@pytest.mark.parametrize("name", RETURNED)
def test_our_invitation_returned_by_a_daemon_in_our_own_domain_stores_nothing(decided, name):
    """A daemon address inside institution_domains (no-reply@, post_master@) returning our
    invitation with its form: a bounce that marks the leader's address, no submission stored for
    the unit, nobody answered."""
    d = _decision(decided, name)
    assert (d.kind, d.submissions, d.answers) == ("bounce", (), ())
    assert [a for a, _ in d.failing_addresses] == _twin(name)["failed_recipients"]
    assert len(RETURNED) == 2
