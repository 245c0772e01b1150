"""Real mail servers for tests: a throwaway Dovecot (IMAP, IMAPS, LMTP) and an SMTP relay.

``MailWorld`` lays out an instance dir under /tmp, starts ``dovecot -F`` and
``tests/harness/smtp_relay.py`` (aiosmtpd, STARTTLS + AUTH required, delivering over LMTP into Dovecot),
waits until every port accepts, and tears everything down on exit. Everything listens on
127.0.0.1, on free ports chosen at start, so parallel runs never clash.

    with MailWorld(["service@example.test", "leader1@example.test"]) as w:
        await aiosmtplib.send(msg, **w.smtp_kwargs("service@example.test"))
        assert w.messages("leader1@example.test")

Needs root (Dovecot's mail processes run as ``nobody``) and Debian's dovecot-imapd and
dovecot-lmtpd (which create the ``dovecot`` / ``dovenull`` users). See
/work/shared/notes/test-servers.md for the recipes this follows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

from imap_tools import MailBoxUnencrypted

HOST = "127.0.0.1"
DEFAULT_USERS = ("service@example.test",)
RELAY_SCRIPT = Path(__file__).with_name("smtp_relay.py")
_ADDRESS = re.compile(r"^[^\s:@/]+@[^\s:@/]+$")

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
instance_name = mailworld-{tag}
protocols = imap lmtp
listen = {host}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
auth_mechanisms = plain login{oauth_mechanisms}
disable_plaintext_auth = no
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{d}/mail/%u
namespace inbox {{
  inbox = yes
  separator = /
}}
# one passwd-file per user: a file with a %u path is looked up afresh, so users added at run
# time are known at once (a single passwd-file is re-read at most once per second)
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users.d/%u
}}
{oauth_passdb}userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
# no auth penalty: otherwise each failed login from 127.0.0.1 after the first waits 4-15 s
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


# Only with MailWorld(oauth=...): XOAUTH2 logins, checked by asking the identity provider's
# introspection endpoint whether the token is active and for which mailbox (Dovecot 2.3's
# oauth2 passdb). The passwd-file passdb stays unrestricted (LMTP's user lookups need it): a
# token never matches a password there, so Dovecot goes on to this passdb.
OAUTH_MECHANISMS = " xoauth2 oauthbearer"
OAUTH_PASSDB = """\
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {d}/dovecot-oauth2.conf.ext
}}
"""
OAUTH_DOVECOT_ARGS = """\
introspection_mode = post
introspection_url = {introspection_url}
force_introspection = yes
username_attribute = email
active_attribute = active
active_value = true
tls_ca_cert_file = {d}/oauth-ca.pem
"""


class OAuthServers:
    """What the servers need to check XOAUTH2 tokens: the identity provider's introspection URL
    and the CA file that its HTTPS certificate chains to."""

    def __init__(self, introspection_url: str, ca_file: Path) -> None:
        self.introspection_url = introspection_url
        self.ca_file = ca_file


class MailWorldError(RuntimeError):
    """The servers could not be started (the message carries the logs' tails)."""


def dovecot_binary() -> str | None:
    """Path of the dovecot binary (it lives in /usr/sbin, which a CI PATH may lack)."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")


def password(address: str) -> str:
    """The password MailWorld gives ``address``: its local part + ``-pw``."""
    return address.split("@", 1)[0].lower() + "-pw"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free on 127.0.0.1 a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def greets(port: int, expect: bytes, tls: ssl.SSLContext | None = None) -> bool:
    """True if a server on ``port`` sends a greeting starting with ``expect``.

    Stronger than a bare connect: a stray process that holds the port (probe-then-bind race)
    accepts connections too, but it does not greet like Dovecot or the relay.
    """
    try:
        with socket.create_connection((HOST, port), timeout=1) as raw:
            sock = tls.wrap_socket(raw, server_hostname=HOST) if tls else raw
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                data += chunk
            return data.startswith(expect)
    except OSError:  # includes ssl.SSLError and timeouts
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path.name}: missing)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path.name}: empty)"


def crlf(raw: bytes) -> bytes:
    """Turn bare LF into CRLF (smtplib does not, and SMTP/LMTP want CRLF)."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _session_pids(sid: int) -> list[int]:
    """Pids of live processes whose session id is ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields[0] is the state, fields[3] the session id; zombies are as good as gone
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


class MailWorld:
    """A real Dovecot (IMAP, IMAPS, LMTP) plus a STARTTLS+AUTH SMTP relay into it.

    Use as a context manager (or ``start()`` / ``stop()``). Attributes once started:
    ``host``, ``imap_port``, ``imaps_port``, ``lmtp_port``, ``smtp_port``, ``dir``,
    ``cert_path``.
    """

    host = HOST

    def __init__(
        self,
        users: Iterable[str] = DEFAULT_USERS,
        *,
        startup_timeout: float = 15.0,
        oauth: OAuthServers | None = None,
    ) -> None:
        self.oauth = oauth  # None: passwords only, exactly as before
        self.users: list[str] = []
        self._add_to_list(users)
        self.startup_timeout = startup_timeout
        self.dir: Path = Path()
        self.cert_path: Path = Path()
        self.imap_port = self.imaps_port = self.lmtp_port = self.smtp_port = 0
        self._dovecot: subprocess.Popen[bytes] | None = None
        self._relay: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> MailWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> MailWorld:
        """Lay out the instance dir, start Dovecot and the relay, wait until they accept."""
        if self._dovecot is not None:
            raise RuntimeError("MailWorld already started")
        if dovecot_binary() is None:
            raise MailWorldError("dovecot binary not found (apt-get install dovecot-imapd dovecot-lmtpd)")
        self.dir = Path(tempfile.mkdtemp(prefix="mailworld-", dir="/tmp"))
        try:
            self._layout()
            for attempt in range(3):
                try:
                    self._start_dovecot()
                    break
                except MailWorldError as e:
                    # another process grabbed one of our ports between probe and bind: retry
                    if "Address already in use" not in str(e) or attempt == 2:
                        raise
                    if self._dovecot is not None:
                        self._wait_session_gone(self._dovecot.pid)
            self._start_relay()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate both servers, wait until every process of theirs is gone, remove the dir."""
        procs = [p for p in (self._relay, self._dovecot) if p is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self._dovecot is not None:
            # Dovecot's children (auth, imap, lmtp ...) share the master's session id
            self._wait_session_gone(self._dovecot.pid)
        self._dovecot = self._relay = None
        if self.dir != Path() and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_session_gone(self, sid: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while pids := _session_pids(sid):
            if time.monotonic() > deadline:
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.02)

    def _layout(self) -> None:
        d = self.dir
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir()
        d.chmod(0o755)  # dovecot reads config and users as `dovecot`, writes mail as `nobody`
        shutil.chown(d / "mail", "nobody", "nogroup")
        self.cert_path = d / "cert.pem"
        openssl = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        openssl += " -days 3650 -subj /CN=localhost"
        san = "subjectAltName=DNS:localhost,IP:127.0.0.1"  # clients verify by IP
        cmd = [*openssl.split(), "-addext", san, "-keyout", str(d / "key.pem")]
        result = subprocess.run(
            [*cmd, "-out", str(self.cert_path)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise MailWorldError(f"openssl failed:\n{result.stderr}")
        self._write_users()
        self._faults_path.write_text("[]")

    def _start_dovecot(self) -> None:
        self.imap_port, self.imaps_port, self.lmtp_port = free_ports(3)
        conf = self.dir / "dovecot.conf"
        oauth = {"oauth_mechanisms": "", "oauth_passdb": ""}
        if self.oauth is not None:
            shutil.copyfile(self.oauth.ca_file, self.dir / "oauth-ca.pem")
            (self.dir / "oauth-ca.pem").chmod(0o644)
            args = self.dir / "dovecot-oauth2.conf.ext"
            url = self.oauth.introspection_url
            args.write_text(OAUTH_DOVECOT_ARGS.format(d=self.dir, introspection_url=url))
            args.chmod(0o644)
            oauth = {"oauth_mechanisms": OAUTH_MECHANISMS, "oauth_passdb": OAUTH_PASSDB.format(d=self.dir)}
        conf.write_text(
            DOVECOT_CONF.format(
                **oauth,
                d=self.dir,
                tag=self.dir.name.removeprefix("mailworld-"),
                host=HOST,
                imap_port=self.imap_port,
                imaps_port=self.imaps_port,
                lmtp_port=self.lmtp_port,
            )
        )
        (self.dir / "dovecot.log").write_text("")
        with open(self.dir / "dovecot.stderr", "wb") as err:
            self._dovecot = subprocess.Popen(
                [str(dovecot_binary()), "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def greeting() -> bool:
            return (
                greets(self.imap_port, b"* OK")
                and greets(self.imaps_port, b"* OK", self.ssl_context())
                and greets(self.lmtp_port, b"220 ")
            )

        ports = [self.imap_port, self.imaps_port, self.lmtp_port]
        self._wait_ready(self._dovecot, "dovecot", ports, greeting, self._dovecot_logs)

    def _start_relay(self) -> None:
        port_file = self.dir / "relay.port"
        with open(self.dir / "relay.stderr", "wb") as err:
            opts = {
                "--host": HOST,
                "--port": 0,  # the relay binds a free port itself and writes it to --port-file
                "--port-file": port_file,
                "--lmtp": f"{HOST}:{self.lmtp_port}",
                "--cert": self.cert_path,
                "--key": self.dir / "key.pem",
                "--users": self.dir / "users",
                "--faults": self._faults_path,
                "--journal": self._journal_path,
            }
            if self.oauth is not None:
                opts["--oauth-introspect"] = self.oauth.introspection_url
                opts["--oauth-ca"] = self.oauth.ca_file
            self._relay = subprocess.Popen(
                [sys.executable, str(RELAY_SCRIPT), *(str(x) for kv in opts.items() for x in kv)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def greeting() -> bool:
            try:
                self.smtp_port = int(port_file.read_text())
            except (OSError, ValueError):
                return False
            return greets(self.smtp_port, b"220 ")

        self._wait_ready(self._relay, "SMTP relay", port_file, greeting, self._relay_logs)

    def _wait_ready(
        self,
        proc: subprocess.Popen[bytes],
        name: str,
        where: object,
        ready: Callable[[], bool],
        logs: Callable[[], str],
    ) -> None:
        """Poll ``ready()`` until true; raise with the logs if ``proc`` dies or time runs out."""
        deadline = time.monotonic() + self.startup_timeout
        while not ready():
            if proc.poll() is not None:
                raise MailWorldError(f"{name} exited with {proc.returncode} at start\n{logs()}")
            if time.monotonic() > deadline:
                raise MailWorldError(f"{name} not ready on {where} after {self.startup_timeout} s\n{logs()}")
            time.sleep(0.02)

    def _dovecot_logs(self) -> str:
        return (
            f"--- dovecot.log ---\n{tail(self.dir / 'dovecot.log')}\n"
            f"--- dovecot stderr ---\n{tail(self.dir / 'dovecot.stderr')}"
        )

    def _relay_logs(self) -> str:
        return f"--- relay stderr ---\n{tail(self.dir / 'relay.stderr')}"

    def logs(self) -> str:
        """Tails of Dovecot's log and the relay's stderr (for failure messages)."""
        return self._dovecot_logs() + "\n" + self._relay_logs()

    # -- users -----------------------------------------------------------------------------
    def _add_to_list(self, addrs: Iterable[str]) -> list[str]:
        if isinstance(addrs, str):
            raise TypeError("pass an iterable of addresses, not a single string")
        added = []
        for addr in addrs:
            addr = addr.strip().lower()
            if not _ADDRESS.match(addr):
                raise ValueError(f"not a usable address: {addr!r}")
            if addr not in self.users:
                self.users.append(addr)
                added.append(addr)
        return added

    def _write_users(self) -> None:
        """``users`` (all, read by the relay) and ``users.d/ADDR`` (one each, read by Dovecot)."""
        lines = {u: f"{u}:{{PLAIN}}{password(u)}::::::\n" for u in self.users}
        user_dir = self.dir / "users.d"
        user_dir.mkdir(mode=0o755, exist_ok=True)
        for name, text in [
            *((f"users.d/{u}", line) for u, line in lines.items()),
            ("users", "".join(lines.values())),
        ]:
            path = self.dir / name
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, path)

    def add_users(self, addrs: Iterable[str]) -> list[str]:
        """Add users while running (Dovecot and the relay pick them up at once)."""
        added = self._add_to_list(addrs)
        if added and self.dir != Path():
            self._write_users()
        return added

    def new_user(self, prefix: str = "user", domain: str = "example.test") -> str:
        """Add a user with a unique address (for isolation in a shared world) and return it."""
        addr = f"{prefix}-{uuid.uuid4().hex[:10]}@{domain}"
        self.add_users([addr])
        return addr

    @staticmethod
    def password(addr: str) -> str:
        """The password of ``addr`` (its local part + ``-pw``; e.g. ``service-pw``)."""
        return password(addr)

    # -- clients ---------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts (only) this world's certificate; verifies by IP."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def mailbox(self, user: str, folder: str | None = "INBOX") -> MailBoxUnencrypted:
        """A logged-in plain-IMAP ``MailBoxUnencrypted`` (use ``with`` to log out)."""
        mb = MailBoxUnencrypted(self.host, self.imap_port, timeout=30)
        try:
            return mb.login(user, password(user), initial_folder=folder)
        except BaseException:
            mb.client.shutdown()  # imap-tools leaves the socket open when login fails
            raise

    def imap_settings(self, user: str = "service@example.test") -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.imap_port,
            "tls_port": self.imaps_port,
            "username": user,
            "password": password(user),
            "cert_path": str(self.cert_path),
        }

    def smtp_settings(self, user: str = "service@example.test") -> dict[str, Any]:
        """host / port / username / password (STARTTLS required) / cert_path."""
        return {
            "host": self.host,
            "port": self.smtp_port,
            "username": user,
            "password": password(user),
            "cert_path": str(self.cert_path),
        }

    def smtp_kwargs(self, user: str = "service@example.test") -> dict[str, Any]:
        """Keyword arguments for ``aiosmtplib.send`` / ``aiosmtplib.SMTP`` as ``user``."""
        return {
            "hostname": self.host,
            "port": self.smtp_port,
            "start_tls": True,
            "tls_context": self.ssl_context(),
            "username": user,
            "password": password(user),
            "timeout": 30,
        }

    def deliver(
        self,
        raw: bytes | Message,
        to: str | Iterable[str],
        mail_from: str = "sender@example.test",
    ) -> None:
        """Put a message straight into mailboxes over LMTP (bare LF becomes CRLF).

        Raises ``smtplib.SMTPRecipientsRefused`` if a recipient does not exist.
        """
        data = raw.as_bytes() if isinstance(raw, Message) else raw
        rcpts = [to] if isinstance(to, str) else list(to)
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
            for rcpt in rcpts:  # one transaction each: smtplib.LMTP reads one reply after DATA
                lmtp.sendmail(mail_from, [rcpt], crlf(data))

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """Raw bytes of every message in ``folder``, by UID; read-only, so nothing turns \\Seen."""
        with self.mailbox(user, folder=None) as mb:
            mb.folder.set(folder, readonly=True)
            uids = mb.uids()
            if not uids:
                return []
            typ, data = mb.client.uid("fetch", ",".join(uids), "(UID BODY.PEEK[])")
            if typ != "OK":
                raise RuntimeError(f"UID FETCH failed: {typ} {data!r}")
            found: dict[int, bytes] = {}
            for item in data:
                if isinstance(item, tuple):
                    m = re.search(rb"UID (\d+)", item[0])
                    if m:
                        found[int(m.group(1))] = item[1]
            return [found[k] for k in sorted(found)]

    def folders(self, user: str) -> list[str]:
        """Names of ``user``'s folders (separator ``/``)."""
        with self.mailbox(user, folder=None) as mb:
            return sorted(f.name for f in mb.folder.list())

    # -- SMTP fault injection --------------------------------------------------------------
    @property
    def _faults_path(self) -> Path:
        return self.dir / "faults.json"

    @property
    def _journal_path(self) -> Path:
        return self.dir / "smtp-journal.jsonl"

    @contextlib.contextmanager
    def _faults(self) -> Iterator[list[dict[str, Any]]]:
        lock = self._faults_path.with_name("faults.json.lock")
        with open(lock, "a") as lf:
            fcntl.flock(lf, fcntl.LOCK_EX)
            faults = json.loads(self._faults_path.read_text() or "[]")
            yield faults
            tmp = self._faults_path.with_name("faults.json.tmp")
            tmp.write_text(json.dumps(faults))
            os.replace(tmp, self._faults_path)

    def smtp_fault(
        self,
        code: int,
        text: str | None = None,
        *,
        count: int = 1,
        stage: str = "data",
        to: str | None = None,
    ) -> None:
        """Make the next ``count`` SMTP commands at ``stage`` answer ``code``.

        ``stage`` is ``"data"`` (the final reply after the message; nothing is delivered),
        ``"rcpt"`` or ``"mail"``. ``to`` limits it to transactions involving that recipient.
        Faults queue up in order; the relay consumes them as commands arrive.
        """
        if stage not in ("mail", "rcpt", "data"):
            raise ValueError(f"unknown stage {stage!r}")
        if text is None:
            kind = "4.3.0 Injected temporary" if 400 <= code < 500 else "5.3.0 Injected permanent"
            text = kind + " failure"
        fault: dict[str, Any] = {"stage": stage, "count": count, "reply": f"{code} {text}"}
        if to:
            fault["to"] = to
        with self._faults() as faults:
            faults.append(fault)

    def smtp_drop(self, *, count: int = 1, stage: str = "data", to: str | None = None) -> None:
        """Make the next ``count`` commands at ``stage`` close the connection with no answer."""
        if stage not in ("mail", "rcpt", "data"):
            raise ValueError(f"unknown stage {stage!r}")
        fault: dict[str, Any] = {"stage": stage, "count": count, "drop": True}
        if to:
            fault["to"] = to
        with self._faults() as faults:
            faults.append(fault)

    def smtp_hold(self, seconds: float, *, to: str) -> None:
        """Deliver the next message to ``to``, then wait ``seconds`` before answering 250.

        The journal gets an ``held`` event when the wait begins, so a test can kill the client
        while the message is delivered but not yet acknowledged.
        """
        with self._faults() as faults:
            faults.append({"stage": "hold", "count": 1, "seconds": seconds, "to": to})

    def smtp_faults(self) -> list[dict[str, Any]]:
        """Faults not yet consumed."""
        with self._faults() as faults:
            return list(faults)

    def clear_smtp_faults(self) -> None:
        with self._faults() as faults:
            faults.clear()

    def smtp_journal(self) -> list[dict[str, Any]]:
        """What the relay saw: one dict per MAIL / RCPT / DATA (``event``, ``reply``, ...)."""
        try:
            text = self._journal_path.read_text()
        except FileNotFoundError:
            return []
        complete = text[: text.rfind("\n") + 1]  # the relay may be halfway through a line
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def start_for_pytest(users: Iterable[str], oauth: OAuthServers | None = None) -> MailWorld:
    """Start a MailWorld for a fixture, or fail / skip the test the way the project wants.

    With ``CI=true`` a start failure always fails. Elsewhere it skips only when the ``dovecot``
    binary is not installed at all; any other failure fails.
    """
    import pytest

    world = MailWorld(users, oauth=oauth)
    try:
        return world.start()
    except Exception as e:
        in_ci = os.environ.get("CI", "").lower() in ("true", "1", "yes")
        if not in_ci and dovecot_binary() is None:
            pytest.skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)")
        pytest.fail(f"mail servers did not start: {e}", pytrace=False)
