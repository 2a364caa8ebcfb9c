"""The one money quantiser: whole öre, a half öre rounded up (away from zero)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerlink.money import ORE, round_to_ore


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.125", "0.13"),  # banker's rounding would give 0.12
        ("0.135", "0.14"),
        ("-0.125", "-0.13"),  # away from zero, as Fortnox books it
        ("12.344", "12.34"),
        ("-12.346", "-12.35"),
        ("1999.99", "1999.99"),  # a bank amount in whole öre is unchanged
        ("100", "100.00"),
    ],
)
def test_a_half_ore_rounds_up_away_from_zero(value: str, expected: str) -> None:
    result = round_to_ore(Decimal(value))
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == ORE.as_tuple().exponent


def test_integers_and_strings_are_taken_as_kronor() -> None:
    assert round_to_ore(250000) == Decimal("250000.00")
    assert round_to_ore("-0.005") == Decimal("-0.01")
