"""The demo's mail world, in-process on loopback: an SMTP server (aiosmtpd) that delivers into an
IMAP server (pymap's in-memory "dict" backend), both on one asyncio loop in a background thread.

It behaves like a small institution's mail system, enough for `skjemapost demo` to run the real
sender, poller and classifier against it:

- every message submitted over SMTP is saved as ``NNNN-<recipient>.eml`` in ``eml_dir`` (what
  "went out"), then delivered into the INBOX of each known recipient, with a ``Received:`` line
  stamped by the demo's clock (the poller dates a reply by it);
- a recipient it does not know gets a DSN back at the envelope sender, written the way Postfix
  writes one (multipart/report with the returned headers), from ``MAILER-DAEMON``;
- a user listed in ``away`` answers like a vacation autoresponder: once per sender, with
  ``Auto-Submitted: auto-replied``, to the envelope sender, never to automatic mail.

Design notes. pymap is driven through its Python API, not ``pymap-admin`` (a process per message
costs 0.5 s): users are set and messages appended with the backend's own ``Identity`` and
session, exactly what its admin service does. Its maildir backend loses data on COPY, so the dict
backend it is. Passwords are hashed with few PBKDF2 rounds: the service logs in once per poll,
and pymap's default (500,000 rounds) would cost a third of a second each time, on loopback only.
The SMTP server runs on the same loop as pymap, so a delivery is a plain ``await``; ports are
picked by the kernel (port 0) and read back, so two demos never collide.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
from argparse import Namespace
from collections.abc import Callable, Coroutine, Mapping, Sequence
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP
from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import DictBackend, Identity
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.parsing.specials import ExtensionOptions
from pymap.parsing.specials.fetchattr import FetchRequirement
from pymap.user import Passwords, UserMetadata
from pysasl.hashing import BuiltinHash

HOST = "127.0.0.1"
_T = TypeVar("_T")
_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def crlf(data: bytes) -> bytes:
    """Line ends as SMTP and IMAP carry them."""
    return re.sub(rb"\r?\n", b"\r\n", data)


class DemoServersError(RuntimeError):
    """The embedded servers could not start, or did not answer in time."""


class DemoServers:
    """SMTP on ``smtp_port`` and IMAP on ``imap_port`` (127.0.0.1, no TLS), until ``stop()``.

    ``users`` maps each mailbox address to its IMAP password. ``now`` dates what the servers
    write (Received:, DSNs, auto-replies); the demo passes its simulated clock.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        eml_dir: Path,
        *,
        now: Callable[[], dt.datetime] = _wall,
        away: Mapping[str, str] | None = None,
        hostname: str = "mail.example.edu",
        timeout: float = 30.0,
    ) -> None:
        self.users = {address.lower(): password for address, password in users.items()}
        self.eml_dir = eml_dir
        self.now = now
        self.away = {address.lower(): text for address, text in (away or {}).items()}
        self.hostname = hostname
        self.timeout = timeout
        self.smtp_port = 0
        self.imap_port = 0
        self.saved: list[Path] = []  # every message submitted over SMTP, in order
        self.bounced: list[str] = []  # recipients a DSN was sent for
        self._answered: set[tuple[str, str]] = set()  # (away user, sender) already auto-answered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._backend: DictBackend | None = None

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> DemoServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DemoServers:
        self.eml_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="skjemapost-demo-mail", daemon=True)
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close both servers and their connections, then the loop and its thread. Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(self._stop(), loop).result(self.timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    async def _start(self) -> None:
        args = Namespace(
            host=HOST,
            port=0,
            debug=False,
            cert=None,
            key=None,
            tls=False,
            passlib_cfg=None,
            proxy_protocol=None,
            inherited_sockets=None,
            demo_data=False,
            demo_user="",
            demo_password="",
        )
        backend, config = await DictBackend.init(
            args, hash_context=BuiltinHash(rounds=1000), invalid_user_sleep=0.0
        )
        self._backend = backend
        await self._identity("").delete()  # init always adds pymap's "demo user"; here it has no name
        hasher = Passwords(config)
        for address, password in self.users.items():
            hashed = await hasher.hash_password(password)
            await self._identity(address).set(UserMetadata(config, address, password=hashed))
        imap_cb = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(backend.login, config))
        imap = await asyncio.start_server(imap_cb, host=HOST, port=0)
        loop = asyncio.get_running_loop()
        smtp = await loop.create_server(
            lambda: SMTP(
                _Handler(self), hostname=self.hostname, ident="skjemapost demo ESMTP", enable_SMTPUTF8=True
            ),
            host=HOST,
            port=0,
        )
        self._servers = [imap, smtp]
        self.imap_port = imap.sockets[0].getsockname()[1]
        self.smtp_port = smtp.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:  # open client connections
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._servers = []

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._loop is None:
            coro.close()
            raise DemoServersError("the demo mail servers are not running")
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)
        except TimeoutError:
            raise DemoServersError(
                f"the demo mail servers did not answer within {self.timeout:.0f} s"
            ) from None

    def _identity(self, address: str) -> Identity:
        assert self._backend is not None
        return Identity(address, self._backend.login, None, {"admin"})

    # -- what the demo (and its tests) ask -------------------------------------------------

    def deliver(self, mail_from: str, recipient: str, data: bytes) -> bool:
        """Put ``data`` into ``recipient``'s INBOX, as mail from outside arrives (the MX path,
        not SMTP submission: it is not saved as sent). False if there is no such user."""
        return self._call(self._deliver(mail_from, recipient, crlf(data)))

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The raw messages in ``user``'s ``folder``, oldest first."""
        return self._call(self._messages(user.lower(), folder))

    def folders(self, user: str) -> list[str]:
        return self._call(self._folders(user.lower()))

    async def _messages(self, user: str, folder: str) -> list[bytes]:
        async with self._identity(user).new_session() as session:
            box = await session.mailbox_set.get_mailbox(folder)
            return [bytes(await m.load_content(FetchRequirement.CONTENT)) async for m in box.messages()]

    async def _folders(self, user: str) -> list[str]:
        async with self._identity(user).new_session() as session:
            tree = await session.mailbox_set.list_mailboxes()
            return [entry.name for entry in tree.list() if entry.exists]

    # -- delivery ----------------------------------------------------------------------------

    async def _deliver(self, mail_from: str, recipient: str, data: bytes) -> bool:
        user = recipient.lower()
        if user not in self.users:
            return False
        when = self.now()
        stamp = (
            f"Received: by {self.hostname} (skjemapost demo) for <{user}>;\r\n"
            f"\t{format_datetime(when.astimezone(dt.UTC))}\r\n"
        ).encode()
        async with self._identity(user).new_session() as session:
            await session.append_messages(
                "INBOX", [AppendMessage(stamp + data, when, frozenset(), ExtensionOptions.empty())]
            )
        if (
            user in self.away
            and mail_from
            and (user, mail_from.lower()) not in self._answered
            and not _automatic(data)
        ):
            self._answered.add((user, mail_from.lower()))
            await self._deliver(
                "", mail_from, _vacation_reply(user, self.away[user], data, when, self.hostname)
            )
        return True

    def _save(self, recipients: Sequence[str], data: bytes) -> None:
        first = _UNSAFE.sub("_", recipients[0] if recipients else "nobody")[:80]
        path = self.eml_dir / f"{len(self.saved) + 1:04d}-{first}.eml"
        path.write_bytes(data)
        self.saved.append(path)

    async def _bounce(self, mail_from: str, failed: Sequence[str], data: bytes) -> None:
        self.bounced.extend(failed)
        await self._deliver("", mail_from, _dsn(self.hostname, mail_from, failed, data, self.now()))


class _Handler:
    """aiosmtpd's handler: accept every recipient (as a relay does), then deliver or bounce."""

    def __init__(self, world: DemoServers) -> None:
        self.world = world

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        data = crlf(envelope.original_content or b"")
        recipients: list[str] = list(envelope.rcpt_tos)
        self.world._save(recipients, data)
        failed = [r for r in recipients if not await self.world._deliver(envelope.mail_from, r, data)]
        if failed and envelope.mail_from:  # never bounce a bounce (null sender)
            await self.world._bounce(envelope.mail_from, failed, data)
        return "250 2.0.0 Ok: queued"


def _headers(data: bytes) -> str:
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    return head.decode("ascii", "replace").replace("\r\n", "\n")


def _header(data: bytes, name: str) -> str:
    found = re.search(
        rb"^" + name.encode() + rb":[ \t]*(.*(?:\r?\n[ \t].*)*)", data.split(b"\r\n\r\n")[0], re.I | re.M
    )
    return re.sub(r"\s+", " ", found.group(1).decode("ascii", "replace")).strip() if found else ""


def _automatic(data: bytes) -> bool:
    """Mail an autoresponder must not answer (RFC 3834 §2): automatic, bulk or list mail."""
    auto = _header(data, "Auto-Submitted").lower()
    return (
        auto not in ("", "no")
        or _header(data, "Precedence").lower() in ("bulk", "list", "junk")
        or bool(_header(data, "List-Id"))
    )


def _vacation_reply(user: str, text: str, original: bytes, when: dt.datetime, host: str) -> bytes:
    subject = _header(original, "Subject")
    to = parseaddr(_header(original, "From"))[1]
    lines = [
        f"From: {user}",
        f"To: {to}",
        f"Subject: Automatic reply: {subject}",
        f"Date: {format_datetime(when.astimezone(dt.UTC))}",
        f"Message-ID: {make_msgid(domain=host)}",
        f"In-Reply-To: {_header(original, 'Message-ID')}",
        "Auto-Submitted: auto-replied",
        "X-Auto-Response-Suppress: All",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        text,
        "",
    ]
    return crlf("\n".join(lines).encode())


def _dsn(host: str, mail_from: str, failed: Sequence[str], original: bytes, when: dt.datetime) -> bytes:
    """A non-delivery report as Postfix writes it: text, delivery-status, the returned headers."""
    date = format_datetime(when.astimezone(dt.UTC))
    boundary = f"dsn.{int(when.timestamp())}/{host}"
    why = "Recipient address rejected: User unknown in local recipient table"
    human = "\n".join(f"<{r}>: host {host} said: 550 5.1.1 <{r}>: {why}" for r in failed)
    per_rcpt = "\n\n".join(
        f"Final-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\nAction: failed\n"
        f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <{r}>: {why}"
        for r in failed
    )
    text = f"""Date: {date}
From: MAILER-DAEMON@{host} (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {mail_from}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Message-ID: {make_msgid(domain=host)}
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host {host}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

{human}

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; {host}
Arrival-Date: {date}

{per_rcpt}

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{_headers(original)}

--{boundary}--
"""
    return crlf(text.encode())
