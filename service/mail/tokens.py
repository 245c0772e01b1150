"""Reference tokens: one per unit and campaign, short enough to type, hard to get wrong.

A reference looks like ``ABCD-EFGH``: eight symbols of Crockford's base32 (no I, L, O or U, so
nothing looks like 1 or 0). The symbols are

    5 × id     HMAC(secret, "id", campaign, unit)     who it is (25 bits)
    2 × tag    HMAC(secret, "tag", campaign, id)      the keyed check (10 bits)
    1 × check  mod-37 check symbol (ISO 7064 style)  catches every single-symbol typo and
                                                      every swap of two neighbours, keylessly

so a mistyped reference is refused before any lookup, and a made-up one passes the keyed check only
once in 1,024 tries and still has to equal a real unit's reference. Parsing forgives what people
and mail clients do to a code: lower case, spaces, a missing or extra dash, O for 0 and I or L for 1.

The *stamp* is the machine twin of the reference, hidden inside the .xlsx: it also names the
campaign and unit and carries a full-length MAC, so a form is matched even when the subject was
rewritten, and a form from another campaign or a forged one is recognised.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from service.errors import TokenError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The check symbol ranges over 37 values, so it needs five symbols beyond the base32 ones.
CHECK_ALPHABET = ALPHABET + "*~$=U"
_ID_LEN, _TAG_LEN = 5, 2
_BODY_LEN = _ID_LEN + _TAG_LEN
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_STAMP_PREFIX = "skjemapost:1"
REFERENCE_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])([0-9A-Za-z]{4})[ -]?([0-9A-Za-z]{3}[0-9A-Za-z*~$=])(?![0-9A-Za-z])"
)


def _symbols(digest: bytes, n: int) -> str:
    value = int.from_bytes(digest, "big")
    out = []
    for _ in range(n):
        value, rem = divmod(value, 32)
        out.append(ALPHABET[rem])
    return "".join(out)


def _mac(secret: bytes, *parts: str) -> bytes:
    return hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def _check_symbol(body: str) -> str:
    # ISO 7064 MOD 37,36-like: with a prime modulus every single substitution and every adjacent
    # transposition changes the sum.
    total = 0
    for ch in body:
        total = (total * 2 + ALPHABET.index(ch)) % 37
    return CHECK_ALPHABET[-total % 37]


def _format(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def reference(secret: bytes, campaign: str, unit_code: str) -> str:
    """The unit's reference for this campaign, formatted ``ABCD-EFGH``."""
    ident = _symbols(_mac(secret, "id", campaign, unit_code), _ID_LEN)
    tag = _symbols(_mac(secret, "tag", campaign, ident), _TAG_LEN)
    body = ident + tag
    return _format(body + _check_symbol(body))


def normalise(text: str) -> str:
    """Undo what people do to a reference: case, spaces, dashes, O/0 and I/L/1.

    Raises TokenError when what is left cannot be a reference at all.
    """
    cleaned = re.sub(r"[\s\-_.]", "", text).upper().translate(_LOOKALIKES)
    if len(cleaned) != _BODY_LEN + 1:
        raise TokenError(f"{text!r} is not a reference: it has {len(cleaned)} symbols, not 8")
    if any(ch not in ALPHABET for ch in cleaned[:-1]) or cleaned[-1] not in CHECK_ALPHABET:
        raise TokenError(f"{text!r} is not a reference: it has symbols outside the code alphabet")
    return _format(cleaned)


def well_formed(ref: str) -> bool:
    """True if ``ref`` normalises to a reference whose check symbol holds; no secret needed.

    The keyless half of ``verify``: it catches every single typo and neighbour swap, and 36 of 37
    random words, so free text can be searched for references before any keyed check.
    """
    try:
        body = normalise(ref).replace("-", "")
    except TokenError:
        return False
    return _check_symbol(body[:-1]) == body[-1]


def verify(secret: bytes, campaign: str, text: str) -> str:
    """Return the normalised reference if it passes both checks; raise TokenError otherwise.

    This says only that the reference could have been issued in this campaign; which unit it
    belongs to is a lookup among the units' references.
    """
    ref = normalise(text)
    body, check = ref.replace("-", "")[:-1], ref[-1]
    if _check_symbol(body) != check:
        raise TokenError(f"reference {ref} has a typo: its check symbol does not match")
    ident, tag = body[:_ID_LEN], body[_ID_LEN:]
    expected = _symbols(_mac(secret, "tag", campaign, ident), _TAG_LEN)
    if not hmac.compare_digest(tag, expected):
        raise TokenError(f"reference {ref} was not issued for campaign {campaign}")
    return ref


def find_references(text: str) -> list[str]:
    """Candidate references in free text (a subject or body), normalised, in order, unchecked."""
    found: list[str] = []
    for m in REFERENCE_PATTERN.finditer(text):
        try:
            ref = normalise(m.group(1) + m.group(2))
        except TokenError:
            continue
        if ref not in found:
            found.append(ref)
    return found


@dataclass(frozen=True)
class Stamp:
    campaign: str
    unit_code: str
    reference: str


def stamp(secret: bytes, campaign: str, unit_code: str) -> str:
    """The hidden machine token for the unit's form: campaign, unit, reference and a full MAC."""
    ref = reference(secret, campaign, unit_code)
    mac = _mac(secret, "stamp", campaign, unit_code, ref).hex()[:32]
    return f"{_STAMP_PREFIX}:{campaign}:{unit_code}:{ref}:{mac}"


def read_stamp(secret: bytes, text: str) -> Stamp:
    """Check a stamp found in a form and say whose it is; raise TokenError if it is not genuine."""
    parts = text.strip().split(":")
    if len(parts) != 6 or ":".join(parts[:2]) != _STAMP_PREFIX:
        raise TokenError("the form's hidden stamp is malformed")
    campaign, unit_code, ref, mac = parts[2:]
    expected = _mac(secret, "stamp", campaign, unit_code, ref).hex()[:32]
    if not hmac.compare_digest(mac, expected):
        raise TokenError("the form's hidden stamp does not verify: not issued by this service")
    return Stamp(campaign, unit_code, ref)
