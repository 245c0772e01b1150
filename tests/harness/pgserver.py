"""A throwaway PostgreSQL cluster for tests (the recipe in /work/shared/notes/test-servers.md §5).

``PgServer`` runs ``initdb`` into a fresh folder under /tmp, starts ``postgres`` on a free
127.0.0.1 port with its socket in that folder (never /var/run/postgresql) and fsync off, creates
the role ``app`` and the database ``app``, and on exit stops the server, waits for the postmaster
to be gone and deletes the folder.

    with PgServer() as pg:
        store = Store.open(pg.fresh_database())   # an empty database of its own

As root, every PostgreSQL binary runs as the ``postgres`` user (``initdb`` refuses root), so the
folder and all its parents must be traversable by ``postgres``: it is made 0755 under /tmp.
Authentication is ``trust``: fine on loopback, the password in the URL is never checked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
BIN_DIRS = ("/usr/lib/postgresql/15/bin",)
ROLE = DATABASE = PASSWORD = "app"


def postgres_bin_dir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres, or None if PostgreSQL is not installed."""
    candidates = [Path(d) for d in BIN_DIRS]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for d in candidates:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs. A zombie counts as gone: it has exited and freed its port; its
    parent (PID 1 after pg_ctl daemonised it) may take a second or more to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


class PgServer:
    """One PostgreSQL cluster; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.dir: Path | None = None
        self.port = 0
        self.pid: int | None = None
        self.start_seconds = 0.0
        self.stop_seconds = 0.0

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> Self:
        """initdb + pg_ctl start + role and database ``app``; RuntimeError (with the log) if not."""
        began = time.monotonic()
        self.bin_dir = self.bin_dir or postgres_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        self.dir.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
            for attempt in range(attempts):  # a free port can be taken between choosing and binding
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                    break
                except RuntimeError:
                    if attempt == attempts - 1 or "in use" not in self.log_tail():
                        raise
            self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
            self._admin(
                f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'", f"CREATE DATABASE {DATABASE} OWNER {ROLE}"
            )
        except Exception as exc:
            tail = self.log_tail()
            where = f" in {self.dir}" if self.dir else ""
            self.stop()
            raise RuntimeError(
                f"PostgreSQL did not start{where} (port {self.port}): {exc}"
                + (f"\n--- log tail ---\n{tail}" if tail else "")
            ) from exc
        except BaseException:  # KeyboardInterrupt: still leave nothing behind
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """pg_ctl -m fast stop, wait until the postmaster is gone, delete the folder. Idempotent."""
        if self.dir is None:
            return
        began = time.monotonic()
        pid = self.pid
        if pid is None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((self.data / "postmaster.pid").read_text().split()[0])
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
        if pid is not None:
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if _pid_alive(pid):  # pg_ctl gave up: do not leave a server behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir, self.pid = None, None
        self.stop_seconds = time.monotonic() - began

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests use -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database ``app`` (owned by the role ``app``)."""
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        return f"postgresql+psycopg://{ROLE}:{PASSWORD}@{HOST}:{self.port}/{database}"

    def fresh_database(self) -> str:
        """Create a new, empty database owned by ``app`` (a unique name) and return its URL."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self._admin(f"CREATE DATABASE {name} OWNER {ROLE}")
        return self.url_for(name)

    def log_tail(self, lines: int = 30) -> str:
        if self.dir is None:
            return ""
        try:
            text = (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ------------------------------------------------------------------------------

    @property
    def data(self) -> Path:
        assert self.dir is not None, "the server is not started"
        return self.dir / "data"

    def _pg_ctl_start(self) -> None:
        options = (
            f"-c listen_addresses={HOST} -p {self.port} -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def _run(self, exe: str, *args: str) -> None:
        assert self.bin_dir is not None
        cmd = [str(self.bin_dir / exe), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{exe} exited {done.returncode}: {(done.stderr or done.stdout).strip()}")

    def _admin(self, *statements: str) -> None:
        """Run statements as the superuser, outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(
            host=HOST, port=self.port, user="postgres", dbname="postgres", autocommit=True, connect_timeout=10
        ) as conn:
            for sql in statements:
                conn.execute(sql)  # type: ignore[arg-type]
