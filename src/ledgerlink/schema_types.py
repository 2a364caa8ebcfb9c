"""Value types shared by request schemas: what a client may send, checked once at the edge.

- :data:`MoneyIn`: money in a request is a decimal STRING (``"-125.50"``) with at most two decimals and
  at most 16 integer digits, what a ``NUMERIC(18, 2)`` column holds. A JSON number (``0.1``: a binary
  float by the time it is parsed), an exponent (``"1e999999999"``), ``NaN``, ``Infinity``, a plus sign
  or non-ASCII digits are a 422 naming the field.
- :data:`AccountNumberIn`: a bookkeeping account number in ASCII digits (full-width ``"１９３０"`` is
  not an account number, though ``str.isdigit`` says it is).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

MONEY_INTEGER_DIGITS = 16
MONEY_PATTERN = rf"^-?[0-9]{{1,{MONEY_INTEGER_DIGITS}}}(\.[0-9]{{1,2}})?$"
_MONEY = re.compile(MONEY_PATTERN)
_MAX_MONEY = Decimal(10) ** MONEY_INTEGER_DIGITS


def parse_money(value: Any) -> Decimal:
    """The one check of money sent by a client (see the module docstring); ValueError names the rule."""
    if isinstance(value, Decimal):  # from Python code (tests, internal callers), never from JSON
        if not value.is_finite() or abs(value) >= _MAX_MONEY or value != round(value, 2):
            raise ValueError("money must be finite, with at most 2 decimals and 16 integer digits")
        return value
    if not isinstance(value, str):
        raise ValueError('money is a decimal string such as "-125.50", not a JSON number')
    if not _MONEY.match(value):
        raise ValueError(
            'money is a decimal string such as "-125.50": ASCII digits, at most 2 decimals and '
            f"{MONEY_INTEGER_DIGITS} integer digits, no exponent"
        )
    return Decimal(value)


MoneyIn = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MONEY_PATTERN,
            "examples": ["-125.50"],
            "description": "A decimal string with at most 2 decimals (never a JSON number)",
        }
    ),
]
"""Money in a request body (see the module docstring)."""

ACCOUNT_PATTERN = r"^[0-9]{1,10}$"

AccountNumberIn = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=ACCOUNT_PATTERN),
    Field(examples=["1930"], description="An account number in ASCII digits"),
]
"""A bookkeeping account number in a request body: 1 to 10 ASCII digits."""
