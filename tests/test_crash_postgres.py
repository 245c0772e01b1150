"""The crash tests again, on a real PostgreSQL (tests/pgserver.py) instead of SQLite: SIGKILL in the
middle of a poll, SIGKILL while the relay holds a reply, two `run`s on one database; and a `poll`
started by hand while another poll works on the same database (docs/OPERATIONS.md, "Two
instances"). The SQLite variants stay in test_poll.py, test_send.py and test_run.py."""

from __future__ import annotations

import json
import signal
from collections import Counter

import pytest
import sqlalchemy as sa
from projects import Project, mail_project
from test_poll import FOLDERS, form_reply
from test_run import AS_OF, spring
from test_send import wait_for

pytestmark = pytest.mark.servers


def on_postgres(p: Project, url: str) -> Project:
    """Point the project at ``url`` (a fresh database) and set it up there."""
    p.config.write_text(p.config.read_text().replace('data_dir = "data"',
                                                     f'data_dir = "data"\ndatabase_url = "{url}"'))
    p.setup()
    p.db = sa.create_engine(url, poolclass=sa.pool.NullPool)
    return p


def q(p: Project, sql: str) -> list[tuple]:
    with p.db.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def processed(p: Project) -> int:
    return q(p, "select count(*) from inbound where status != 'stored'")[0][0]


def test_sigkill_during_a_poll_of_200_then_rerun_processes_each_exactly_once(tmp_path, mail_world, pg):
    """Killed mid-poll and run again, on PostgreSQL: 200 messages, 200 submissions, 200 receipts."""
    p = on_postgres(mail_project(tmp_path, mail_world, 200, sent_folder="Sent"), pg.fresh_database())
    for i, unit in enumerate(p.units):
        mail_world.deliver(form_reply(p, unit, i), p.service, mail_from=unit.leader_email)
    proc = p.popen("poll")
    wait_for(lambda: processed(p) >= 60 or proc.poll() is not None, "60 messages processed")
    proc.kill()
    proc.wait(10)
    assert processed(p) < 200  # it really was cut short
    result = p.cli("poll")
    assert result.exit_code == 0, result.output
    p.cli("poll")  # files our own sent copies; must change nothing else
    assert q(p, "select count(*), count(distinct message_id) from inbound "
                "where kind = 'submission'") == [(200, 200)]
    assert q(p, "select count(*), count(distinct unit_id) from submissions") == [(200, 200)]
    assert q(p, "select count(*) from outbox where kind = 'leader-receipt'") == [(200,)]
    assert q(p, "select status, count(*) from outbox group by status") == [("sent", 200)]
    receipts = Counter(u.code for u in p.units for _ in mail_world.messages(u.leader_email))
    assert set(receipts.values()) == {1}, [c for c, n in receipts.items() if n != 1]
    assert mail_world.messages(p.service) == []
    assert len(mail_world.messages(p.service, FOLDERS["processed"])) == 200


@pytest.mark.parametrize("sent_folder", ["Sent", ""], ids=["with-sent-check", "without-check"])
def test_sigkill_in_flight_then_rerun(tmp_path, mail_world, pg, sent_folder):
    """SIGKILL with one message delivered but unacknowledged, on PostgreSQL: every unit gets its
    invitation; with the Sent check no duplicate at all, without it only the one in flight."""
    p = on_postgres(mail_project(tmp_path, mail_world, 30, sent_folder=sent_folder, max_connections=1),
                    pg.fresh_database())
    victim = p.units[12]
    mail_world.smtp_hold(30, to=victim.leader_email)
    proc = p.popen("send")
    wait_for(lambda: any(e.get("event") == "held" and victim.leader_email in e["rcpt_tos"]
                         for e in mail_world.smtp_journal()), "the held message")
    proc.kill()
    proc.wait(10)
    before = dict(q(p, "select status, count(*) from outbox group by status"))
    assert before["sending"] == 1 and before["queued"] > 0 and before["sent"] > 0, before
    result = p.cli("send")
    assert result.exit_code == 0, result.output
    counts = {u.code: len(mail_world.messages(u.leader_email)) for u in p.units}
    assert all(n >= 1 for n in counts.values()), counts
    if sent_folder:
        assert set(counts.values()) == {1}
        assert "1 found already sent" in result.output
        assert len(mail_world.messages(p.service, "Sent")) == 30
    else:
        assert counts[victim.code] == 2 and sum(counts.values()) == 31
    assert q(p, "select status, count(*) from outbox group by status") == [("sent", 30)]


def test_two_runners_against_one_database_only_one_sends(tmp_path, mail_world, pg):
    """Two `run`s on one PostgreSQL: one holds the lock and sends each invitation once; the other
    waits; both stop cleanly on SIGTERM."""
    p = mail_project(tmp_path, mail_world, 6)
    spring(p)
    on_postgres(p, pg.fresh_database())

    def sent() -> int:
        return q(p, "select count(*) from outbox where status = 'sent' and kind = 'leader-invitation'")[0][0]

    first, second = p.popen("--as-of", AS_OF, "run"), p.popen("--as-of", AS_OF, "run")
    wait_for(lambda: sent() == 6 or first.poll() is not None or second.poll() is not None,
             "the invitations to go out")
    status = json.loads(p.cli("status", "--json").output)
    for proc in (first, second):
        proc.send_signal(signal.SIGTERM)
    logs = [proc.communicate(timeout=30) for proc in (first, second)]
    assert [proc.returncode for proc in (first, second)] == [0, 0], logs
    assert all(len(mail_world.messages(u.leader_email)) == 1 for u in p.units)
    assert status["runner"]["holder"].rsplit(":", 1)[1] in {str(first.pid), str(second.pid)}
    took = [err for _, err in logs if '"event": "lock.taken"' in err]
    waited = [err for _, err in logs if '"event": "lock.waiting"' in err]
    assert len(took) == 1 and len(waited) == 1


def test_a_poll_by_hand_beside_another_poll_duplicates_nothing(tmp_path, mail_world, pg):
    """Two `poll`s on one mailbox and one PostgreSQL at the same time, then one more: each message
    has one row, one decision, one submission, one receipt, and is moved once.

    A poll takes the runner lock, so while one works the other is refused at once and says why
    (the mailbox side is not made for two readers: moves of moved messages, folder creation).
    Behind that, the store holds on its own: a UID gets one row, and only one decision commits
    onto it. SMTP is down while they poll (one `send` afterwards), so the receipts wait."""
    from mailservers import free_ports

    n = 80
    p = on_postgres(mail_project(tmp_path, mail_world, n), pg.fresh_database())
    for i, unit in enumerate(p.units):
        mail_world.deliver(form_reply(p, unit, i), p.service, mail_from=unit.leader_email)
    working = p.config.read_text()
    p.config.write_text(working.replace(f"port = {mail_world.smtp_port}", f"port = {free_ports(1)[0]}"))
    first, second = p.popen("poll"), p.popen("poll")
    outs = [proc.communicate(timeout=300) for proc in (first, second)]
    codes = [proc.returncode for proc in (first, second)]
    assert codes.count(4) <= 1 and set(codes) <= {0, 3, 4}, outs  # 3: SMTP down for the receipts
    assert all("cannot poll" in err for code, (_, err) in zip(codes, outs, strict=True) if code == 4)
    assert p.cli("poll").exit_code in (0, 3)  # finishes whatever a failed poll left; SMTP still down
    assert q(p, "select count(*), count(distinct uid), count(distinct message_id) "
                "from inbound") == [(n, n, n)]
    assert q(p, "select count(*) from inbound where status != 'done'") == [(0,)]
    assert q(p, "select count(*), count(distinct unit_id) from submissions") == [(n, n)]
    assert q(p, "select count(*) from events where kind like 'inbound.%'") == [(n,)]
    assert q(p, "select count(*) from outbox where kind = 'leader-receipt'") == [(n,)]
    assert mail_world.messages(p.service) == []  # every message moved out of the inbox
    p.config.write_text(working)
    result = p.cli("send")
    assert result.exit_code == 0, result.output
    # `send` also invites every unit: each leader has its invitation and its one receipt
    assert sorted(q(p, "select kind, status, count(*) from outbox group by kind, status")) == \
        [("leader-invitation", "sent", n), ("leader-receipt", "sent", n)]
    got = Counter(len(mail_world.messages(u.leader_email)) for u in p.units)
    assert got == Counter({2: n}), (got, result.output)
