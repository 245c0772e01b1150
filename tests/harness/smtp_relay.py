"""Test SMTP relay: aiosmtpd with STARTTLS + AUTH required, delivering to Dovecot over LMTP.

Run as its own process by ``tests/harness/mailservers.py`` (never inside a test's event loop)::

    python tests/harness/smtp_relay.py --cert cert.pem --key key.pem --users users \\
        --lmtp 127.0.0.1:24 --port-file relay.port [--faults faults.json] [--journal j.jsonl]

* Listens on ``--host`` (127.0.0.1) and ``--port`` (0 = pick a free one). Once it is listening,
  the real port is written to ``--port-file`` (atomically).
* ``--users`` is Dovecot's passwd-file (``addr:{PLAIN}password::::::``). It is re-read on every
  AUTH and RCPT, so users added while running are known at once. Unknown recipients get
  ``550 5.1.1`` at RCPT.
* Each accepted recipient is delivered with its own LMTP transaction (``smtplib.LMTP`` reads
  only one reply after DATA). If any delivery fails, DATA answers 451 (LMTP 4xx) or 554.
* Fault injection: ``--faults`` (or env ``SKJEMAPOST_RELAY_FAULTS``) names a JSON file holding
  a list of faults, re-read at every MAIL, RCPT and DATA. A fault is an object::

      {"stage": "data",            # "mail" | "rcpt" | "data"
       "count": 1,                 # how many matching commands it hits; removed at 0
       "reply": "451 4.3.0 ...",   # the answer to give instead ...
       "drop": false,              # ... or true: close the connection without an answer
       "to": "a@example.test"}     # optional: only when this recipient is involved

  The first matching fault is consumed (the file is rewritten under ``flock`` on
  ``FAULTS.lock``). A faulted DATA delivers nothing.
* ``--journal`` appends one JSON line per MAIL, RCPT and DATA outcome (for asserting retries).
* ``--oauth-introspect URL`` (with ``--oauth-ca``) also offers AUTH XOAUTH2: the bearer token
  must be active at that introspection endpoint for the mailbox named in ``user=``. Failures
  are answered as Exchange Online does (334 + base64 JSON, then 535 5.7.3); each XOAUTH2
  attempt adds an ``auth`` line to the journal. Without it the relay is exactly as before.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import signal
import smtplib
import ssl
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# aiosmtpd 1.4 logs "Session.login_data is deprecated" on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)
log = logging.getLogger("smtp_relay")


def load_users(path: Path) -> dict[str, str]:
    """Read Dovecot's passwd-file: {address (lower case): plain password}."""
    users: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" not in line or line.startswith("#"):
            continue
        name, pw = line.split(":")[:2]
        users[name.lower()] = pw.removeprefix("{PLAIN}")
    return users


class Faults:
    """The fault file: a JSON list of fault objects, consumed one hit at a time."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def take(self, stage: str, addresses: list[str]) -> dict[str, Any] | None:
        """Consume and return the first fault matching ``stage`` and ``addresses``, if any."""
        if self.path is None:
            return None
        wanted = {a.lower() for a in addresses}
        lock = self.path.with_name(self.path.name + ".lock")
        with open(lock, "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            try:
                faults = json.loads(self.path.read_text() or "[]")
            except FileNotFoundError:
                return None
            for i, fault in enumerate(faults):
                if fault.get("stage", "data") != stage:
                    continue
                if fault.get("to") and fault["to"].lower() not in wanted:
                    continue
                fault["count"] = int(fault.get("count", 1)) - 1
                if fault["count"] <= 0:
                    del faults[i]
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(faults))
                os.replace(tmp, self.path)
                return dict(fault)
        return None


class Relay:
    def __init__(self, args: argparse.Namespace) -> None:
        self.users_path = Path(args.users)
        lhost, lport = args.lmtp.rsplit(":", 1)
        self.lmtp = (lhost, int(lport))
        self.faults = Faults(Path(args.faults) if args.faults else None)
        self.journal = Path(args.journal) if args.journal else None
        self.introspect_url: str | None = getattr(args, "oauth_introspect", None)
        self.introspect_tls = ssl.create_default_context(cafile=getattr(args, "oauth_ca", None))

    # -- helpers -----------------------------------------------------------------------------
    def note(self, **event: Any) -> None:
        if self.journal is not None:
            with open(self.journal, "a") as f:
                f.write(json.dumps(event) + "\n")

    def fault_reply(self, server: SMTP, stage: str, addresses: list[str]) -> str | None:
        """Apply a pending fault for this stage: its reply, or drop the connection."""
        fault = self.faults.take(stage, addresses)
        if fault is None:
            return None
        if fault.get("drop"):
            log.warning("fault: dropping connection at %s", stage)
            if server.transport is not None:
                server.transport.abort()
            return "421 4.4.2 connection dropped (injected fault)"
        reply = str(fault.get("reply") or "451 4.3.0 Injected temporary failure")
        log.warning("fault: answering %r at %s", reply, stage)
        return reply

    def authenticate(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode(errors="replace")
            password = auth_data.password.decode(errors="replace")
            if load_users(self.users_path).get(login.lower()) == password:
                return AuthResult(success=True, auth_data=login)
        return AuthResult(success=False, handled=False)

    def introspect(self, token: str) -> dict[str, Any]:
        """Ask the identity provider whether ``token`` is active, and for which mailbox."""
        assert self.introspect_url is not None
        body = urllib.parse.urlencode({"token": token}).encode()
        with urllib.request.urlopen(
            self.introspect_url, body, timeout=10, context=self.introspect_tls
        ) as resp:
            return dict(json.loads(resp.read()))

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 as Exchange Online answers it: 235 on success; on failure a 334 challenge
        carrying a base64 JSON error, then 535 5.7.3 once the client sends an empty line."""
        if len(args) > 1:
            blob = args[1].encode()
        else:  # no initial response: ask for it with an empty challenge
            got = await server.challenge_auth("")
            if not isinstance(got, bytes):
                return AuthResult(success=False, handled=True)
            blob = base64.b64encode(got)
        try:
            parts = base64.b64decode(blob, validate=True).decode().split("\x01")
            fields = dict(p.split("=", 1) for p in parts if p)
            user, auth = fields["user"], fields["auth"]
            scheme, token = auth.split(" ", 1)
            assert scheme.lower() == "bearer"
        except (ValueError, KeyError, AssertionError, UnicodeDecodeError):
            self.note(event="auth", mechanism="XOAUTH2", ok=False, reason="malformed")
            return AuthResult(success=False, handled=False, message="501 5.5.2 Malformed XOAUTH2 response")
        try:
            info = await asyncio.to_thread(self.introspect, token)
        except OSError as e:
            log.error("introspection failed: %r", e)
            info = {}
        ok = info.get("active") is True and str(info.get("email", "")).lower() == user.lower()
        self.note(
            event="auth",
            mechanism="XOAUTH2",
            user=user,
            ok=ok,
            client_id=info.get("client_id"),
            peer=list(server.session.peer or ()) if server.session else [],
        )
        if ok:
            return AuthResult(success=True, auth_data=user)
        error = json.dumps(
            {"status": "401", "schemes": "bearer", "scope": "https://outlook.office365.com/.default"}
        )
        await server.challenge_auth(error)  # the client answers with an empty line
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    def deliver(self, mail_from: str, rcpt: str, data: bytes) -> None:
        with smtplib.LMTP(*self.lmtp) as lmtp:
            lmtp.sendmail(mail_from, [rcpt], data)

    # -- aiosmtpd hooks --------------------------------------------------------------------
    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.fault_reply(server, "mail", [])
        if reply is None:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            reply = "250 OK"
        self.note(event="mail", mail_from=address, reply=reply)
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.fault_reply(server, "rcpt", [address])
        if reply is None:
            if address.lower() in load_users(self.users_path):
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(options)
                reply = "250 OK"
            else:
                reply = "550 5.1.1 No such user here"
        self.note(event="rcpt", address=address, reply=reply)
        return reply

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        reply = await self._handle_data(server, session, envelope)
        hold = self.faults.take("hold", list(envelope.rcpt_tos))
        if hold is not None:
            # delivered, but the client waits for the reply: a client killed now has sent a
            # message it never saw accepted (the "in flight" case of a crash)
            self.note(event="held", rcpt_tos=list(envelope.rcpt_tos), seconds=hold.get("seconds", 30))
            await asyncio.sleep(float(hold.get("seconds", 30)))
        return reply

    async def _handle_data(self, server: SMTP, session: Any, envelope: Any) -> str:
        reply = self.fault_reply(server, "data", list(envelope.rcpt_tos))
        if reply is None:
            failed: list[str] = []
            temporary = False
            for rcpt in envelope.rcpt_tos:
                try:
                    await asyncio.to_thread(self.deliver, envelope.mail_from, rcpt, envelope.original_content)
                except (smtplib.SMTPException, OSError) as e:
                    log.error("LMTP delivery to %s failed: %r", rcpt, e)
                    failed.append(f"{rcpt}: {e}")
                    code = getattr(e, "smtp_code", None)
                    if code is None:
                        errors = getattr(e, "recipients", {}).values()
                        code = next(iter(errors), (451,))[0]
                    temporary = temporary or 400 <= int(code) < 500
            if not failed:
                reply = "250 2.0.0 Message accepted for delivery"
            elif temporary:
                reply = "451 4.3.0 Delivery failed: " + "; ".join(failed)
            else:
                reply = "554 5.3.0 Delivery failed: " + "; ".join(failed)
        self.note(
            event="data",
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            auth_user=session.auth_data,
            peer=list(session.peer or ()),  # the client's (host, port): one per connection
            size=len(envelope.original_content or b""),
            reply=reply,
        )
        return reply


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--port-file", help="write the listening port here once ready")
    ap.add_argument("--lmtp", required=True, help="HOST:PORT of Dovecot's LMTP listener")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--users", required=True, help="Dovecot passwd-file ({PLAIN} passwords)")
    ap.add_argument("--faults", default=os.environ.get("SKJEMAPOST_RELAY_FAULTS"))
    ap.add_argument("--journal")
    ap.add_argument("--oauth-introspect", help="offer AUTH XOAUTH2, checking tokens at this URL")
    ap.add_argument("--oauth-ca", help="CA file for the introspection URL's HTTPS certificate")
    return ap.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    relay = Relay(args)
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(
            relay,
            hostname="localhost",
            tls_context=tls,
            require_starttls=True,
            auth_required=True,
            authenticator=relay.authenticate,
            # XOAUTH2 only where asked for: the EHLO of every other relay stays as it was
            auth_exclude_mechanism=[] if relay.introspect_url else ["XOAUTH2"],
            loop=loop,
        )

    server = await loop.create_server(factory, host=args.host, port=args.port)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, args.port_file)
    log.warning("listening on %s:%d", args.host, port)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 2)


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main())
