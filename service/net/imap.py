"""Connecting to the service's IMAP mailbox with imap-tools, in the configured TLS mode.

Also the sent-copy check: every message the service sends can carry an envelope copy to the
service's own address. That copy is delivered in the same SMTP transaction as the real one, so it
exists exactly when the message went out. A sender restarted after a crash looks for the copies
of the rows it left in "sending" before it sends any of them again, and files the copies from
the inbox into the Sent folder.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from imap_tools import AND, BaseMailBox, H, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from service.config.settings import Imap, TlsMode
from service.errors import SkjemapostError
from service.mail import msgid
from service.net.oauth import REFUSED_HINT, TokenSource


class ImapAuthError(SkjemapostError, PermissionError):
    exit_code = 3


class ImapUnavailable(SkjemapostError, ConnectionError):
    exit_code = 3


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    tls: TlsMode
    user: str
    password: str | None
    inbox: str = "INBOX"
    ca_file: Path | None = None
    timeout: float = 30.0
    oauth: TokenSource | None = None  # set: log in with AUTHENTICATE XOAUTH2, not a password

    @classmethod
    def from_config(cls, imap: Imap, *, password: str | None, oauth: TokenSource | None) -> ImapSettings:
        """The ``[imap]`` section's connection fields (by name), with the secret or token source
        the section only names."""
        shared = {f.name: getattr(imap, f.name) for f in fields(cls) if hasattr(imap, f.name)}
        return cls(**shared | {"password": password, "oauth": oauth})

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def connect(s: ImapSettings) -> BaseMailBox:
    """A logged-in mailbox with the inbox selected; clear errors for the usual failures."""
    # loading the CA store costs ~65 ms: only where TLS is used (not on loopback with tls = none)
    ctx = (
        ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None) if s.tls != "none" else None
    )
    # the token first: an identity-provider error then leaves no connection open
    token = s.oauth.token() if s.oauth is not None else None
    try:
        if s.tls == "implicit":
            box: BaseMailBox = MailBox(s.host, s.port, timeout=s.timeout, ssl_context=ctx)
        elif s.tls == "starttls":
            box = MailBoxStartTls(s.host, s.port, timeout=s.timeout, ssl_context=ctx)
        else:
            box = MailBoxUnencrypted(s.host, s.port, timeout=s.timeout)
    except (OSError, ssl.SSLError, imaplib.IMAP4.error) as exc:
        raise ImapUnavailable(f"cannot connect to the IMAP server {s.server} ({s.tls}): {exc}") from None
    if token is not None:
        try:
            box.xoauth2(s.user, token, initial_folder=s.inbox)
        except (MailboxLoginError, imaplib.IMAP4.error) as exc:
            # imaplib raises its own error when AUTHENTICATE ends in NO; never the token here
            _close(box)
            said = str(exc).strip() or "refused"
            raise ImapAuthError(
                f"the IMAP server {s.server} refused the XOAUTH2 login for user "
                f"{s.user!r} ({said}); the identity provider issued the token, so "
                f"{REFUSED_HINT}"
            ) from None
    else:
        _password_login(box, s)
    # imap-tools picks MOVE or COPY+EXPUNGE from the capabilities seen before login, and servers
    # like Dovecot announce MOVE only after it: refresh them so moves are atomic
    typ, data = box.client.capability()
    if typ == "OK" and data and isinstance(data[-1], bytes):
        box.client.capabilities = tuple(data[-1].upper().decode().split())
    return box


def _password_login(box: BaseMailBox, s: ImapSettings) -> None:
    try:
        box.login(s.user, s.password or "", initial_folder=s.inbox)
    except MailboxLoginError:
        _close(box)  # imap-tools leaves the socket open when login fails
        raise ImapAuthError(
            f"the IMAP server {s.server} refused the login for user {s.user!r}; "
            "check the password in the variable named by imap.password_env"
        ) from None


def _close(box: BaseMailBox) -> None:
    with contextlib.suppress(OSError):
        box.client.shutdown()


def ensure_folder(box: BaseMailBox, name: str) -> None:
    if not box.folder.exists(name):
        box.folder.create(name)


class SentCopies:
    """Finds and files the copies of sent messages that came back to our own inbox."""

    def __init__(self, settings: ImapSettings, sent_folder: str) -> None:
        self.settings = settings
        self.sent_folder = sent_folder

    def find(self, message_ids: Iterable[str]) -> set[str]:
        """Which of ``message_ids`` have a copy in the inbox or the Sent folder (i.e. went out)."""
        wanted = list(message_ids)
        if not wanted:
            return set()
        found: set[str] = set()
        box = connect(self.settings)
        try:
            for folder in (self.settings.inbox, self.sent_folder):
                if not box.folder.exists(folder):
                    continue
                box.folder.set(folder)
                for mid in wanted:
                    if mid not in found and box.uids(AND(header=H("Message-ID", mid))):
                        found.add(mid)
        finally:
            box.logout()
        return found

    def file(self) -> int:
        """Move our own copies from the inbox to the Sent folder; returns how many moved."""
        box = connect(self.settings)
        try:
            uids = box.uids(AND(header=H("Message-ID", msgid.MARK)))
            if uids:
                ensure_folder(box, self.sent_folder)
                box.move(uids, self.sent_folder)
            return len(uids)
        finally:
            box.logout()


def move_message(box: BaseMailBox, message_id: str, source: str, target: str) -> bool:
    """Move the message with ``message_id`` from folder ``source`` to ``target``; False if absent."""
    if not box.folder.exists(source):
        return False
    box.folder.set(source)
    uids = box.uids(AND(header=H("Message-ID", message_id)))
    if uids:
        ensure_folder(box, target)
        box.move(uids, target)
    return bool(uids)
