"""One error root for skjemapost.

Every error the service raises on purpose is a ``SkjemapostError``. Subclasses also inherit the
builtin they resemble (``ValueError``, ``LookupError``, ``ConnectionError``) so callers that know
nothing of skjemapost still catch them sensibly. The CLI turns them into a message and an exit
code at the edge, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class SkjemapostError(Exception):
    """Root of every error skjemapost raises on purpose."""

    #: exit code the CLI uses for this kind of error
    exit_code: int = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with some input, and where it is.

    ``where`` names the place in the input's own terms: a config key path (``smtp.port``), a
    roster position (``row 7, column leader_email``), a form field (``fields[3].required_when``)
    or a spreadsheet cell (``Skjema!B14``).
    """

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ProblemsError(SkjemapostError, ValueError):
    """An input with one or more problems, all reported at once."""

    what: str = "input"

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        self.problems: Sequence[Problem] = tuple(problems)
        self.source = source
        head = f"{self.what} {source}".strip()
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{head}: {n} problem{'s' if n != 1 else ''}\n{lines}")


class ConfigError(ProblemsError):
    """The configuration is invalid; each problem names its key path."""

    what = "config"
    exit_code = 2


class RosterError(ProblemsError):
    """The roster has bad rows; each problem names its row and column. Nothing was imported."""

    what = "roster"
    exit_code = 2


class FormDefinitionError(ProblemsError):
    """A form definition file (forms/*.toml) is invalid."""

    what = "form definition"
    exit_code = 2


class FormReadError(SkjemapostError, ValueError):
    """A spreadsheet could not be read as the form at all (not a workbook, wrong form...)."""

    def __init__(self, message: str, *, code: str = "unreadable") -> None:
        self.code = code
        super().__init__(message)


class UnknownUnitError(SkjemapostError, LookupError):
    """A unit code that is not in the roster."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"unknown unit {code!r}: it is not in the imported roster")


class TokenError(SkjemapostError, ValueError):
    """A reference token that is malformed or fails its check."""


class StoreError(SkjemapostError, RuntimeError):
    """The database is missing, out of date or unreachable."""
