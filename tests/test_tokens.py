"""Reference tokens: short, typo-resistant, keyed, letters and digits only; stamps that cannot be forged."""

from __future__ import annotations

import itertools

import pytest

from service.errors import TokenError
from service.mail import tokens

SECRET = b"test-secret"
CODES = [f"U-{i}" for i in range(400)] + ["IE-IDI", "NV-IBI", "HF-IMU", "X"]


def typos(code: str) -> list[str]:
    """Every single-symbol substitution of ``code`` within the alphabet."""
    return [
        code[:i] + ch + code[i + 1 :] for i in range(len(code)) for ch in tokens.ALPHABET if ch != code[i]
    ]


def swaps(code: str) -> list[str]:
    """Every swap of two neighbouring symbols that changes ``code``."""
    return [
        code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        for i in range(len(code) - 1)
        if code[i] != code[i + 1]
    ]


def legacy(ref: str) -> str:
    """The same reference as it was issued before the Damm check: the retired mod-37 symbol last."""
    body = ref.replace("-", "")[:-1]
    return f"{body[:4]}-{body[4:]}{tokens._legacy_check_symbol(body)}"


def test_reference_shape_and_determinism():
    """ABCD-EFGH, the same every time for the same unit and campaign, different across units."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    assert len(ref) == 9 and ref[4] == "-"
    assert ref == tokens.reference(SECRET, "aml-2020", "IE-IDI")
    refs = {tokens.reference(SECRET, "aml-2020", f"U-{i}") for i in range(500)}
    assert len(refs) == 500
    assert tokens.reference(SECRET, "aml-2021", "IE-IDI") != ref
    assert tokens.reference(b"other", "aml-2020", "IE-IDI") != ref


def test_references_are_letters_and_digits_only():
    """No reference ends in * ~ $ = or U (which look like encoding errors in a subject): every check
    symbol in 5,000 references is one of Crockford's 32 letters and digits, and all 32 occur."""
    checks = {tokens.reference(SECRET, "aml-2020", f"U-{i}")[-1] for i in range(5000)}
    assert checks == set(tokens.ALPHABET)
    assert tokens.ALPHABET.isalnum() and set(tokens.ALPHABET).isdisjoint("ILOU")


def test_the_damm_operation_is_a_totally_anti_symmetric_quasigroup():
    """The whole 32 × 32 table, exhaustively: each row and column is a permutation (a changed
    symbol changes the interim, and a changed interim stays changed), and (c∘x)∘y = (c∘y)∘x only
    when x = y (a swap of neighbours changes the interim). With the check symbol bringing the
    interim to 0, this is the proof that every single typo and every neighbour swap is caught."""
    n = range(32)
    table = [[tokens.damm_step(x, y) for y in n] for x in n]
    for x in n:
        assert sorted(table[x]) == list(n), f"row {x} is not a permutation"
        assert sorted(table[y][x] for y in n) == list(n), f"column {x} is not a permutation"
    for c, x, y in itertools.product(n, n, n):
        if x != y:
            assert table[table[c][x]][y] != table[table[c][y]][x], (c, x, y)


def test_gf32_multiplication_is_a_field():
    """x^5 + x^2 + 1 is irreducible: every nonzero element has an inverse, and A is neither 0 nor 1."""
    for x in range(1, 32):
        assert sum(tokens.gf32_mul(x, y) == 1 for y in range(1, 32)) == 1, x
    assert tokens._A not in (0, 1)


def test_every_single_typo_and_neighbour_swap_fails_the_check_symbol():
    """For 404 references, every one of the 248 substitutions and every neighbour swap fails the
    keyless check, exhaustively; the reference itself passes it."""
    for unit in CODES:
        code = tokens.reference(SECRET, "aml-2020", unit).replace("-", "")
        assert tokens.damm_valid(code) and tokens.well_formed(code)
        for wrong in typos(code) + swaps(code):
            assert not tokens.damm_valid(wrong), (code, wrong)
            assert not tokens.well_formed(wrong), (code, wrong)


def test_a_typo_never_names_another_unit():
    """Through ``verify``, every single typo and neighbour swap of every unit's reference is refused,
    or read as that same reference (a mistyped check symbol that is the unit's retired one), or
    names no unit at all; never another unit."""
    issued = {tokens.reference(SECRET, "aml-2020", unit) for unit in CODES}
    for ref in issued:
        code = ref.replace("-", "")
        for wrong in typos(code) + swaps(code):
            try:
                got = tokens.verify(SECRET, "aml-2020", wrong)
            except TokenError:
                continue
            assert got == ref or got not in issued, (ref, wrong, got)


def test_common_mangling_is_accepted():
    """Lower case, spaces, a missing dash, O for 0 and I/L for 1 all parse back (Crockford's reading)."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    body = ref.replace("-", "")
    variants = [
        ref.lower(),
        body,
        f" {body[:4]} {body[4:]} ",
        f"{body[:2]}-{body[2:]}",
        ref.replace("0", "O").replace("1", "l"),
        ref.replace("1", "I").replace("0", "o"),
    ]
    for v in variants:
        assert tokens.verify(SECRET, "aml-2020", v) == ref
    assert tokens.normalise("oil0-1lio") == "0110-1110"


def test_a_reference_with_the_retired_check_symbol_is_still_read():
    """A reference issued before the Damm check (mod-37 symbol, maybe * ~ $ = U) verifies to the
    same unit's current reference; its typos do not."""
    seen_symbols = set()
    for unit in CODES:
        ref = tokens.reference(SECRET, "aml-2020", unit)
        old = legacy(ref)
        seen_symbols.add(old[-1])
        assert tokens.verify(SECRET, "aml-2020", old) == ref
        assert tokens.verify(SECRET, "aml-2020", old.lower().replace("-", " ")) == ref
        if old[-1] not in tokens.ALPHABET:
            assert old in tokens.find_references(f"SV: Skjema [ref {old}]")
    assert seen_symbols & set("*~$=U"), "the sample never hit a retired-only symbol"
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    old = legacy(ref)
    for wrong in "*~$=U" + tokens.ALPHABET:
        if wrong not in (old[-1], ref[-1]):
            with pytest.raises(TokenError, match="typo"):
                tokens.verify(SECRET, "aml-2020", old[:-1] + wrong)


def test_an_old_check_symbol_with_a_wrong_tag_is_a_typo():
    """A body that satisfies the retired check but carries the wrong keyed tag is reported as a typo."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    body = ref.replace("-", "")[:-1]
    other_tag = next(
        body[:5] + a + b
        for a in tokens.ALPHABET
        for b in tokens.ALPHABET
        if body[:5] + a + b != body
        and tokens.check_symbol(body[:5] + a + b) != tokens._legacy_check_symbol(body[:5] + a + b)
    )
    with pytest.raises(TokenError, match="typo"):
        tokens.verify(SECRET, "aml-2020", other_tag + tokens._legacy_check_symbol(other_tag))


def test_guessed_references_rarely_pass_the_keyed_check():
    """A made-up reference with a correct check symbol fails the keyed check about 1023/1024 times."""
    passed = 0
    for n in range(4000):
        body = "".join(tokens.ALPHABET[(n >> (5 * k)) % 32] for k in range(7))
        guess = body + tokens.check_symbol(body)
        try:
            tokens.verify(SECRET, "aml-2020", guess)
            passed += 1
        except TokenError as exc:
            assert "not issued" in str(exc)
    assert passed < 20


def test_garbage_is_not_a_reference():
    """Too short, too long or foreign symbols: a TokenError saying why."""
    for bad in ("", "ABC", "ABCD-EFGH-JK", "ÆBCD-EFGH", "AB*D-EFGH"):
        with pytest.raises(TokenError):
            tokens.verify(SECRET, "aml-2020", bad)


def test_well_formed_checks_the_symbol_without_the_secret():
    """Any issued reference, however mangled, is well formed; a typo, a swap or garbage is not."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    body = ref.replace("-", "")
    other = tokens.reference(b"another secret", "aml-2021", "NV-IBI")
    mangled = (ref.lower(), f" {body[:4]} {body[4:]} ", ref.replace("0", "O").replace("1", "l"))
    for good in (ref, other, *mangled):
        assert tokens.well_formed(good), good
    typo = body[:3] + next(ch for ch in tokens.ALPHABET if ch != body[3]) + body[4:]
    assert not tokens.well_formed(typo)
    i = next(i for i in range(7) if body[i] != body[i + 1])
    swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
    assert not tokens.well_formed(swapped)
    for bad in ("", "ABC", "ABCD-EFGH-JK", "ÆBCD-EFGH", "vedlagte"):
        assert not tokens.well_formed(bad)


def test_find_references_in_a_rewritten_subject():
    """A reference survives subject rewriting: found in any case and spacing."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    found = tokens.find_references(f"SV: RE: [EXTERNAL] Skjema [ref {ref.lower()}]")
    assert ref in found


def test_a_word_in_mixed_case_is_not_taken_for_a_reference():
    """'Original' passes the check symbol by chance (1 in 32 words do), but a reference is written
    in one case: copied in capitals or typed in lower case."""
    assert tokens.well_formed("Original")
    assert tokens.find_references("Original message headers: Received from Delivery") == []
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    assert tokens.find_references(f"ref {ref.lower()} and {ref.replace('-', '')}") == [ref]


def test_stamp_round_trip_and_forgery():
    """A stamp names its campaign and unit; a changed one does not verify."""
    st = tokens.stamp(SECRET, "aml-2020", "IE-IDI")
    got = tokens.read_stamp(SECRET, st)
    assert (got.campaign, got.unit_code) == ("aml-2020", "IE-IDI")
    assert got.reference == tokens.reference(SECRET, "aml-2020", "IE-IDI")
    with pytest.raises(TokenError):
        tokens.read_stamp(SECRET, st.replace("IE-IDI", "IE-IIK"))
    with pytest.raises(TokenError):
        tokens.read_stamp(b"other", st)
    with pytest.raises(TokenError):
        tokens.read_stamp(SECRET, "hello")


def test_a_stamp_from_before_the_damm_check_names_the_current_reference():
    """A form stamped with the retired check symbol still verifies, and its reference reads as today's."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    old = legacy(ref)
    mac = tokens._mac(SECRET, "stamp", "aml-2020", "IE-IDI", old).hex()[:32]
    got = tokens.read_stamp(SECRET, f"skjemapost:1:aml-2020:IE-IDI:{old}:{mac}")
    assert (got.unit_code, got.reference) == ("IE-IDI", ref)
