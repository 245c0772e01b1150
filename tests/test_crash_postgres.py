"""Two instances on one PostgreSQL (docs/OPERATIONS.md, "Two instances"): a `poll` started by
hand while another works on the same database. The crash tests (SIGKILL mid-poll, SIGKILL on a
held reply, two `run`s) run on SQLite and PostgreSQL in test_poll.py, test_send.py and
test_run.py (the ``db_url`` fixture)."""

from __future__ import annotations

from collections import Counter

import pytest
from projects import mail_project
from test_poll import DURING, form_reply

pytestmark = pytest.mark.servers


def test_a_poll_by_hand_beside_another_poll_duplicates_nothing(tmp_path, mail_world, pg):
    """Two `poll`s on one mailbox and one PostgreSQL at the same time, then one more: each message
    has one row, one decision, one submission, one receipt, and is moved once.

    A poll takes the runner lock, so while one works the other is refused at once and says why
    (the mailbox side is not made for two readers: moves of moved messages, folder creation).
    Behind that, the store holds on its own: a UID gets one row, and only one decision commits
    onto it. SMTP is down while they poll (one `send` afterwards), so the receipts wait."""
    from harness.mailservers import free_ports

    n = 80
    p = mail_project(tmp_path, mail_world, n)
    p.use_database(pg.fresh_database())
    for i, unit in enumerate(p.units):
        mail_world.deliver(form_reply(p, unit, i), p.service, mail_from=unit.leader_email)
    working = p.config.read_text()
    p.config.write_text(working.replace(f"port = {mail_world.smtp_port}", f"port = {free_ports(1)[0]}"))
    first, second = p.popen(*DURING, "poll"), p.popen(*DURING, "poll")
    outs = [proc.communicate(timeout=300) for proc in (first, second)]
    codes = [proc.returncode for proc in (first, second)]
    assert codes.count(4) <= 1 and set(codes) <= {0, 3, 4}, outs  # 3: SMTP down for the receipts
    assert all("cannot poll" in err for code, (_, err) in zip(codes, outs, strict=True) if code == 4)
    assert p.cli(*DURING, "poll").exit_code in (0, 3)  # finishes whatever a failed poll left; SMTP still down
    assert p.query("select count(*), count(distinct uid), count(distinct message_id) from inbound") == [
        (n, n, n)
    ]
    assert p.query("select count(*) from inbound where status != 'done'") == [(0,)]
    assert p.query("select count(*), count(distinct unit_id) from submissions") == [(n, n)]
    assert p.query("select count(*) from events where kind like 'inbound.%'") == [(n,)]
    assert p.query("select count(*) from outbox where kind = 'leader-receipt'") == [(n,)]
    assert mail_world.messages(p.service) == []  # every message moved out of the inbox
    p.config.write_text(working)
    result = p.cli(*DURING, "send")
    assert result.exit_code == 0, result.output
    # `send` also invites every unit: each leader has its invitation and its one receipt
    leader = "select kind, status, count(*) from outbox where kind like 'leader-%' group by kind, status"
    assert sorted(p.query(leader)) == [("leader-invitation", "sent", n), ("leader-receipt", "sent", n)]
    # the notices some forms call for (special challenges, help) went too, each once
    assert [s for (s,) in p.query("select distinct status from outbox")] == ["sent"]
    got = Counter(len(mail_world.messages(u.leader_email)) for u in p.units)
    assert got == Counter({2: n}), (got, result.output)
