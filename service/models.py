"""Values that cross module boundaries: frozen, typed, and free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Language = Literal["nb", "en"]
LANGUAGES: tuple[Language, ...] = get_args(Language)


@dataclass(frozen=True)
class Unit:
    """One unit of the roster: who leads it and who is its safety representative (verneombud)."""

    code: str
    name: str
    faculty: str
    leader_name: str
    leader_email: str
    language: Language
    verneombud_name: str = ""
    verneombud_email: str = ""
    superior_email: str = ""


@dataclass(frozen=True)
class NewMail:
    """A mail ready for the outbox: its dedupe key says which step of the campaign it is."""

    kind: str
    unit_code: str | None
    dedupe_key: str
    message_id: str
    recipients: tuple[str, ...]
    subject: str
    payload: bytes
