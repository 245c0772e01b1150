"""Shared fixtures. Server logic lives in tests/mailservers.py; keep this file small."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mailservers import MailWorld, start_for_pytest

WORLD_USERS = ("service@example.test", "leader1@example.test", "leader2@example.test")


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
