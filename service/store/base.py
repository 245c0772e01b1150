"""The base of the store: connecting, migrating, transactions. Every part of ``store/`` (roster,
outbox, inbox, reports, lock, purge) builds on it, and only ``store/`` speaks SQL (a contract).

Each public method of the store is one transaction. Callers pass the time in (``now``): the store
never reads the clock, so a replayed campaign writes the times it would have written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from service.errors import StoreError
from service.store import tables as t

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


class StoreBase:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # unit code -> row id per campaign; ids never change, and only a roster import adds units
        self._unit_ids: dict[str, dict[str, int]] = {}

    def unit_ids(self, conn: Connection, campaign_id: str) -> dict[str, int]:
        if campaign_id not in self._unit_ids:
            self._unit_ids[campaign_id] = {
                code: uid
                for code, uid in conn.execute(
                    sa.select(t.units.c.code, t.units.c.id).where(t.units.c.campaign_id == campaign_id)
                )
            }
        return self._unit_ids[campaign_id]

    @classmethod
    def open(cls, url: str) -> Self:
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
            raise StoreError(
                f"the database is at {current}, the code needs {head}; run `skjemapost init` to upgrade it"
            )

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StoreError(f"database error: {exc.orig}") from exc


def shown_url(url: str) -> str:
    """A database URL fit to print: the password masked."""
    return str(sa.make_url(url).render_as_string(hide_password=True))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")  # readers (status, web) never block the runner
    cur.execute("PRAGMA busy_timeout=5000")
    # WAL + NORMAL: a commit survives a killed process (what the outbox needs) without an fsync
    # per commit; only a power cut can lose the last commits
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def add_event(
    conn: Connection,
    campaign_id: str,
    unit_id: int | None,
    kind: str,
    detail: dict[str, Any],
    *,
    at: dt.datetime,
) -> None:
    conn.execute(
        t.events.insert().values(
            campaign_id=campaign_id, unit_id=unit_id, at=at, kind=kind, detail=jsonable(detail)
        )
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def aware(value: Any) -> dt.datetime | None:
    """Aggregates (MIN/MAX) bypass the column type on SQLite and come back as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
