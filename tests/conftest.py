"""Shared fixtures. Server logic lives in tests/harness/mailservers.py; keep this file small."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.browsers import unavailable
from harness.filling import missing_libreoffice, shipped_form
from harness.mailservers import MailWorld, start_for_pytest
from harness.pgserver import PgServer, postgres_bin_dir

WORLD_USERS = ("service@example.test", "leader1@example.test", "leader2@example.test")


@pytest.fixture(scope="session")
def form():
    """The shipped form definition (forms/oppsummering-og-evaluering.toml), loaded once."""
    return shipped_form()


@pytest.fixture(scope="session")
def mail_world() -> Iterator[MailWorld]:
    """Dovecot + SMTP relay shared by the whole session (use world.new_user() for isolation)."""
    world = start_for_pytest(WORLD_USERS)
    yield world
    world.stop()


@pytest.fixture
def fresh_mail_world() -> Iterator[MailWorld]:
    """A MailWorld of its own for one test (~0.3 s to start, ~1 s to stop)."""
    world = start_for_pytest(WORLD_USERS)
    yield world
    world.stop()


@pytest.fixture
def lo_workdir() -> Iterator[Path]:
    """A private folder for LibreOffice's HOME and profile (0755 under /tmp, see test-servers.md).
    Without LibreOffice: a failure in CI, a skip elsewhere."""
    reason = missing_libreoffice()
    if reason is not None:
        unavailable(reason)
    path = Path(tempfile.mkdtemp(prefix="lo-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    """A throwaway PostgreSQL 15 shared by the session (use pg.fresh_database() for isolation).
    If it does not start: a failure in CI; elsewhere a skip only when PostgreSQL or psycopg is
    not installed."""
    server = PgServer()
    try:
        server.start()
    except Exception as e:
        if os.environ.get("CI") != "true":
            if postgres_bin_dir() is None:
                pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
            try:
                import psycopg  # noqa: F401
            except ImportError:
                pytest.skip("psycopg is not installed (pip install -e '.[postgres]')")
        pytest.fail(f"PostgreSQL did not start: {e}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db_url(request, tmp_path) -> str:
    """The URL of an empty database: a SQLite file, or a fresh database on the session's
    PostgreSQL (started only when a postgresql test runs). A test that takes it runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db/skjemapost.db"
    return request.getfixturevalue("pg").fresh_database()
