"""Reading a parsed TOML document key by key, collecting every problem with its key path.

``KeyReader`` is what makes ``config.settings.load`` report all mistakes of a file at once: each accessor
returns a typed value (or the default) and records a problem instead of raising.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from service.errors import Problem

#: deliberately loose: the roster and the mail server are the real judges of an address; this
#: catches the typos an operator makes in a config (a missing @, a stray space, no domain)
EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")

T = TypeVar("T")


class KeyReader:
    """Walks the parsed TOML, returning typed values (or defaults) and collecting problems.

    Every accessor records a problem under the full key path instead of raising, so one run
    reports every mistake in the file. Keys nobody asked for are reported too: a typo in an
    optional key would otherwise be silently ignored and its default used.
    """

    def __init__(self, raw: Mapping[str, Any], base: Path) -> None:
        self.raw = raw
        self.base = base
        self.problems: list[Problem] = []
        self.seen: set[str] = set()

    def bad(self, key: str, message: str) -> None:
        self.problems.append(Problem(key, message))

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def value(self, key: str, kind: type[T], default: T | None, what: str) -> T:
        got = self._get(key)
        if got is None:
            if default is None:
                self.bad(key, f"missing; expected {what}")
                return cast(T, _placeholder(kind))
            return default
        # bool is an int in Python; a `port = true` must not pass as port 1
        if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
            self.bad(key, f"expected {what}, got {type(got).__name__} {got!r}")
            return default if default is not None else cast(T, _placeholder(kind))
        return got

    def text(self, key: str, default: str | None = None, *, nonempty: bool = True) -> str:
        got = self.value(key, str, default, "a string").strip()
        if nonempty and not got and default is None:
            self.bad(key, "must not be empty")
        return got

    def integer(self, key: str, default: int | None, low: int, high: int) -> int:
        got = self.value(key, int, default, f"a whole number {low}–{high}")
        if not low <= got <= high:
            self.bad(key, f"{got} is outside {low}–{high}")
        return got

    def number(self, key: str, default: float, low: float, high: float) -> float:
        got = self._get(key)
        if got is None:
            return default
        if isinstance(got, bool) or not isinstance(got, int | float):
            self.bad(key, f"expected a number {low}–{high}, got {type(got).__name__} {got!r}")
            return default
        if not low <= got <= high:
            self.bad(key, f"{got} is outside {low}–{high}")
        return float(got)

    def optional_file(self, key: str) -> Path | None:
        got = self.text(key, "", nonempty=False)
        if not got:
            return None
        path = (self.base / got).resolve()
        if not path.is_file():
            self.bad(key, f"no such file: {path}")
        return path

    def flag(self, key: str, default: bool) -> bool:
        return self.value(key, bool, default, "true or false")

    def date(self, key: str) -> dt.date:
        got = self._get(key)
        day = as_date(got)
        if day is not None:
            return day
        self.bad(
            key,
            "missing; expected a date, YYYY-MM-DD"
            if got is None
            else f"expected a date YYYY-MM-DD, got {got!r}",
        )
        return dt.date(1970, 1, 1)

    def choice(self, key: str, options: tuple[str, ...], default: str | None) -> str:
        got = self.text(key, default)
        if got and got not in options:
            self.bad(key, f"{got!r} is not one of {', '.join(options)}")
        return got

    def email(self, key: str, default: str | None = None) -> str:
        got = self.text(key, default, nonempty=default is None)
        if got and not EMAIL.match(got):
            self.bad(key, f"{got!r} is not an email address")
        return got

    def env_name(self, key: str, default: str) -> str:
        got = self.text(key, default)
        if got and not ENV_NAME.match(got):
            self.bad(key, f"{got!r} is not an environment variable name")
        return got

    def path(self, key: str, default: str | None = None) -> Path:
        got = self.text(key, default)
        return (self.base / got).resolve() if got else self.base

    def items(self, key: str) -> list[Any]:
        got = self._get(key)
        if got is None:
            return []
        if not isinstance(got, list):
            self.bad(key, f"expected a list, got {type(got).__name__}")
            return []
        return got

    def unknown_keys(self) -> None:
        def walk(node: Mapping[str, Any], prefix: str) -> None:
            for name, sub in node.items():
                key = f"{prefix}{name}"
                if key in self.seen:
                    continue
                if isinstance(sub, Mapping) and any(s.startswith(key + ".") for s in self.seen):
                    walk(sub, key + ".")
                else:
                    self.bad(key, "unknown key (a typo?)")

        walk(self.raw, "")


def as_date(value: Any) -> dt.date | None:
    """A TOML date, or a "YYYY-MM-DD" string, as a date; None for anything else. A TOML date-time
    is a datetime, which is a date but never equal to one: it is refused."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:  # not a date, or no such day (2020-02-30)
            return None
    return None


def _placeholder(kind: type) -> Any:
    return {str: "", int: 0, bool: False, float: 0.0}.get(kind, "")


def checked(r: KeyReader, key: str, item: Any, ok: Callable[[str], bool], what: str) -> str:
    if not isinstance(item, str) or not ok(item.strip()):
        r.bad(key, f"{item!r} is not {what}")
        return ""
    return item.strip()


def list_email(r: KeyReader, key: str, item: Any) -> str:
    return checked(r, key, item, lambda s: bool(EMAIL.match(s)), "an email address")


def domain(r: KeyReader, key: str, item: Any) -> str:
    return checked(r, key, item, lambda s: bool(DOMAIN.match(s.lower())), "a domain name").lower()
