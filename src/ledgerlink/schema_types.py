"""Value types shared by request schemas (what a client may send, checked once at the edge), and
:func:`read_model`, how an answer's schema is filled from the row it shows.

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
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints, WithJsonSchema

M = TypeVar("M", bound=BaseModel)

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


def money_text(value: str, field: str, *, allow_negative: bool = False) -> str:
    """``value`` checked by :func:`parse_money` (the ValueError names ``field``) and not negative unless
    ``allow_negative``; returned as sent, for schemas that keep the client's string."""
    try:
        amount = parse_money(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc
    if amount < 0 and not allow_negative:
        raise ValueError(f"{field} must not be negative")
    return value


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

#: A BAS account of the chart (1000–8999) in ASCII digits: what voucher lines and booking rules book to.
BAS_ACCOUNT_PATTERN = r"^[1-8][0-9]{3}$"


def read_model(model: type[M], source: object, **computed: Any) -> M:
    """``model`` filled from ``source`` (an ORM row, a catalogue entry) field by field name; ``computed``
    gives the fields that ``source`` does not hold under the same name. Validated as the model says."""
    fields = {
        name: getattr(source, name)
        for name in model.model_fields
        if name not in computed and hasattr(source, name)
    }
    return model.model_validate({**fields, **computed}, by_name=True)
