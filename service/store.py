"""The store: the only module that speaks SQL. SQLite by default, any SQLAlchemy URL accepted.

Each public method is one transaction. Callers pass the time in (``now``): the store never reads
the clock, so a replayed campaign writes the times it would have written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from . import tables as t
from .errors import StoreError, UnknownUnitError
from .models import NewMail, Unit

MIGRATIONS = Path(__file__).parent / "migrations"
UNIT_FIELDS = tuple(f.name for f in fields(Unit))


@dataclass(frozen=True)
class CampaignInfo:
    id: str
    title: str
    form_id: str
    form_version: int
    opens: dt.date
    deadline: dt.date
    timezone: str


@dataclass(frozen=True)
class UnitChange:
    code: str
    fields: tuple[str, ...]  # which roster fields changed; empty for added/removed


@dataclass(frozen=True)
class RosterDiff:
    added: tuple[str, ...]
    changed: tuple[UnitChange, ...]
    removed: tuple[str, ...]
    reactivated: tuple[str, ...]
    unchanged: int


@dataclass(frozen=True)
class FacultyProgress:
    faculty: str
    units: int
    submitted: int  # units with at least one form received, valid or not
    valid: int  # units whose current version is valid
    missing: int  # active units without a valid form

    @property
    def percent(self) -> float:
        return 100.0 * self.valid / self.units if self.units else 0.0


# -- the outbox: values ----------------------------------------------------------------------
# A row per mail, created before anything is sent. status: queued -> sending -> sent | failed;
# "sending" is set just before a row's SMTP transaction, so after a crash only the rows left in
# "sending" can have gone out unrecorded.

OUTBOX_STATES = ("queued", "sending", "sent", "failed", "bounced")


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    unit_code: str | None
    dedupe_key: str
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    payload: bytes
    status: str
    attempts: int
    last_error: str | None


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url``; a SQLite file's folder is created if it is missing."""
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StoreError(f"storage.database_url {url!r} is not a database URL: {exc}") from None
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------

    def upgrade(self) -> tuple[str | None, str]:
        """Create or upgrade the schema to the newest migration; returns (before, after)."""
        with self.engine.begin() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(_alembic_config(conn), "head")
            after = MigrationContext.configure(conn).get_current_revision()
        return before, after or ""

    def require_current(self) -> None:
        """Raise StoreError unless the schema is at the newest migration."""
        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the database: {exc.orig}") from None
        if current is None:
            raise StoreError("the database is not set up; run `skjemapost init` first")
        if current != head:
            raise StoreError(f"the database is at {current}, the code needs {head}; "
                             "run `skjemapost init` to upgrade it")

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc

    # -- campaign and roster --------------------------------------------------------------------

    def ensure_campaign(self, info: CampaignInfo, now: dt.datetime) -> bool:
        """Create the campaign row, or bring it in line with the config. True if it was new."""
        values = {
            "title": info.title, "form_id": info.form_id, "form_version": info.form_version,
            "opens": info.opens, "deadline": info.deadline, "timezone": info.timezone,
        }
        with self._tx() as conn:
            found = conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == info.id)).first()
            if found is None:
                conn.execute(t.campaigns.insert().values(id=info.id, created_at=now,
                                                         updated_at=now, **values))
                _event(conn, info.id, None, now, "campaign.created", values)
                return True
            changed = {k: v for k, v in values.items() if getattr(found, k) != v}
            if changed:
                conn.execute(t.campaigns.update().where(t.campaigns.c.id == info.id)
                             .values(updated_at=now, **changed))
                _event(conn, info.id, None, now, "campaign.updated", changed)
            return False

    def campaign(self, campaign_id: str) -> CampaignInfo:
        with self._tx() as conn:
            row = conn.execute(sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id)).first()
        if row is None:
            raise StoreError(f"campaign {campaign_id!r} is not in the database; run `skjemapost init`")
        return CampaignInfo(row.id, row.title, row.form_id, row.form_version, row.opens,
                            row.deadline, row.timezone)

    def import_roster(self, campaign_id: str, roster: Sequence[Unit], now: dt.datetime) -> RosterDiff:
        """Make the campaign's units match ``roster``, in one transaction, logging every change.

        Units missing from the roster are deactivated (never deleted: their mail and submissions
        stay); units that come back are reactivated.
        """
        self.campaign(campaign_id)
        incoming = {u.code: u for u in roster}
        added, changed, removed, reactivated = [], [], [], []
        unchanged = 0
        with self._tx() as conn:
            existing = {r.code: r for r in conn.execute(
                sa.select(t.units).where(t.units.c.campaign_id == campaign_id))}
            for code, unit in incoming.items():
                values = {n: getattr(unit, n) for n in UNIT_FIELDS}
                row = existing.get(code)
                if row is None:
                    key = conn.execute(t.units.insert().values(
                        campaign_id=campaign_id, active=True, created_at=now, updated_at=now,
                        **values)).inserted_primary_key
                    uid = int(key[0]) if key else None
                    _event(conn, campaign_id, uid, now, "unit.added", values)
                    added.append(code)
                    continue
                diff = {n: {"from": getattr(row, n), "to": v}
                        for n, v in values.items() if getattr(row, n) != v}
                if not diff and row.active:
                    unchanged += 1
                    continue
                conn.execute(t.units.update().where(t.units.c.id == row.id)
                             .values(active=True, updated_at=now, **values))
                if not row.active:
                    _event(conn, campaign_id, row.id, now, "unit.reactivated", diff)
                    reactivated.append(code)
                if diff:
                    _event(conn, campaign_id, row.id, now, "unit.changed", diff)
                    changed.append(UnitChange(code, tuple(diff)))
            for code, row in existing.items():
                if code not in incoming and row.active:
                    conn.execute(t.units.update().where(t.units.c.id == row.id)
                                 .values(active=False, updated_at=now))
                    _event(conn, campaign_id, row.id, now, "unit.removed", {})
                    removed.append(code)
        return RosterDiff(tuple(added), tuple(changed), tuple(removed), tuple(reactivated), unchanged)

    def units(self, campaign_id: str, *, include_inactive: bool = False) -> list[Unit]:
        query = sa.select(t.units).where(t.units.c.campaign_id == campaign_id)
        if not include_inactive:
            query = query.where(t.units.c.active.is_(True))
        with self._tx() as conn:
            return [_unit(r) for r in conn.execute(query.order_by(t.units.c.faculty, t.units.c.code))]

    def unit(self, campaign_id: str, code: str) -> Unit:
        """The unit with ``code`` (active or not); UnknownUnitError if the roster never had it."""
        with self._tx() as conn:
            row = conn.execute(sa.select(t.units).where(
                t.units.c.campaign_id == campaign_id,
                sa.func.upper(t.units.c.code) == code.strip().upper())).first()
        if row is None:
            raise UnknownUnitError(code)
        return _unit(row)

    def events(self, campaign_id: str, kind_prefix: str = "") -> list[dict[str, Any]]:
        query = (sa.select(t.events.c.at, t.events.c.kind, t.events.c.detail, t.units.c.code)
                 .outerjoin(t.units, t.units.c.id == t.events.c.unit_id)
                 .where(t.events.c.campaign_id == campaign_id,
                        t.events.c.kind.startswith(kind_prefix))
                 .order_by(t.events.c.id))
        with self._tx() as conn:
            return [{"at": r.at, "kind": r.kind, "unit": r.code, "detail": r.detail}
                    for r in conn.execute(query)]

    # -- reports --------------------------------------------------------------------------------

    def faculty_progress(self, campaign_id: str) -> list[FacultyProgress]:
        """Per faculty: active units, units that sent anything, units with a valid form, missing."""
        s = t.submissions
        any_sub = sa.exists().where(s.c.unit_id == t.units.c.id)
        valid_sub = sa.exists().where(s.c.unit_id == t.units.c.id, s.c.current.is_(True),
                                      s.c.valid.is_(True))
        query = (
            sa.select(
                t.units.c.faculty,
                sa.func.count().label("units"),
                sa.func.sum(sa.case((any_sub, 1), else_=0)).label("submitted"),
                sa.func.sum(sa.case((valid_sub, 1), else_=0)).label("valid"),
            )
            .where(t.units.c.campaign_id == campaign_id, t.units.c.active.is_(True))
            .group_by(t.units.c.faculty)
            .order_by(t.units.c.faculty)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [FacultyProgress(r.faculty, r.units, int(r.submitted or 0), int(r.valid or 0),
                                r.units - int(r.valid or 0)) for r in rows]

    # -- the outbox ---------------------------------------------------------------------------

    def existing_keys(self, campaign_id: str, keys: Iterable[str]) -> set[str]:
        wanted = list(keys)
        found: set[str] = set()
        with self._tx() as conn:
            for i in range(0, len(wanted), 500):  # stay under SQLite's bound-parameter limit
                found.update(conn.execute(sa.select(t.outbox.c.dedupe_key).where(
                    t.outbox.c.campaign_id == campaign_id,
                    t.outbox.c.dedupe_key.in_(wanted[i:i + 500]))).scalars())
        return found

    def queue(self, campaign_id: str, mails: Sequence[NewMail], now: dt.datetime) -> int:
        """Add mails to the outbox in one transaction; a dedupe key already there is skipped."""
        if not mails:
            return 0
        existing = self.existing_keys(campaign_id, (m.dedupe_key for m in mails))
        with self._tx() as conn:
            unit_ids = {code: uid for code, uid in conn.execute(
                sa.select(t.units.c.code, t.units.c.id).where(t.units.c.campaign_id == campaign_id))}
            rows = [{
                "campaign_id": campaign_id, "unit_id": unit_ids.get(m.unit_code or ""),
                "kind": m.kind, "dedupe_key": m.dedupe_key, "message_id": m.message_id,
                "recipients": list(m.recipients), "subject": m.subject, "payload": m.payload,
                "status": "queued", "attempts": 0, "created_at": now, "updated_at": now,
            } for m in mails if m.dedupe_key not in existing]
            if rows:
                conn.execute(t.outbox.insert(), rows)
        return len(rows)

    def outbox_rows(self, campaign_id: str, statuses: Sequence[str],
                    limit: int | None = None) -> list[OutboxRow]:
        query = (sa.select(t.outbox, t.units.c.code)
                 .outerjoin(t.units, t.units.c.id == t.outbox.c.unit_id)
                 .where(t.outbox.c.campaign_id == campaign_id, t.outbox.c.status.in_(statuses))
                 .order_by(t.outbox.c.id).limit(limit))
        with self._tx() as conn:
            return [OutboxRow(r.id, r.kind, r.code, r.dedupe_key, r.message_id,
                              tuple(r.recipients), r.subject, r.payload or b"", r.status,
                              r.attempts, r.last_error) for r in conn.execute(query)]

    def mark(self, row_id: int, status: str, now: dt.datetime, error: str | None = None) -> None:
        """Move one row to ``status``; "sending" also counts an attempt.

        Called twice per message on the send path, so the statements are built once (below)
        and only their parameters change.
        """
        params: dict[str, Any] = {"row_id": row_id, "status": status, "now": now}
        if status == "sent":
            stmt = _MARK_SENT
            params["error"] = error[:2000] if error else None
        elif error is not None:
            stmt, params["error"] = _MARK_WITH_ERROR, error[:2000]
        else:
            stmt = _MARK_SENDING if status == "sending" else _MARK
        assert status in OUTBOX_STATES
        with self._tx() as conn:
            conn.execute(stmt, params)

    def outbox_counts(self, campaign_id: str) -> dict[str, int]:
        query = (sa.select(t.outbox.c.status, sa.func.count()).where(
            t.outbox.c.campaign_id == campaign_id).group_by(t.outbox.c.status))
        with self._tx() as conn:
            return {status: n for status, n in conn.execute(query)}


_BY_ID = t.outbox.update().where(t.outbox.c.id == sa.bindparam("row_id"))
_MARK = _BY_ID.values(status=sa.bindparam("status"), updated_at=sa.bindparam("now"))
_MARK_SENDING = _MARK.values(attempts=t.outbox.c.attempts + 1)
_MARK_WITH_ERROR = _MARK.values(last_error=sa.bindparam("error"))
_MARK_SENT = _MARK.values(sent_at=sa.bindparam("now"), last_error=sa.bindparam("error"))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (status, web) never block the runner
    cur.execute("PRAGMA busy_timeout=5000")
    # WAL + NORMAL: a commit survives a killed process (what the outbox needs) without an fsync
    # per commit; only a power cut can lose the last commits
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _unit(row: Any) -> Unit:
    return Unit(**{n: getattr(row, n) for n in UNIT_FIELDS})


def _event(conn: Connection, campaign_id: str, unit_id: int | None, at: dt.datetime, kind: str,
           detail: dict[str, Any]) -> None:
    conn.execute(t.events.insert().values(campaign_id=campaign_id, unit_id=unit_id, at=at,
                                          kind=kind, detail=_jsonable(detail)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
