"""The store: one object over the database, made of one part per role.

Each part is a module of its own, and its methods match its name: ``roster`` (the campaign and
its units), ``outbox`` (the queue of mail), ``inbox`` (inbound messages, decisions, versioned
forms, failing addresses, the review queue), ``reports`` (what `status`, the rules, the digests
and the workbook read), ``cosign`` (the co-signature: requests to the verneombud, reminders,
answers), ``lock`` (the runner lock) and ``purge`` (retention). They share one
engine, so a caller holds one ``Store``; a function that needs one part still names the whole
store in its signature, since SQLite allows a single writer and one engine serves them all.

SQLite by default, any SQLAlchemy URL accepted. Each public method is one transaction, and the
time is always passed in (see ``base``).
"""

from __future__ import annotations

from service.store.cosign import CosignStore
from service.store.inbox import InboxStore
from service.store.lock import LockStore
from service.store.outbox import OutboxStore
from service.store.purge import PurgeStore
from service.store.reports import ReportStore
from service.store.roster import RosterStore


class Store(RosterStore, OutboxStore, InboxStore, ReportStore, CosignStore, LockStore, PurgeStore):
    """The whole store; see the module docstring for its parts."""
