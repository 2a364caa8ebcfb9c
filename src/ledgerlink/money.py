"""Money: amounts are :class:`~decimal.Decimal` kronor (NUMERIC in the database), kept in whole öre.

The one rounding rule is **half up** (a half öre goes away from zero: 0.005 → 0.01, -0.005 → -0.01).
Swedish bookkeeping and Fortnox round öre that way (a voucher row of 12.345 is 12.35 in Fortnox, and
closing adjustments must balance the way Fortnox will book them), so the closing and the Fortnox
export must use it. Bank amounts already come in whole öre, so quantising them changes nothing and only
checks; using the same rule there keeps one rule for the whole service instead of a second one (banker's
rounding) that no Swedish ledger uses.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

#: One öre, the smallest amount the ledger keeps.
ORE = Decimal("0.01")


def round_to_ore(value: Decimal | int | str) -> Decimal:
    """``value`` in whole öre (two decimals), a half öre rounded up (away from zero)."""
    return Decimal(value).quantize(ORE, rounding=ROUND_HALF_UP)
