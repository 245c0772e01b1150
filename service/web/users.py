"""The web page's users: a small TOML file of names, roles and argon2 password hashes.

The file (``web.users_file``) is written only by `skjemapost user add/remove`, atomically and at
mode 0600, so the operator's commented config never has to be rewritten and the hashes are
readable by the service account alone. The running web app re-reads it when its modification
time changes, so a user added or removed takes effect without a restart.

Roles: ``hr`` sees every faculty; ``coordinator`` sees one, named by ``faculty``.

Logins verify against a dummy hash when the name is unknown, so an unknown user and a wrong
password take the same time and give the same answer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
import tomllib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from service.errors import Problem, ProblemsError, SkjemapostError

Role = Literal["hr", "coordinator"]
ROLES: tuple[Role, ...] = get_args(Role)
NAME_MAX = 64
HEADER = (
    "# skjemapost web users: written by `skjemapost user add` / `user remove`.\n"
    "# Keep this file at mode 0600: it holds password hashes (argon2id).\n"
)


class UsersFileError(ProblemsError):
    """The users file is unreadable or has bad entries; each problem names the entry and key."""

    what = "users file"
    exit_code = 2


class UserError(SkjemapostError, ValueError):
    """A user command that cannot be done as asked (bad name, role, faculty, password)."""

    exit_code = 2


@dataclass(frozen=True)
class WebUser:
    name: str
    role: Role
    faculty: str | None  # the coordinator's faculty; None for hr
    password_hash: str

    @property
    def fingerprint(self) -> str:
        """Changes when the password does: a session remembers it, so a new password (or a
        removed and re-added user) ends the sessions made with the old one."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 defaults


@cache
def _dummy_hash() -> str:
    return _hasher().hash("no such user: this hash only spends the time a real check takes")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_name(name: str) -> str:
    """A user name: 1-64 printable characters without spaces (it is typed at every login)."""
    if not name or len(name) > NAME_MAX or any(c.isspace() or not c.isprintable() for c in name):
        raise UserError(f"user name {name!r}: use 1-{NAME_MAX} characters without spaces")
    return name


def key(name: str) -> str:
    """Names are matched without regard to case: «Kari» and «kari» are one user."""
    return name.casefold()


# -- reading ----------------------------------------------------------------------------------


def load_users(path: Path) -> dict[str, WebUser]:
    """The users in ``path`` by ``key(name)``; a missing file is an error naming it."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsersFileError(
            [Problem(str(path), "no such file; add a user with `skjemapost user add NAME --role hr`")],
            str(path),
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsersFileError([Problem(str(path), f"not valid TOML: {exc}")], str(path)) from None
    return parse_users(raw, str(path))


def parse_users(raw: dict[str, Any], source: str = "") -> dict[str, WebUser]:
    problems: list[Problem] = []
    extra = sorted(set(raw) - {"users"})
    problems += [Problem(k, "unknown key (the file holds only [[users]] entries)") for k in extra]
    entries = raw.get("users", [])
    if not isinstance(entries, list):
        return _fail([*problems, Problem("users", "expected [[users]] entries")], source)
    users: dict[str, WebUser] = {}
    for i, entry in enumerate(entries):
        where = f"users[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "expected a table with name, role and password_hash"))
            continue
        found = _entry(entry, where, problems)
        if found is None:
            continue
        if key(found.name) in users:
            problems.append(Problem(f"{where}.name", f"{found.name!r} appears twice"))
        users[key(found.name)] = found
    return _fail(problems, source) if problems else users


def _entry(entry: dict[str, Any], where: str, problems: list[Problem]) -> WebUser | None:  # noqa: C901 - one flat check per key
    before = len(problems)
    for k in sorted(set(entry) - {"name", "role", "faculty", "password_hash"}):
        problems.append(Problem(f"{where}.{k}", "unknown key"))
    values: dict[str, str] = {}
    for k in ("name", "role", "faculty", "password_hash"):
        v = entry.get(k)
        if v is None and k != "faculty":
            problems.append(Problem(f"{where}.{k}", "missing"))
        elif v is not None and not isinstance(v, str):
            problems.append(Problem(f"{where}.{k}", f"expected a string, got {type(v).__name__}"))
        elif v is not None:
            values[k] = v
    name, role, faculty = values.get("name", ""), values.get("role"), values.get("faculty")
    if "name" in values:
        try:
            check_name(name)
        except UserError as exc:
            problems.append(Problem(f"{where}.name", str(exc)))
    if role is not None and role not in ROLES:
        problems.append(Problem(f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}"))
    if role == "coordinator" and not faculty:
        problems.append(Problem(f"{where}.faculty", "a coordinator needs a faculty"))
    if role == "hr" and faculty:
        problems.append(Problem(f"{where}.faculty", "hr sees every faculty; remove the faculty"))
    if "password_hash" in values:
        try:
            extract_parameters(values["password_hash"])
        except InvalidHashError:
            problems.append(
                Problem(
                    f"{where}.password_hash",
                    "not an argon2 hash; set the password again with `skjemapost user add`",
                )
            )
    if len(problems) > before:
        return None
    return WebUser(name, cast(Role, role), faculty or None, values["password_hash"])


def _fail(problems: list[Problem], source: str) -> dict[str, WebUser]:
    raise UsersFileError(problems, source)


# -- writing ----------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A TOML basic string (the file is small; a TOML writer is not worth a dependency)."""
    out = []
    for c in text:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def dump_users(users: Iterable[WebUser]) -> str:
    parts = [HEADER]
    for u in users:
        lines = ["[[users]]", f"name = {_quote(u.name)}", f"role = {_quote(u.role)}"]
        if u.faculty:
            lines.append(f"faculty = {_quote(u.faculty)}")
        lines.append(f"password_hash = {_quote(u.password_hash)}")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def save_users(path: Path, users: Iterable[WebUser]) -> None:
    """Replace ``path`` atomically with a file created at mode 0600 (never readable by others,
    not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp uses 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dump_users(users))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_user(name: str, role: str, faculty: str | None, password: str) -> WebUser:
    check_name(name)
    if role not in ROLES:
        raise UserError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if role == "coordinator" and not faculty:
        raise UserError(f"user {name!r}: a coordinator needs --faculty")
    if role == "hr" and faculty:
        raise UserError(f"user {name!r}: hr sees every faculty; leave out --faculty")
    if not password:
        raise UserError(f"user {name!r}: the password is empty")
    return WebUser(name, role, faculty or None, hash_password(password))


def add_user(path: Path, name: str, role: str, faculty: str | None, password: str) -> None:
    """Add user ``name`` to ``path`` (created if missing, mode 0600), replacing one of that name."""
    user = new_user(name, role, faculty, password)
    users = load_users(path) if path.exists() else {}
    users[key(name)] = user
    save_users(path, users.values())


def remove_user(path: Path, name: str) -> bool:
    """Remove user ``name``; False if there was none."""
    users = load_users(path)
    if users.pop(key(name), None) is None:
        return False
    save_users(path, users.values())
    return True


# -- the running app's view -------------------------------------------------------------------


class UserDirectory:
    """The users file as the web app sees it: re-read when it changes, checked at each login."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, WebUser] = {}
        self._error: UsersFileError | None = None

    def users(self) -> dict[str, WebUser]:
        """The current users. A file that turned bad raises UsersFileError (callers fail closed)."""
        try:
            st = self.path.stat()
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen or (seen is None and self._error is None):
                self._seen = seen
                try:
                    self._users, self._error = load_users(self.path), None
                except UsersFileError as exc:
                    self._users, self._error = {}, exc
            if self._error is not None:
                raise self._error
            return self._users

    def get(self, name: str) -> WebUser | None:
        return self.users().get(key(name))

    def authenticate(self, name: str, password: str) -> WebUser | None:
        """The user if the password is right; else None, after the same work for an unknown name."""
        user = self.get(name) if name else None
        ok = verify_password(user.password_hash if user else _dummy_hash(), password)
        return user if ok and user is not None else None


class LoginLimiter:
    """Failed logins per key (a user name, a client address) within a sliding window, in memory.

    A key with ``attempts`` failures in the window is refused, right password or not, until the
    oldest failure leaves the window. Time comes from the caller's clock."""

    def __init__(self, attempts: int, window: dt.timedelta) -> None:
        self.attempts, self.window = attempts, window
        self._fails: dict[str, deque[dt.datetime]] = {}

    def _recent(self, k: str, now: dt.datetime) -> deque[dt.datetime]:
        q = self._fails.get(k, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def blocked_until(self, keys: list[str], now: dt.datetime) -> dt.datetime | None:
        until = [q[0] + self.window for q in (self._recent(k, now) for k in keys) if len(q) >= self.attempts]
        return max(until) if until else None

    def failed(self, keys: list[str], now: dt.datetime) -> None:
        if len(self._fails) > 10_000:  # names sprayed by a script: forget what has expired
            self._fails = {k: q for k, q in self._fails.items() if self._recent(k, now)}
        for k in keys:
            self._fails.setdefault(k, deque()).append(now)

    def clear(self, k: str) -> None:
        self._fails.pop(k, None)


def check_web(
    users_file: Path, secret: str | None, secret_env: str, faculties: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(facts, problems) about the web page for `skjemapost check`. The page is optional: no
    users file is a fact, not a problem; a bad file, a coordinator of an unknown faculty, or
    users without the session key are problems."""
    if not users_file.exists():
        return [f"web page: no users file {users_file}; `skjemapost user add` before `skjemapost serve`"], []
    try:
        users = load_users(users_file)
    except SkjemapostError as exc:
        return [], [f"web page: {exc}"]
    known = set(faculties)
    roles = [u.faculty or "hr" for u in users.values()]
    facts = [f"web page: {len(users)} user(s) in {users_file} ({', '.join(sorted(roles)) or 'none'})"]
    problems = [
        f"web page: user {u.name!r} coordinates faculty {u.faculty!r}, which has no "
        "[[coordinators]] entry in the config"
        for u in users.values()
        if u.faculty and u.faculty not in known
    ]
    if not secret:
        problems.append(
            f"{secret_env}: environment variable is not set; it holds the key that signs "
            "the web page's session cookies (at least 16 characters)"
        )
    return facts, problems
