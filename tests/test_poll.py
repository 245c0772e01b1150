"""`skjemapost poll` end to end: replies from real mail clients' shapes, through real Dovecot."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import sqlite3
from collections import Counter
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from harness.filling import (
    answers_with_mistakes,
    fill,
    fill_in_libreoffice,
    shipped_form,
    valid_answers,
)
from projects import Project, mail_project
from test_send import wait_for

from service.forms.model import sheet_layout

pytestmark = pytest.mark.servers
FORM = shipped_form()
#: a moment while the test projects' campaign is open (2020-11-23 to 2020-12-16, closing four
#: weeks later): a poll on today's clock would find it closed and answer with the after-closing
#: mail instead of a receipt
DURING = ("--as-of", "2020-12-01T10:00")
FOLDERS = {
    "processed": "Skjemapost/Behandlet",
    "review": "Skjemapost/Til vurdering",
    "ignored": "Skjemapost/Ignorert",
}


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def invitation(world, unit) -> EmailMessage:
    (raw,) = world.messages(unit.leader_email)
    return parse(raw)


def reply(
    unit,
    original: EmailMessage,
    attachment: tuple[str, bytes] | None,
    text: str = "Her er skjemaet.",
    sender: str | None = None,
    subject_prefix: str = "SV: ",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{unit.leader_name} <{sender or unit.leader_email}>"
    msg["To"] = original["Reply-To"] or original["From"]
    msg["Subject"] = subject_prefix + original["Subject"]
    msg["Message-ID"] = make_msgid(domain="client.example.test")
    msg["In-Reply-To"] = original["Message-ID"]
    msg["Date"] = format_datetime(original["Date"].datetime)
    msg["X-Mailer"] = "Microsoft Outlook 16.0"
    msg.set_content(text)
    if attachment:
        msg.add_attachment(
            attachment[1],
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            filename=attachment[0],
        )
    return msg.as_bytes(policy=email.policy.SMTP)


def out_of_office(unit, original: EmailMessage, lang: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = unit.leader_email
    msg["To"] = original["From"]
    msg["Subject"] = ("Automatisk svar: " if lang == "nb" else "Automatic reply: ") + original["Subject"]
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["Message-ID"] = make_msgid(domain="client.example.test")
    msg["In-Reply-To"] = original["Message-ID"]
    msg.set_content(
        "Jeg er på ferie til 4. januar 2021."
        if lang == "nb"
        else "I am out of the office until 4 January 2021."
    )
    return msg.as_bytes(policy=email.policy.SMTP)


def dsn(unit, original: EmailMessage, service: str) -> bytes:
    """A Postfix-style DSN (multipart/report) for the invitation to ``unit``."""
    return f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.test>
To: {service}
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: {make_msgid(domain="mx.example.test")}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="dsn-boundary"

--dsn-boundary
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered to
<{unit.leader_email}>: host mx said: 550 5.1.1 User unknown

--dsn-boundary
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.test

Final-Recipient: rfc822; {unit.leader_email}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--dsn-boundary
Content-Type: text/rfc822-headers

From: {original["From"]}
To: {unit.leader_email}
Subject: x
Message-ID: {original["Message-ID"]}

--dsn-boundary--
""".replace("\n", "\r\n").encode()


def db(p: Project) -> sqlite3.Connection:
    return sqlite3.connect(p.dir / "data" / "skjemapost.db")


def processed(p: Project) -> int:
    """Messages with a committed decision so far."""
    return p.query("select count(*) from inbound where status != 'stored'")[0][0]


def test_thirty_replies_three_auto_replies_two_bounces_one_poll(tmp_path, mail_world, lo_workdir):
    """25 valid forms registered, 5 corrections delivered, no machine answered, bounces flagged,
    and every message in its folder, after one poll."""
    p = mail_project(tmp_path, mail_world, 36)
    assert p.cli("send").exit_code == 0
    units = p.units
    valid, mistakes = units[:25], units[25:30]
    away, bounced = units[30:33], units[33:35]
    for i, unit in enumerate(units[:30]):
        original = invitation(mail_world, unit)
        (att,) = list(original.iter_attachments())
        answers = valid_answers(i) if unit in valid else answers_with_mistakes(i)
        if i in (3, 27):  # one valid and one with mistakes go through LibreOffice
            data = fill_in_libreoffice(att.get_content(), FORM, answers, unit.language, lo_workdir)
        else:
            data = fill(att.get_content(), FORM, answers, unit.language)
        mail_world.deliver(
            reply(unit, original, (att.get_filename(), data)), p.service, mail_from=unit.leader_email
        )
    for k, unit in enumerate(away):
        mail_world.deliver(
            out_of_office(unit, invitation(mail_world, unit), ("nb", "en")[k % 2]), p.service, mail_from=""
        )
    for unit in bounced:
        mail_world.deliver(dsn(unit, invitation(mail_world, unit), p.service), p.service, mail_from="")

    result = p.cli("poll")
    assert result.exit_code == 0, result.output

    status = json.loads(p.cli("status", "--json").output)["total"]
    assert (status["valid"], status["submitted"]) == (25, 30)
    for unit in mistakes:
        got = [parse(r) for r in mail_world.messages(unit.leader_email)]
        assert len(got) == 2, unit.code
        correction = got[1]
        assert correction["Auto-Submitted"] == "auto-generated"
        assert correction["In-Reply-To"]
        body = correction.get_body(("plain",)).get_content()
        assert f"C{sheet_layout(FORM)['antall_ansatte']}" in body  # the empty "number of employees" cell
    for unit in valid:
        got = [parse(r) for r in mail_world.messages(unit.leader_email)]
        assert len(got) == 2, unit.code  # the invitation and the receipt
    for unit in away + bounced:
        assert len(mail_world.messages(unit.leader_email)) == 1  # never answered
    per_unit = {u["code"]: u for u in json.loads(p.cli("status", "--units", "--json").output)}
    for unit in bounced:
        assert unit.leader_email in per_unit[unit.code]["bounced"]
    assert mail_world.messages(p.service) == []
    assert len(mail_world.messages(p.service, FOLDERS["processed"])) == 32  # 30 forms + 2 bounces
    assert len(mail_world.messages(p.service, FOLDERS["ignored"])) == 3
    with db(p) as conn:
        rows = Counter(dict(conn.execute("select outcome, count(*) from inbound group by outcome")))
        returns = [
            json.loads(d)["returns_on"]
            for (d,) in conn.execute("select detail from inbound where kind = 'auto-reply'")
        ]
    assert rows == Counter({"receipt": 25, "correction": 5, "bounce-recorded": 2, "auto-reply-noted": 3})
    assert returns == ["2021-01-04"] * 3
    again = p.cli("poll")
    assert "polled: 0 new" in again.output


def test_resubmission_newest_valid_wins_and_receipt_says_updated(tmp_path, mail_world):
    """A second valid form replaces the first; the unit counts once; the receipt says so."""
    p = mail_project(tmp_path, mail_world, 3)
    p.cli(*DURING, "send")
    unit = p.units[0]
    original = invitation(mail_world, unit)
    (att,) = list(original.iter_attachments())
    for variant in (0, 1):
        data = fill(att.get_content(), FORM, valid_answers(variant), unit.language)
        mail_world.deliver(reply(unit, original, (att.get_filename(), data)), p.service)
        assert p.cli(*DURING, "poll").exit_code == 0
    doc = json.loads(p.cli("status", "--json").output)["total"]
    assert (doc["valid"], doc["submitted"]) == (1, 1)
    receipts = [parse(r) for r in mail_world.messages(unit.leader_email)][1:]
    assert len(receipts) == 2
    assert (
        "oppdatert" in receipts[1].get_body(("plain",)).get_content().lower()
        or "updated" in receipts[1].get_body(("plain",)).get_content().lower()
    )
    with db(p) as conn:
        versions = conn.execute("select version, valid, current from submissions order by version").fetchall()
    assert versions == [(1, 1, 0), (2, 1, 1)]


def test_two_different_messages_with_one_message_id_are_both_decided_the_same_one_twice_once(
    tmp_path, mail_world
):
    """A duplicate is the same Message-ID *and* the same content. Unit 0's form and unit 1's form
    arrive under one reused Message-ID: both are registered and answered. Unit 0's message then
    arrives a second time (another delivery, its own Received headers): it is ignored as a
    duplicate, and nobody is answered twice."""
    p = mail_project(tmp_path, mail_world, 2)
    p.cli("send")
    reused = make_msgid(domain="broken-client.example.test")
    raws = []
    for i, unit in enumerate(p.units):
        original = invitation(mail_world, unit)
        (att,) = list(original.iter_attachments())
        msg = parse(
            reply(
                unit,
                original,
                (att.get_filename(), fill(att.get_content(), FORM, valid_answers(i + 1), unit.language)),
            )
        )
        msg.replace_header("Message-ID", reused)
        raws.append(msg.as_bytes(policy=email.policy.SMTP))
    mail_world.deliver(raws[0], p.service)
    mail_world.deliver(raws[1], p.service)
    assert p.cli("poll").exit_code == 0
    mail_world.deliver(raws[0], p.service)
    assert p.cli("poll").exit_code == 0
    with db(p) as conn:
        kinds = conn.execute("select kind, outcome from inbound order by id").fetchall()
        units = {r[0] for r in conn.execute("select unit_id from submissions")}
        noted = conn.execute(
            "select count(*) from inbound where detail like '%message_id_shared%'"
        ).fetchone()
    assert kinds == [("submission", "receipt"), ("submission", "receipt"), ("duplicate", "ignored")]
    assert len(units) == 2 and noted == (1,)
    for unit in p.units:  # the invitation and one receipt each
        assert len(mail_world.messages(unit.leader_email)) == 2


def test_unknown_sender_with_valid_form_goes_to_review_and_can_be_assigned(tmp_path, mail_world):
    """A valid form from an outside address is kept for review; assigning it registers it."""
    p = mail_project(tmp_path, mail_world, 2)
    p.cli("send")
    unit = p.units[0]
    original = invitation(mail_world, unit)
    (att,) = list(original.iter_attachments())
    data = fill(att.get_content(), FORM, valid_answers(1), unit.language)
    outsider = mail_world.new_user("outsider", domain="elsewhere.test")
    mail_world.deliver(reply(unit, original, (att.get_filename(), data), sender=outsider), p.service)
    assert p.cli("poll").exit_code == 0
    assert len(mail_world.messages(p.service, FOLDERS["review"])) == 1
    listing = p.cli("review").output
    assert "1 message(s) need review" in listing and outsider in listing
    with db(p) as conn:
        (row_id,) = conn.execute("select id from inbound where outcome = 'review'").fetchone()
    assert p.cli("review", "assign", str(row_id), "--unit", unit.code, "--note", "checked").exit_code == 0
    assert json.loads(p.cli("status", "--json").output)["total"]["valid"] == 1
    assert len(mail_world.messages(p.service, FOLDERS["review"])) == 0
    assert len(mail_world.messages(p.service, FOLDERS["processed"])) == 1
    assert len(mail_world.messages(outsider)) == 1  # the receipt went to whoever sent it


def form_reply(p: Project, unit, variant: int) -> bytes:
    """A leader's reply carrying their unit's own form, filled in, built without the invitation."""
    from service.forms.build import build_form
    from service.mail import tokens

    secret = p.env["SKJEMAPOST_SECRET"].encode()
    blank = build_form(
        FORM,
        unit,
        lang=unit.language,
        reference=tokens.reference(secret, "aml-2020", unit.code),
        stamp=tokens.stamp(secret, "aml-2020", unit.code),
        campaign_title="Oppsummering og evaluering 2020",
        deadline=dt.date(2020, 12, 16),
    )
    original = EmailMessage()
    original["From"], original["Subject"] = p.service, f"Skjema for {unit.name}"
    original["Message-ID"] = make_msgid(domain="example.test")
    original["Date"] = format_datetime(dt.datetime(2020, 11, 23, 9, 0, tzinfo=dt.UTC))
    return reply(unit, original, ("skjema.xlsx", fill(blank, FORM, valid_answers(variant), unit.language)))


def test_sigkill_during_a_poll_of_200_then_rerun_processes_each_exactly_once(tmp_path, mail_world, db_url):
    """Killed mid-poll and run again (on SQLite and on PostgreSQL): 200 messages, 200 submissions,
    200 receipts, none twice."""
    p = mail_project(tmp_path, mail_world, 200, sent_folder="Sent")
    p.use_database(db_url)
    mail_world.add_users(u.leader_email for u in p.units)
    for i, unit in enumerate(p.units):
        mail_world.deliver(form_reply(p, unit, i), p.service, mail_from=unit.leader_email)
    proc = p.popen(*DURING, "poll")
    wait_for(lambda: processed(p) >= 60 or proc.poll() is not None, "60 messages processed")
    proc.kill()
    proc.wait(10)
    assert processed(p) < 200  # it really was cut short
    result = p.cli(*DURING, "poll")
    assert result.exit_code == 0, result.output
    p.cli(*DURING, "poll")  # files our own sent copies; must change nothing else
    assert p.query("select count(*), count(distinct message_id) from inbound where kind = 'submission'") == [
        (200, 200)
    ]
    assert p.query("select count(*), count(distinct unit_id) from submissions") == [(200, 200)]
    assert p.query("select count(*) from outbox where kind = 'leader-receipt'") == [(200,)]
    assert p.query("select status from outbox group by status") == [("sent",)]  # notices too, once each
    receipts = Counter(u.code for u in p.units for _ in mail_world.messages(u.leader_email))
    assert set(receipts.values()) == {1}, [c for c, n in receipts.items() if n != 1]
    assert mail_world.messages(p.service) == []
    assert len(mail_world.messages(p.service, FOLDERS["processed"])) == 200


def test_new_uidvalidity_rescans_without_duplicating_anything(tmp_path, mail_world):
    """The inbox folder recreated with the same messages: rescanned, nothing processed twice."""
    p = mail_project(tmp_path, mail_world, 4)
    text = p.config.read_text().replace("[imap]\n", '[imap]\ninbox = "Svar"\n')
    p.config.write_text(text)
    raws = [form_reply(p, unit, i) for i, unit in enumerate(p.units[:3])]
    with mail_world.mailbox(p.service, folder=None) as box:
        box.folder.create("Svar")
        for raw in raws[:2]:
            box.append(raw, "Svar")
    assert "polled: 2 new" in p.cli(*DURING, "poll").output
    with mail_world.mailbox(p.service, folder=None) as box:
        box.folder.delete("Svar")
        box.folder.create("Svar")  # a new folder: a new UIDVALIDITY
        for raw in raws:  # the two already processed, and one new
            box.append(raw, "Svar")
    out = p.cli(*DURING, "poll").output
    assert "UIDVALIDITY changed" in out and "polled: 3 new" in out
    with db(p) as conn:
        assert conn.execute("select count(*) from inbound").fetchone() == (3,)
        assert conn.execute("select count(*) from submissions").fetchone() == (3,)
        assert conn.execute("select count(*) from outbox where kind = 'leader-receipt'").fetchone() == (3,)
    assert mail_world.messages(p.service, "Svar") == []
    assert sum(len(mail_world.messages(u.leader_email)) for u in p.units) == 3


def test_watch_picks_up_a_reply_by_idle_and_stops_on_sigterm(tmp_path, mail_world):
    """poll --watch registers a reply that arrives while it waits, and SIGTERM ends it cleanly."""
    import signal

    p = mail_project(tmp_path, mail_world, 2)
    proc = p.popen("poll", "--watch")

    def registered() -> int:
        try:
            with db(p) as conn:
                return conn.execute("select count(*) from submissions").fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    wait_for(lambda: proc.poll() is not None or _idling(mail_world, p.service), "the watcher in IDLE")
    mail_world.deliver(form_reply(p, p.units[0], 1), p.service)
    wait_for(lambda: registered() == 1 or proc.poll() is not None, "the reply to be registered")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped" in out and registered() == 1


def _idling(world, user: str) -> bool:
    """True once Dovecot shows an IMAP session of ``user`` in IDLE (doveadm who)."""
    import subprocess

    out = subprocess.run(
        ["doveadm", "-c", str(world.dir / "dovecot.conf"), "who", "-1"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return user in out


def test_sigterm_during_a_poll_finishes_the_message_in_hand_and_exits(tmp_path, mail_world):
    """SIGTERM mid-poll: exit 0 with nothing half-done; the next poll takes the rest, once."""
    import signal

    p = mail_project(tmp_path, mail_world, 60)
    for i, unit in enumerate(p.units):
        mail_world.deliver(form_reply(p, unit, i), p.service, mail_from=unit.leader_email)
    proc = p.popen("poll")
    wait_for(lambda: processed(p) >= 10 or proc.poll() is not None, "10 messages processed")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    with db(p) as conn:
        assert conn.execute("select count(*) from inbound where status = 'stored'").fetchone() == (0,)
        first = conn.execute("select count(*) from inbound").fetchone()[0]
    assert first < 60 and "stopped early" in out
    assert p.cli("poll").exit_code == 0
    with db(p) as conn:
        subs = conn.execute("select count(*), count(distinct unit_id) from submissions").fetchone()
    assert subs == (60, 60)
    assert mail_world.messages(p.service) == []


def test_no_address_gets_more_than_the_hourly_cap(tmp_path, mail_world):
    """Six faulty forms from one leader in an hour: the invitation and four corrections go out,
    the rest are registered but not answered, so no loop can run."""
    p = mail_project(tmp_path, mail_world, 1)
    p.cli("send")
    unit = p.units[0]
    original = invitation(mail_world, unit)
    (att,) = list(original.iter_attachments())
    for i in range(6):
        data = fill(att.get_content(), FORM, answers_with_mistakes(i), unit.language)
        mail_world.deliver(reply(unit, original, (att.get_filename(), data)), p.service)
    assert p.cli("poll").exit_code == 0
    assert len(mail_world.messages(unit.leader_email)) == 5  # mail.max_per_address_per_hour = 5
    with db(p) as conn:
        outcomes = Counter(dict(conn.execute("select outcome, count(*) from inbound group by outcome")))
        versions = conn.execute("select count(*) from submissions").fetchone()[0]
    assert outcomes == Counter({"correction": 4, "correction-capped": 2}) and versions == 6


def test_the_same_form_attached_twice_counts_once_and_two_versions_go_to_review(tmp_path, mail_world):
    """One file attached twice: one version, one receipt. Two different files for one unit in one
    mail: a person decides which is meant."""
    p = mail_project(tmp_path, mail_world, 2)
    p.cli("send")
    first, second = p.units
    for unit, variants in ((first, (1, 1)), (second, (1, 2))):
        original = invitation(mail_world, unit)
        (att,) = list(original.iter_attachments())
        # one file per variant: openpyxl stamps the save time, so filling twice can differ by a second
        made = {v: fill(att.get_content(), FORM, valid_answers(v), unit.language) for v in set(variants)}
        files = [made[v] for v in variants]
        msg = parse(reply(unit, original, (att.get_filename(), files[0])))
        msg.add_attachment(
            files[1],
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            filename="kopi.xlsx",
        )
        mail_world.deliver(msg.as_bytes(policy=email.policy.SMTP), p.service)
    assert p.cli("poll").exit_code == 0
    with db(p) as conn:
        outcomes = dict(
            conn.execute(
                "select units.code, inbound.outcome from inbound join units on units.id = inbound.unit_id"
            ).fetchall()
        )
        versions = conn.execute("select count(*) from submissions").fetchone()[0]
    assert outcomes == {first.code: "receipt", second.code: "review"} and versions == 1
    assert len(mail_world.messages(first.leader_email)) == 2
    assert len(mail_world.messages(second.leader_email)) == 1


def _body_hash_by_definition(raw: bytes) -> str:
    """content_hash as defined: what follows the first blank line, leading empty lines dropped,
    CRLF as LF; the whole message when it has no blank line."""
    import hashlib

    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    body = raw[min(ends) :].lstrip(b"\r\n") if ends else raw
    return hashlib.sha256(body.replace(b"\r\n", b"\n")).hexdigest()


def test_content_hash_is_the_same_however_the_bytes_are_cut():
    """The content hash is taken a slice at a time (a large message is never copied whole): the
    blank line and a CRLF may fall across two slices, and the hash is still the definition's."""
    import random

    from service.jobs.poll import body_hash, content_hash

    rnd = random.Random(13)
    pieces = [b"\r\n", b"\n", b"\r", b"a", b": ", b"\r\n\r\n"]
    for _ in range(5000):
        raw = b"".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 30)))
        cuts = sorted(rnd.sample(range(len(raw) + 1), min(len(raw) + 1, rnd.randint(0, 6))))
        chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
        assert body_hash(chunks) == content_hash(raw) == _body_hash_by_definition(raw), (raw, chunks)
    headers = b"Received: by mx\r\nSubject: x\r\n\r\n"
    assert content_hash(headers + b"body\r\n") == content_hash(b"Subject: x\n\nbody\n")
    assert content_hash(headers + b"body\r\n") != content_hash(headers + b"other body\r\n")


def test_fetch_groups_are_bounded_by_count_and_bytes_and_a_large_message_comes_alone():
    """Small messages are fetched together up to the count and the byte budget; a message larger
    than the budget is fetched alone; the order is kept and no UID is left out."""
    from service.jobs.poll import fetch_groups

    sizes = {1: 10, 2: 10, 3: 500, 4: 10, 5: 60, 6: 50, 7: 10, 8: 10, 9: 10}
    groups = list(fetch_groups(list(sizes), sizes, count=3, budget=100))
    assert groups == [[1, 2], [3], [4, 5], [6, 7, 8], [9]]
    assert list(fetch_groups([1, 2, 3], {}, count=2, budget=100)) == [[1, 2], [3]]  # sizes unknown
    assert list(fetch_groups([], sizes, count=3, budget=100)) == []


def _big_reply(p: Project, unit, i: int, mb: float) -> bytes:
    """A leader's reply with the filled form and a scanned PDF of about ``mb`` MB as mail."""
    import os

    msg = parse(form_reply(p, unit, i))
    pdf = b"%PDF-1.7\n" + os.urandom(int(mb * 1_000_000 * 57 / 78))
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="referat.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def test_memory_of_a_poll_does_not_grow_with_the_number_of_large_messages(tmp_path, mail_world):
    """Four large replies cost a poll no more memory than one: each is fetched alone, handled and
    released before the next (Python's allocations, traced; one message is 3 MB as mail). A first
    poll, not traced, loads what is loaded once (both languages' templates and locale data)."""
    import tracemalloc

    from service.app.wiring import App
    from service.config import settings as config_mod
    from service.jobs.poll import poll_once
    from service.net.imap import connect

    p = mail_project(tmp_path, mail_world, 8)
    app = App(config_mod.load(p.config, p.env))
    processor = app.processor()

    def poll(units: list, *, traced: bool) -> int:
        with mail_world.mailbox(p.service) as box:
            for unit in units:
                box.append(_big_reply(p, unit, p.units.index(unit), 3), "INBOX")
        box = connect(app.imap_settings())
        if traced:
            tracemalloc.start()
        try:
            report = poll_once(box, app.store, processor, app.archive, app.clock, fetch_bytes=1_000_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            box.logout()
        assert report.fetched == len(units) and report.outcomes == Counter({"receipt": len(units)})
        return peak

    poll(p.units[:3], traced=False)  # units 0 and 1 in Norwegian, 2 in English
    one = poll(p.units[3:4], traced=True)
    four = poll(p.units[4:], traced=True)
    assert four < one + 3_000_000, (one, four)  # the old poll held all four: about +15 MB
    again = poll_once(connect(app.imap_settings()), app.store, processor, app.archive, app.clock)
    assert again.fetched == 0
    app.close()
