"""Every corpus message through the real pipeline: Dovecot, poll, the store. None crashes the
poller; each ends as exactly one stored row in one folder, with the outcome in outcomes.json."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from projects import Project

from service.app.wiring import App
from service.campaign.roster import read_roster
from service.clock import FixedClock
from service.config import settings as config_mod
from service.jobs.poll import poll_once
from service.net.imap import connect

pytestmark = pytest.mark.servers
CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).parent.parent
EXPECTED = json.loads((CORPUS / "outcomes.json").read_text(encoding="utf-8"))
MACHINE_OUTCOMES = {"bounce-recorded", "delay-noted", "auto-reply-noted", "ignored", "sent-copy"}
# The corpus campaign's own time, as in test_decide: after its newest message, before it closes
# (campaign.closes, four weeks after the deadline), so a form is answered as in the campaign.
NOW = dt.datetime(2021, 1, 4, 9, 0, tzinfo=dt.UTC)


def corpus_project(path: Path, world, service: str) -> Project:
    """The deployment the corpus was made for: the example roster, its secret and domain."""
    units = list(read_roster(ROOT / "config/roster.example.csv").units)
    p = Project(
        path,
        units,
        {"SKJEMAPOST_SECRET": "corpus-secret", "SKJEMAPOST_IMAP_PASSWORD": world.password(service)},
    )
    p.write_config(
        imap={"host": world.host, "port": world.imap_port, "tls": "none", "user": service},
        mail={"from_address": "hms-skjema@example.edu"},
    )
    p.config.write_text(
        p.config.read_text().replace(
            'institution_domains = ["example.test"]', 'institution_domains = ["example.edu"]'
        )
    )
    p.write_roster()
    p.setup()
    return p


@pytest.fixture(scope="module")
def outcomes(mail_world, tmp_path_factory):
    """Deliver the whole corpus to a fresh service mailbox and poll once."""
    service = mail_world.new_user("corpus")
    p = corpus_project(tmp_path_factory.mktemp("corpus"), mail_world, service)
    names = sorted(x.stem for x in CORPUS.glob("*.eml"))
    for name in names:
        mail_world.deliver((CORPUS / f"{name}.eml").read_bytes(), service, mail_from="x@example.edu")
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    box = connect(app.imap_settings())
    report = poll_once(box, app.store, app.processor(), app.archive, app.clock)
    box.logout()
    with sqlite3.connect(p.dir / "data" / "skjemapost.db") as conn:
        rows = conn.execute(
            "select id, kind, outcome, target_folder, status from inbound order by id"
        ).fetchall()
        answers = conn.execute(
            "select inbound.id, count(outbox.id) from inbound left join outbox "
            "on outbox.dedupe_key like 'aml-2020:inbound' || inbound.id || ':%' "
            "group by inbound.id"
        ).fetchall()
        failing = conn.execute("select inbound_id, address from address_failures order by id").fetchall()
        stored = conn.execute("select distinct inbound_id from submissions").fetchall()
    assert report.fetched == len(names) == len(rows)
    left = mail_world.messages(service)
    return {
        "rows": dict(zip(names, rows, strict=True)),
        "answers": dict(answers),
        "failing": failing,
        "with_submissions": {r[0] for r in stored},
        "left": left,
        "names": names,
    }


def test_every_message_is_one_row_in_one_folder_and_the_inbox_is_empty(outcomes):
    """No message crashes the poller or is left behind; none went to quarantine."""
    assert outcomes["left"] == []
    assert all(row[4] == "done" for row in outcomes["rows"].values())
    assert not [n for n, row in outcomes["rows"].items() if row[2] == "quarantined"]


def test_outcomes_file_covers_the_whole_corpus(outcomes):
    """outcomes.json names every .eml, and nothing else."""
    assert sorted(EXPECTED) == outcomes["names"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_message_ends_as_expected(outcomes, name):
    """Kind, outcome and folder as outcomes.json says; machines are never answered."""
    row_id, kind, outcome, folder, _ = outcomes["rows"][name]
    assert {"kind": kind, "outcome": outcome, "folder": folder} == EXPECTED[name]
    answered = outcomes["answers"].get(row_id, 0)
    if outcome in MACHINE_OUTCOMES or outcome == "review":
        assert answered == 0
    else:
        assert answered >= 1


def twin(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))


def test_every_bounce_marks_the_address_it_failed_for(outcomes):
    """Each bounce of the corpus recorded its failed addresses (the ones we sent to) as failing,
    tied to its own inbound row; nothing else marked an address."""
    bounces = [n for n in outcomes["names"] if EXPECTED[n]["kind"] == "bounce"]
    assert len(bounces) >= 15
    want = sorted((outcomes["rows"][n][0], a) for n in bounces for a in twin(n)["failed_recipients"])
    assert sorted(outcomes["failing"]) == want


def test_machines_store_no_submission_and_our_returned_invitations_none_either(outcomes):
    """No message of a machine kind (bounce, delay, auto-reply, report, list, own) stored a form,
    not even the returned invitations from daemons inside institution_domains, whose form is ours."""
    machine = {n for n, row in outcomes["rows"].items() if row[2] in MACHINE_OUTCOMES}
    assert {n for n in outcomes["names"] if n.startswith("returned-invitation-")} <= machine
    assert not {outcomes["rows"][n][0] for n in machine} & outcomes["with_submissions"]


def test_only_machine_mail_in_the_inbox_leaves_the_outbox_empty(tmp_path, mail_world):
    """Every machine-kind message of the corpus, alone in a fresh mailbox, through Dovecot and a
    poll: not one outbox row (no receipt, correction or notice), not one submission."""
    names = [n for n in sorted(EXPECTED) if EXPECTED[n]["outcome"] in MACHINE_OUTCOMES]
    service = mail_world.new_user("machines")
    p = corpus_project(tmp_path, mail_world, service)
    for name in names:
        mail_world.deliver((CORPUS / f"{name}.eml").read_bytes(), service, mail_from="x@example.edu")
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    box = connect(app.imap_settings())
    report = poll_once(box, app.store, app.processor(), app.archive, app.clock)
    box.logout()
    with sqlite3.connect(p.dir / "data" / "skjemapost.db") as conn:
        kinds = conn.execute("select kind, count(*) from inbound group by kind").fetchall()
        outbox = conn.execute("select count(*) from outbox").fetchone()[0]
        submissions = conn.execute("select count(*) from submissions").fetchone()[0]
    app.close()
    assert report.fetched == len(names) >= 30
    assert sum(n for _, n in kinds) == len(names) and (outbox, submissions) == (0, 0)
    assert {k for k, _ in kinds} <= {"bounce", "delay", "auto-reply", "report", "list", "own"}


def test_a_30_mb_attachment_is_turned_away_with_an_answer(tmp_path, mail_world):
    """A 30 MB attachment: stored, not read, the sender told what to do, the mail kept."""
    import sys

    sys.path.insert(0, str(CORPUS))
    try:
        import make_corpus
    finally:
        sys.path.remove(str(CORPUS))
    raw, _ = make_corpus.large_message()
    service = mail_world.new_user("big")
    p = corpus_project(tmp_path, mail_world, service)
    mail_world.deliver(raw, service, mail_from="x@example.edu")
    app = App(config_mod.load(p.config, p.env), FixedClock(NOW))
    box = connect(app.imap_settings())
    report = poll_once(box, app.store, app.processor(), app.archive, app.clock)
    box.logout()
    assert report.outcomes["rejected"] == 1
    (answer,) = app.store.outbox_rows("aml-2020", ["queued"])
    assert answer.kind == "leader-correction" and b"MB" in answer.payload.replace(b"=\r\n", b"")
    assert len(mail_world.messages(service, "Skjemapost/Behandlet")) == 1
