"""The store on a real PostgreSQL 15 (tests/harness/pgserver.py): migrations, time zones, the runner lock
under real concurrency, and a whole CLI flow. The store tests in test_store.py also run here, as
their `[postgresql]` variant."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from projects import new_project
from test_store import INFO, NOW

from service.store import tables as t
from service.store.base import MIGRATIONS
from service.store.database import Store

pytestmark = pytest.mark.servers

TTL = dt.timedelta(minutes=2)


@pytest.fixture
def pg_url(pg) -> str:
    return pg.fresh_database()


@pytest.fixture
def pg_store(pg_url) -> Store:
    s = Store.open(pg_url)
    s.upgrade()
    s.ensure_campaign(INFO, NOW)
    yield s
    s.close()


def test_upgrade_on_an_empty_postgresql_database_gives_exactly_tables_py(pg_url):
    """upgrade() migrates a fresh PostgreSQL database to head with no difference from tables.py."""
    s = Store.open(pg_url)
    assert s.engine.dialect.name == "postgresql" and s.engine.dialect.driver == "psycopg"
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert s.upgrade() == (None, head)
    with s.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []
        types = dict(
            conn.execute(
                sa.text(
                    "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'public'"
                )
            ).all()
        )
    assert types["events.at"] == "timestamp with time zone"
    assert types["runner.expires_at"] == "timestamp with time zone"
    assert types["submissions.valid"] == "boolean" and types["outbox.payload"] == "bytea"
    assert s.upgrade() == (head, head)
    s.require_current()
    s.close()


def test_aware_times_round_trip_as_utc_whatever_the_session_time_zone(pg_url):
    """Aware times in any zone come back equal, microsecond-exact and in UTC, even when the
    PostgreSQL session runs in another zone; a naive time is refused."""
    with sa.create_engine(pg_url).connect() as conn:  # new sessions of this database default to it
        conn.execute(sa.text(f"ALTER DATABASE {conn.engine.url.database} SET timezone TO 'America/New_York'"))
        conn.commit()
    s = Store.open(pg_url)
    s.upgrade()
    oslo = dt.datetime(2020, 11, 23, 9, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Oslo"))
    assert s.ensure_campaign(INFO, oslo)
    (event,) = s.events("aml-2020", "campaign.")
    assert event["at"] == oslo and event["at"].tzinfo is dt.UTC
    assert event["at"] == dt.datetime(2020, 11, 23, 8, 30, 15, 123456, tzinfo=dt.UTC)
    with s.engine.connect() as conn:
        assert conn.execute(sa.text("SHOW timezone")).scalar() == "America/New_York"
        assert conn.execute(sa.text("SELECT at AT TIME ZONE 'UTC' FROM events")).scalar() == dt.datetime(
            2020, 11, 23, 8, 30, 15, 123456
        )
    # aggregates (MAX) keep the column type, so they come back in UTC too
    kiribati = dt.datetime(2020, 11, 24, 1, 0, tzinfo=ZoneInfo("Pacific/Kiritimati"))  # UTC+14
    with s.engine.begin() as conn:
        conn.execute(
            t.outbox.insert().values(
                campaign_id="aml-2020",
                kind="digest",
                dedupe_key="k1",
                message_id="<m1@x>",
                recipients=["a@example.test"],
                to_address="a@example.test",
                subject="s",
                status="queued",
                attempts=0,
                created_at=kiribati,
                updated_at=kiribati,
            )
        )
    latest = s.last_mail_of_kind("aml-2020", "digest")
    assert latest == kiribati and latest.tzinfo is dt.UTC and latest.hour == 11
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        s.acquire_runner("aml-2020", "h:1", dt.datetime(2020, 11, 23, 9, 0), TTL)
    s.close()


# -- the runner lock under real concurrency -----------------------------------------------------


def _race(url: str, campaign_id: str, holders: list[str], now: dt.datetime) -> dict[str, bool]:
    """Every holder calls acquire_runner at once, each from its own thread and connection.

    A gate transaction holds LOCK TABLE runner IN SHARE MODE until every contender is blocked on
    it (seen in pg_locks), then commits: all of them then run their UPDATE at the same moment.
    """
    stores = [Store.open(url) for _ in holders]
    gate_engine = sa.create_engine(url)
    try:
        with gate_engine.connect() as gate, ThreadPoolExecutor(len(holders)) as pool:
            gate.execute(sa.text("LOCK TABLE runner IN SHARE MODE"))
            futures = {
                h: pool.submit(s.acquire_runner, campaign_id, h, now, TTL)
                for h, s in zip(holders, stores, strict=True)
            }
            deadline = time.monotonic() + 10
            with gate_engine.connect() as watch:
                while watch.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'runner'::regclass"
                    )
                ).scalar() < len(holders):
                    assert time.monotonic() < deadline, "the contenders never reached the lock"
                    assert not any(f.done() for f in futures.values()), "a contender got past the gate"
                    time.sleep(0.005)
            gate.commit()
            return {h: f.result(timeout=10) for h, f in futures.items()}
    finally:
        for s in stores:
            s.close()
        gate_engine.dispose()


def _campaign(store: Store) -> str:
    campaign_id = f"c-{uuid.uuid4().hex[:8]}"
    store.ensure_campaign(dataclasses.replace(INFO, id=campaign_id), NOW)
    return campaign_id


def test_two_runners_racing_for_a_new_lock_exactly_one_wins(pg_store, pg_url):
    """Two holders inserting the first lock row at the same moment: exactly one wins, every time."""
    for _ in range(10):
        campaign_id = _campaign(pg_store)
        won = _race(pg_url, campaign_id, ["host:1", "host:2"], NOW)
        assert sorted(won.values()) == [False, True], won
        assert pg_store.runner(campaign_id).holder == next(h for h, w in won.items() if w)


def test_a_live_lock_holds_and_an_expired_one_goes_to_exactly_one_other(pg_store, pg_url):
    """While the lock is alive only its holder has it; once expired exactly one contender takes it
    over, and the old holder's heartbeat then fails."""
    for _ in range(5):
        campaign_id = _campaign(pg_store)
        won = _race(pg_url, campaign_id, ["a:1", "b:2"], NOW)
        winner, loser = sorted(won, key=lambda h: not won[h])
        alive = NOW + TTL / 2
        assert _race(pg_url, campaign_id, [loser, "c:3"], alive) == {loser: False, "c:3": False}
        assert pg_store.heartbeat(campaign_id, winner, alive, TTL, {"last_cycle_at": "x"})
        assert pg_store.acquire_runner(campaign_id, winner, alive, TTL)  # renewing keeps it
        lock = pg_store.runner(campaign_id)
        assert (lock.holder, lock.acquired_at, lock.expires_at) == (winner, NOW, alive + TTL)
        expired = alive + TTL + dt.timedelta(seconds=1)
        taken = _race(pg_url, campaign_id, [loser, "c:3"], expired)
        assert sorted(taken.values()) == [False, True], taken
        new = next(h for h, w in taken.items() if w)
        lock = pg_store.runner(campaign_id)
        assert (lock.holder, lock.acquired_at) == (new, expired)
        assert not pg_store.heartbeat(campaign_id, winner, expired, TTL, {})
        assert not pg_store.acquire_runner(campaign_id, winner, expired, TTL)


def test_a_released_lock_is_free_for_the_next_runner(pg_store):
    """release_runner frees the lock at once, also for a holder whose clock is behind (a command
    run with an earlier --as-of), and the old holder's heartbeat no longer holds it."""
    assert pg_store.acquire_runner("aml-2020", "a:1", NOW, TTL)
    later = NOW + dt.timedelta(seconds=10)
    pg_store.release_runner("aml-2020", "a:1", later)
    assert pg_store.acquire_runner("aml-2020", "b:2", NOW - dt.timedelta(days=3), TTL)
    assert not pg_store.heartbeat("aml-2020", "a:1", later, TTL, {})


def test_many_unsynchronised_rounds_never_give_two_holders(pg_store, pg_url):
    """Two threads hammering acquire/heartbeat with a shared clock: never two holders at once."""
    campaign_id = _campaign(pg_store)
    barrier = threading.Barrier(2)
    wins: dict[int, list[str]] = {}
    lock = threading.Lock()

    def runner(holder: str) -> None:
        s = Store.open(pg_url)
        try:
            for step in range(40):
                barrier.wait(timeout=10)
                # every 4th step the lock has expired for everybody
                now = NOW + dt.timedelta(minutes=3 * (step // 4 + 1), seconds=step % 4)
                if s.acquire_runner(campaign_id, holder, now, TTL) and step % 4 == 0:
                    with lock:
                        wins.setdefault(step, []).append(holder)
        finally:
            s.close()

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(runner, "x:1"), pool.submit(runner, "y:2")]:
            f.result(timeout=60)
    assert sorted(wins) == list(range(0, 40, 4))
    assert all(len(holders) == 1 for holders in wins.values()), wins


# -- the command line ---------------------------------------------------------------------------


def test_cli_flow_on_postgresql(tmp_path, pg_url):
    """init, roster import, status --json, form build and a re-import with a removed unit all work
    on PostgreSQL, and nothing is written to a SQLite file."""
    p = new_project(tmp_path)
    text = p.config.read_text(encoding="utf-8")
    storage = '[storage]\ndata_dir = "data"'
    assert text.count(storage) == 1
    p.config.write_text(text.replace(storage, f'{storage}\ndatabase_url = "{pg_url}"'), encoding="utf-8")

    for args, expect in (
        (["init"], "database created (schema 0002_cosign)"),
        (["init"], "already up to date"),
        (["roster", "import"], "added (6)"),
    ):
        result = p.cli(*args)
        assert result.exit_code == 0 and expect in result.output, result.output

    doc = json.loads(p.cli("status", "--json").output)
    assert doc["campaign"] == "aml-2020" and doc["runner"] is None
    assert {f["faculty"]: f["units"] for f in doc["faculties"]} == {"HF": 2, "IE": 2, "NV": 2}
    assert doc["total"] == {"faculty": "total", "units": 6, "submitted": 0, "valid": 0, "missing": 6}

    unit = p.units[1]
    out = tmp_path / "form.xlsx"
    result = p.cli("form", "build", "--unit", unit.code, "-o", str(out))
    assert result.exit_code == 0, result.output
    values = [c.value for ws in openpyxl.load_workbook(out).worksheets for row in ws.iter_rows() for c in row]
    assert unit.code in values and unit.name in values

    gone = p.units[-1]
    p.write_roster(p.units[:-1])
    result = p.cli("roster", "import")
    assert result.exit_code == 0 and f"removed (deactivated) (1): {gone.code}" in result.output
    doc = json.loads(p.cli("status", "--json").output)
    assert doc["total"] == {"faculty": "total", "units": 5, "submitted": 0, "valid": 0, "missing": 5}
    assert gone.code not in p.cli("roster", "list").output
    assert gone.code in p.cli("roster", "list", "--all").output
    check = p.cli("check")
    assert check.exit_code == 0 and "all good" in check.output, check.output

    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(t.units.c.code, t.units.c.active)).all())
        kinds = set(conn.execute(sa.select(t.events.c.kind)).scalars())
    engine.dispose()
    assert len(rows) == 6 and [c for c, active in rows.items() if not active] == [gone.code]
    assert {"campaign.created", "unit.removed"} <= kinds, kinds
    assert not list(tmp_path.rglob("*.db"))
