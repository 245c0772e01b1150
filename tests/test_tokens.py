"""Reference tokens: short, typo-resistant, keyed; stamps that cannot be forged."""

from __future__ import annotations

import pytest

from service.errors import TokenError
from service.mail import tokens

SECRET = b"test-secret"


def test_reference_shape_and_determinism():
    """ABCD-EFGH, the same every time for the same unit and campaign, different across units."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    assert len(ref) == 9 and ref[4] == "-"
    assert ref == tokens.reference(SECRET, "aml-2020", "IE-IDI")
    refs = {tokens.reference(SECRET, "aml-2020", f"U-{i}") for i in range(500)}
    assert len(refs) == 500
    assert tokens.reference(SECRET, "aml-2021", "IE-IDI") != ref
    assert tokens.reference(b"other", "aml-2020", "IE-IDI") != ref


def test_common_mangling_is_accepted():
    """Lower case, spaces, a missing dash, O for 0 and I/L for 1 all parse back."""
    ref = tokens.reference(SECRET, "aml-2020", "IE-IDI")
    body = ref.replace("-", "")
    variants = [
        ref.lower(),
        body,
        f" {body[:4]} {body[4:]} ",
        f"{body[:2]}-{body[2:]}",
        ref.replace("0", "O").replace("1", "l"),
    ]
    for v in variants:
        assert tokens.verify(SECRET, "aml-2020", v) == ref


def test_every_single_typo_and_neighbour_swap_is_caught():
    """Any one wrong symbol, or two neighbours swapped, fails the check."""
    for code in ("IE-IDI", "NV-IBI", "HF-IMU", "X"):
        body = tokens.reference(SECRET, "aml-2020", code).replace("-", "")
        for i in range(8):
            for ch in tokens.ALPHABET:
                typo = body[:i] + ch + body[i + 1 :]
                if typo != body:
                    with pytest.raises(TokenError):
                        tokens.verify(SECRET, "aml-2020", typo)
            if i < 7 and body[i] != body[i + 1]:
                swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
                with pytest.raises(TokenError):
                    tokens.verify(SECRET, "aml-2020", swapped)


def test_guessed_references_rarely_pass_the_keyed_check():
    """A made-up reference with a correct check symbol fails the keyed check about 1023/1024 times."""
    passed = 0
    for n in range(4000):
        body = "".join(tokens.ALPHABET[(n >> (5 * k)) % 32] for k in range(7))
        guess = body + tokens._check_symbol(body)
        try:
            tokens.verify(SECRET, "aml-2020", guess)
            passed += 1
        except TokenError:
            pass
    assert passed < 20


def test_garbage_is_not_a_reference():
    """Too short, too long or foreign symbols: a TokenError saying why."""
    for bad in ("", "ABC", "ABCD-EFGH-JK", "ÆBCD-EFGH"):
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
