"""The store: migrations, roster import with history, and the status queries."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from service.errors import StoreError, UnknownUnitError
from service.models import Unit
from service.store import tables as t
from service.store.database import Store
from service.store.roster import CampaignInfo

NOW = dt.datetime(2020, 11, 23, 8, 0, tzinfo=dt.UTC)
INFO = CampaignInfo(
    "aml-2020",
    "Test",
    "oppsummering-og-evaluering",
    1,
    dt.date(2020, 11, 23),
    dt.date(2020, 12, 16),
    "Europe/Oslo",
)


def unit(code: str, faculty: str = "IE", **kw) -> Unit:
    base = dict(
        code=code,
        name=f"Unit {code}",
        faculty=faculty,
        leader_name="Leder",
        leader_email=f"{code.lower()}@example.edu",
        language="nb",
    )
    return Unit(**(base | kw))


@pytest.fixture
def store(db_url) -> Store:
    s = Store.open(db_url)
    s.upgrade()
    s.ensure_campaign(INFO, NOW)
    yield s
    s.close()


def test_migrations_produce_exactly_the_declared_schema(db_url):
    """After `upgrade`, alembic finds no difference between the database and tables.py."""
    s = Store.open(db_url)
    assert s.upgrade() == (None, "0002_cosign")
    with s.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert diff == []
    assert s.upgrade() == ("0002_cosign", "0002_cosign")
    s.close()


def test_store_refuses_to_work_on_a_database_not_set_up(db_url):
    """A database without the schema gives a clear 'run skjemapost init'."""
    s = Store.open(db_url)
    with pytest.raises(StoreError, match="skjemapost init"):
        s.require_current()
    s.close()


def test_bad_url_is_a_store_error():
    """A database URL that is not one is reported as such."""
    with pytest.raises(StoreError, match="not a database URL"):
        Store.open("not a url")


def test_times_come_back_aware_utc(store):
    """What goes in as UTC comes back as UTC, not naive."""
    events = store.events("aml-2020", "campaign.")
    assert events[0]["at"] == NOW and events[0]["at"].tzinfo is not None


def test_reimport_reports_added_changed_removed_and_keeps_history(store):
    """A re-import names each added, changed and removed unit; removed ones are only deactivated."""
    first = store.import_roster("aml-2020", [unit("A"), unit("B"), unit("C")], NOW)
    assert first.added == ("A", "B", "C")
    later = NOW + dt.timedelta(days=3)
    diff = store.import_roster(
        "aml-2020", [unit("A"), unit("B", leader_email="new@example.edu"), unit("D")], later
    )
    assert diff.added == ("D",)
    assert [(c.code, c.fields) for c in diff.changed] == [("B", ("leader_email",))]
    assert diff.removed == ("C",)
    assert diff.unchanged == 1
    assert [u.code for u in store.units("aml-2020")] == ["A", "B", "D"]
    assert [u.code for u in store.units("aml-2020", include_inactive=True)] == ["A", "B", "C", "D"]
    assert store.unit("aml-2020", "c").code == "C"  # still known, for old mail
    changed = store.events("aml-2020", "unit.changed")
    assert changed[0]["unit"] == "B"
    assert changed[0]["detail"]["leader_email"] == {"from": "b@example.edu", "to": "new@example.edu"}
    back = store.import_roster(
        "aml-2020", [unit("A"), unit("B", leader_email="new@example.edu"), unit("C"), unit("D")], later
    )
    assert back.reactivated == ("C",) and back.added == ()


def test_unknown_unit(store):
    """Asking for a unit the roster never had raises UnknownUnitError."""
    with pytest.raises(UnknownUnitError, match="ZZ"):
        store.unit("aml-2020", "ZZ")


def test_faculty_progress_counts_submitted_valid_and_missing(store):
    """Status counts come from real queries over units and their current submissions."""
    store.import_roster("aml-2020", [unit("A"), unit("B"), unit("C"), unit("N", "NV")], NOW)
    assert [dataclasses.astuple(p) for p in store.faculty_progress("aml-2020")] == [
        ("IE", 3, 0, 0, 3),
        ("NV", 1, 0, 0, 1),
    ]
    with store.engine.connect() as conn:
        ids = {code: i for i, code in conn.execute(sa.select(t.units.c.id, t.units.c.code))}
    rows = [
        ("A", 1, True, False),
        ("A", 2, True, True),  # A: two versions, the newest current
        ("B", 1, False, False),
    ]  # B: only an invalid one
    with store.engine.begin() as conn:
        for code, version, valid, current in rows:
            conn.execute(
                t.submissions.insert().values(
                    campaign_id="aml-2020",
                    unit_id=ids[code],
                    version=version,
                    received_at=NOW,
                    sender="x@example.edu",
                    valid=valid,
                    current=current,
                    answers={},
                    problems=[],
                    flags=[],
                    file_name="f.xlsx",
                    file_sha256="0" * 64,
                    created_at=NOW,
                )
            )
    assert [dataclasses.astuple(p) for p in store.faculty_progress("aml-2020")] == [
        ("IE", 3, 2, 1, 2),
        ("NV", 1, 0, 0, 1),
    ]


def test_the_newest_valid_version_by_time_received_is_current(store):
    """An older form that arrives late is kept as a version but does not replace the newer one;
    an invalid one never becomes current."""
    from service.models import Decision, NewSubmission

    store.import_roster("aml-2020", [unit("A")], NOW)

    def submit(n: int, hours: int, valid: bool) -> None:
        row = store.store_inbound(
            "aml-2020",
            message_id=f"<m{n}@x>",
            folder="INBOX",
            uidvalidity=1,
            uid=n,
            received_at=NOW,
            sender="a@example.edu",
            subject="s",
            raw_path="p",
            sha256=str(n),
            now=NOW,
        )
        sub = NewSubmission(
            "A", NOW + dt.timedelta(hours=hours), "a@example.edu", valid, {}, (), (), "f.xlsx", "0" * 64
        )
        store.record_decision(
            "aml-2020", row, Decision("submission", "receipt", "F", "A", submissions=(sub,)), NOW
        )

    submit(1, hours=5, valid=True)  # the newest
    submit(2, hours=1, valid=True)  # older, arrives later
    submit(3, hours=9, valid=False)  # newest of all, but invalid
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.submissions.c.version, t.submissions.c.current).order_by(t.submissions.c.version)
        ).all()
    assert [tuple(r) for r in rows] == [(1, True), (2, False), (3, False)]
    assert [dataclasses.astuple(p) for p in store.faculty_progress("aml-2020")] == [("IE", 1, 1, 1, 0)]
