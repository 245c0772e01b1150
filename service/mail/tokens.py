"""Reference tokens: one per unit and campaign, short enough to type, hard to get wrong.

A reference looks like ``ABCD-EFGH``: eight symbols of Crockford's base32, letters and digits only
(no I, L, O or U, so nothing looks like 1 or 0). The symbols are

    5 × id     HMAC(secret, "id", campaign, unit)     who it is (25 bits)
    2 × tag    HMAC(secret, "tag", campaign, id)      the keyed check (10 bits)
    1 × check  Damm check symbol over GF(32)          catches every single-symbol typo and
                                                      every swap of two neighbours, keylessly

so a mistyped reference is refused before any lookup, and a made-up one passes the keyed check only
once in 1,024 tries and still has to equal a real unit's reference. Parsing forgives what people
and mail clients do to a code: lower case, spaces, a missing or extra dash, O for 0 and I or L for 1.
docs/REFERENCES.md explains the check symbol and why it catches what it claims.

Design note — the retired check symbol. References issued before the Damm check ended in an
ISO 7064-style mod-37 symbol, which needed five symbols beyond base32 (``* ~ $ = U``) and in a
subject looked like an encoding error. Their first seven symbols are computed exactly as now, so
such a reference names the same unit. They are still *read* (``verify``), never issued: replies to
mails sent before the change, and stored raw mail re-processed after a fix, carry them in their
subjects, and refusing them would send those replies to a person instead of matching them. An old
check symbol is accepted only when the keyed tag holds too, so it opens no door for a typo: a
mistyped current reference that happens to satisfy the old check still fails the tag (and is
reported as a typo), unless it is the same unit's old spelling.

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
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# GF(32) as polynomials over GF(2) modulo x^5 + x^2 + 1 (irreducible); a symbol's index in
# ALPHABET is its polynomial's bit pattern. The Damm step is x∘y = A·x ⊕ y with A = x (the value
# 2): any A other than 0 and 1 makes the quasigroup totally anti-symmetric (docs/REFERENCES.md).
_MODULUS = 0b100101
_A = 2
# the retired mod-37 check (see the design note): read, never issued
_LEGACY_CHECK_SYMBOLS = ALPHABET + "*~$=U"
_ID_LEN, _TAG_LEN = 5, 2
_BODY_LEN = _ID_LEN + _TAG_LEN
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_STAMP_PREFIX = "skjemapost:1"
# A reference in free text: four symbols, maybe a space or dash, four more (the last may be a
# retired check symbol), written in one case. People copy a reference or type it in lower case;
# a word in mixed case ("Original", "Received") is a word, and a random word passes the check
# symbol once in 32 tries, so the case is what keeps such words from being taken for codes.
_UPPER = r"([0-9A-Z]{4})[ -]?([0-9A-Z]{3}[0-9A-Z*~$=])"
_LOWER = r"([0-9a-z]{4})[ -]?([0-9a-z]{3}[0-9a-z*~$=])"
REFERENCE_PATTERN = re.compile(rf"(?<![0-9A-Za-z])(?:{_UPPER}|{_LOWER})(?![0-9A-Za-z])")


def gf32_mul(x: int, y: int) -> int:
    """The product of two GF(32) elements (0–31), reduced modulo x^5 + x^2 + 1."""
    product = 0
    while y:
        if y & 1:
            product ^= x
        y >>= 1
        x <<= 1
        if x & 0b100000:
            x ^= _MODULUS
    return product


def damm_step(interim: int, value: int) -> int:
    """One step of the Damm algorithm: the quasigroup operation interim ∘ value = A·interim ⊕ value."""
    return gf32_mul(_A, interim) ^ value


def _interim(symbols: str) -> int:
    interim = 0
    for ch in symbols:
        interim = damm_step(interim, _VALUE[ch])
    return interim


def check_symbol(body: str) -> str:
    """The symbol that brings the Damm interim of ``body`` + it to 0 (``body`` in ALPHABET)."""
    # A·interim ⊕ c = 0 exactly when c = A·interim: subtraction is XOR in characteristic 2
    return ALPHABET[gf32_mul(_A, _interim(body))]


def damm_valid(code: str) -> bool:
    """True if ``code`` (symbols of ALPHABET, check symbol last) carries a correct check symbol."""
    return all(ch in _VALUE for ch in code) and _interim(code) == 0


def _legacy_check_symbol(body: str) -> str:
    # ISO 7064 MOD 37,36-like, as issued before the Damm check (the module's design note)
    total = 0
    for ch in body:
        total = (total * 2 + _VALUE[ch]) % 37
    return _LEGACY_CHECK_SYMBOLS[-total % 37]


def _symbols(digest: bytes, n: int) -> str:
    value = int.from_bytes(digest, "big")
    out = []
    for _ in range(n):
        value, rem = divmod(value, 32)
        out.append(ALPHABET[rem])
    return "".join(out)


def _mac(secret: bytes, *parts: str) -> bytes:
    return hmac.new(secret, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def _format(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def _tag_holds(secret: bytes, campaign: str, body: str) -> bool:
    ident, tag = body[:_ID_LEN], body[_ID_LEN:]
    return hmac.compare_digest(tag, _symbols(_mac(secret, "tag", campaign, ident), _TAG_LEN))


def reference(secret: bytes, campaign: str, unit_code: str) -> str:
    """The unit's reference for this campaign, formatted ``ABCD-EFGH``."""
    ident = _symbols(_mac(secret, "id", campaign, unit_code), _ID_LEN)
    tag = _symbols(_mac(secret, "tag", campaign, ident), _TAG_LEN)
    body = ident + tag
    return _format(body + check_symbol(body))


def normalise(text: str) -> str:
    """Undo what people do to a reference: case, spaces, dashes, O/0 and I/L/1.

    The check symbol stays as written (a retired one too); raises TokenError when what is left
    cannot be a reference at all.
    """
    cleaned = re.sub(r"[\s\-_.]", "", text).upper().translate(_LOOKALIKES)
    if len(cleaned) != _BODY_LEN + 1:
        raise TokenError(f"{text!r} is not a reference: it has {len(cleaned)} symbols, not 8")
    if any(ch not in _VALUE for ch in cleaned[:-1]) or cleaned[-1] not in _LEGACY_CHECK_SYMBOLS:
        raise TokenError(f"{text!r} is not a reference: it has symbols outside the code alphabet")
    return _format(cleaned)


def well_formed(ref: str) -> bool:
    """True if ``ref`` normalises to a reference whose check symbol holds; no secret needed.

    The keyless half of ``verify``: it catches every single typo and neighbour swap, and 31 of 32
    random words, so free text can be searched for references before any keyed check. Only the
    current check counts here; a reference with the retired check symbol needs ``verify``.
    """
    try:
        return damm_valid(normalise(ref).replace("-", ""))
    except TokenError:
        return False


def verify(secret: bytes, campaign: str, text: str) -> str:
    """Return the reference, in its current form, if it passes both checks; raise TokenError otherwise.

    This says only that the reference could have been issued in this campaign; which unit it
    belongs to is a lookup among the units' references. A reference with the retired check symbol
    is accepted when its keyed tag holds, and returned with the current check symbol.
    """
    ref = normalise(text)
    code = ref.replace("-", "")
    body, check = code[:-1], code[-1]
    if damm_valid(code):
        current = ref
    elif _legacy_check_symbol(body) == check and _tag_holds(secret, campaign, body):
        current = _format(body + check_symbol(body))
    else:
        raise TokenError(f"reference {ref} has a typo: its check symbol does not match")
    if not _tag_holds(secret, campaign, body):
        raise TokenError(f"reference {ref} was not issued for campaign {campaign}")
    return current


def find_references(text: str) -> list[str]:
    """Candidate references in free text (a subject or body), normalised, in order, unchecked."""
    found: list[str] = []
    for m in REFERENCE_PATTERN.finditer(text):
        try:
            ref = normalise("".join(part for part in m.groups() if part))
        except TokenError:
            continue
        if ref not in found:
            found.append(ref)
    return found


@dataclass(frozen=True)
class Stamp:
    campaign: str
    unit_code: str
    reference: str  # in its current form, also for a form stamped before the check changed


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
    # the MAC vouches for the stamp as written; a stamp from before the Damm check names the
    # reference with its retired check symbol, whose seven symbols before it are unchanged
    body = ref.replace("-", "")[:-1]
    if len(body) == _BODY_LEN and all(ch in _VALUE for ch in body):
        ref = _format(body + check_symbol(body))
    return Stamp(campaign, unit_code, ref)
