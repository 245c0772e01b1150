"""Sending over SMTP with aiosmtplib: reused connections, bounded concurrency, a rate limit,
retries with backoff on 4xx and lost connections, and no retry on 5xx.

This module knows SMTP and nothing of the store: ``send_all`` reports each message's fate to
callbacks, and the outbox turns those into row states. A row is reported as *starting* only once
its connection is up and authenticated, immediately before its SMTP transaction, so a crash can
leave at most the messages in flight unrecorded.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

import aiosmtplib

from service.config.settings import Smtp, TlsMode
from service.errors import SkjemapostError
from service.net.oauth import (
    REFUSED_HINT,
    OAuthError,
    OAuthUnavailable,
    TokenSource,
    decode_challenge,
    xoauth2_initial_response,
)

Fate = Literal["sent", "failed", "deferred"]


class SmtpAuthError(SkjemapostError, PermissionError):
    """The server refused our user name or password."""

    exit_code = 3


class SmtpUnavailable(SkjemapostError, ConnectionError):
    """The server cannot be reached or refuses to talk (TLS, greeting...)."""

    exit_code = 3


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: TlsMode
    user: str
    password: str | None
    timeout: float
    max_connections: int
    rate_per_minute: int
    retry_attempts: int
    retry_base_seconds: float
    ca_file: Path | None = None
    oauth: TokenSource | None = None  # set: log in with AUTH XOAUTH2 as ``user``, not a password

    @classmethod
    def from_config(cls, smtp: Smtp, *, password: str | None, oauth: TokenSource | None) -> SmtpSettings:
        """The ``[smtp]`` section's connection fields (by name), with the secret or token source
        the section only names."""
        shared = {f.name: getattr(smtp, f.name) for f in fields(cls) if hasattr(smtp, f.name)}
        return cls(**shared | {"password": password, "oauth": oauth})

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Outgoing:
    """One message to send: its id for the callbacks, envelope and bytes."""

    key: int
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True)
class Result:
    fate: Fate
    detail: str = ""  # the server's reply on failure, or recipients it refused
    #: recipients the server refused in a transaction that still went to the others: (address,
    #: "code message"); a mail whose addressee is among them did not reach the one it is for
    refused: tuple[tuple[str, str], ...] = ()


OnStart = Callable[[Outgoing], None]
OnDone = Callable[[Outgoing, Result], None]
Sleep = Callable[[float], Awaitable[None]]


class _RateLimit:
    """At most ``per_minute`` message starts per minute, spread evenly, across all connections."""

    def __init__(self, per_minute: int, sleep: Sleep) -> None:
        self.interval = 60.0 / per_minute
        self.next = 0.0
        self.sleep = sleep
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            if self.next > now:
                await self.sleep(self.next - now)
            self.next = max(now, self.next) + self.interval


class _Connection:
    def __init__(self, settings: SmtpSettings) -> None:
        self.s = settings
        self.client: aiosmtplib.SMTP | None = None

    async def get(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        s = self.s
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout,
            use_tls=s.tls == "implicit",
            start_tls=s.tls == "starttls",
            tls_context=s.tls_context() if s.tls != "none" else None,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:  # pragma: no cover - login is below
            raise _auth_error(s, exc) from None
        except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise SmtpUnavailable(f"cannot connect to the SMTP server {s.server} ({s.tls}): {exc}") from None
        if s.user:
            try:
                if s.oauth is not None:
                    await _login_xoauth2(client, s, s.oauth)
                else:
                    await client.login(s.user, s.password or "")
            except (OAuthError, OAuthUnavailable, SmtpAuthError, SmtpUnavailable):
                client.close()
                raise
            except aiosmtplib.SMTPAuthenticationError as exc:
                client.close()
                raise _auth_error(s, exc) from None
            except aiosmtplib.SMTPException as exc:
                client.close()
                raise SmtpUnavailable(
                    f"SMTP server {s.server} will not authenticate user {s.user}: {exc}"
                ) from None
        self.client = client
        return client

    def drop(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def quit(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()
        self.client = None


async def _login_xoauth2(client: aiosmtplib.SMTP, s: SmtpSettings, tokens: TokenSource) -> None:
    """AUTH XOAUTH2 with the initial response. A refusal comes as a 334 challenge holding a
    base64 JSON error; the client must answer it with an empty line to get the final 535."""
    # a token from msal's cache, or one request shared by every connection (never the loop's
    # thread: msal blocks on HTTP)
    token = await asyncio.to_thread(tokens.token)
    if client.is_ehlo_or_helo_needed:  # STARTTLS forgets the EHLO answer
        await client.ehlo()
    if "xoauth2" not in client.server_auth_methods:
        offered = " ".join(client.server_auth_methods).upper() or "none"
        raise SmtpUnavailable(
            f"SMTP server {s.server} does not offer AUTH XOAUTH2 (it offers: "
            f'{offered}); smtp.auth = "xoauth2" needs it'
        )
    reply = await client.execute_command(b"AUTH", b"XOAUTH2", xoauth2_initial_response(s.user, token))
    said = ""
    if reply.code == 334:
        said = decode_challenge(reply.message)
        reply = await client.execute_command(b"")
    if reply.code != 235:
        # never the token: the message ends up in logs and terminals
        raise SmtpAuthError(
            f"the SMTP server {s.server} refused the XOAUTH2 login for user {s.user!r} "
            f"({reply.code} {reply.message}"
            + (f"; it said: {said}" if said else "")
            + f"); the identity provider issued the token, so {REFUSED_HINT}"
        )


def _auth_error(s: SmtpSettings, exc: aiosmtplib.SMTPAuthenticationError) -> SmtpAuthError:
    # never the password: the message ends up in logs and terminals
    return SmtpAuthError(
        f"the SMTP server {s.server} refused the login for user {s.user!r} "
        f"({exc.code} {exc.message}); check the password in "
        "the environment variable named by smtp.password_env"
    )


async def _send_one(
    conn: _Connection,
    msg: Outgoing,
    settings: SmtpSettings,
    on_start: OnStart,
    *,
    sleep: Sleep,
    limit: _RateLimit,
) -> Result:
    last = ""
    for attempt in range(1, settings.retry_attempts + 1):
        if attempt > 1:
            await sleep(min(settings.retry_base_seconds * 2 ** (attempt - 2), 300.0))
        client = await conn.get()  # auth and connection errors end the whole run
        await limit.wait()
        on_start(msg)
        try:
            refused, _reply = await client.sendmail(msg.mail_from, list(msg.recipients), msg.data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            last = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if all(500 <= c < 600 for c in codes):
                return Result("failed", last)
            await _reset(conn, client)
        except aiosmtplib.SMTPResponseException as exc:
            last = f"{exc.code} {exc.message}"
            if 500 <= exc.code < 600:
                await _reset(conn, client)
                return Result("failed", last)
            await _reset(conn, client)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            last = f"connection lost: {exc}"
            conn.drop()
        else:
            detail = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
            return Result(
                "sent", detail, tuple((rcpt, f"{r.code} {r.message}") for rcpt, r in refused.items())
            )
    return Result("deferred", f"after {settings.retry_attempts} attempts: {last}")


async def _reset(conn: _Connection, client: aiosmtplib.SMTP) -> None:
    """Leave the connection ready for the next transaction, or drop it if that fails."""
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        conn.drop()


async def send_all(
    messages: Sequence[Outgoing],
    settings: SmtpSettings,
    on_start: OnStart,
    on_done: OnDone,
    *,
    sleep: Sleep = asyncio.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> None:
    """Send ``messages`` over up to ``max_connections`` reused connections.

    Raises SmtpAuthError or SmtpUnavailable when the server cannot be used at all; the messages
    not yet started are then simply not reported, and stay queued.
    """
    if settings.oauth is not None and messages and settings.user:
        # one token before any connection: a refusal by the identity provider ends the run
        # here, once, and the connections below take the token from msal's cache
        await asyncio.to_thread(settings.oauth.token)
    queue: asyncio.Queue[Outgoing] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)
    limit = _RateLimit(settings.rate_per_minute, sleep)

    async def worker() -> None:
        conn = _Connection(settings)
        try:
            while not queue.empty() and not should_stop():
                msg = queue.get_nowait()
                on_done(msg, await _send_one(conn, msg, settings, on_start, sleep=sleep, limit=limit))
        finally:
            await conn.quit()

    n = max(1, min(settings.max_connections, len(messages)))
    tasks = [asyncio.create_task(worker()) for _ in range(n)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
