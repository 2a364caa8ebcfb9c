"""Strict, pure payload readers shared by every adapter family: no I/O, only "this value → that type,
or :class:`InvalidResponse` naming the bank and the field".

A family's parsing module (``berlingroup/parsing.py``, ``obie/normalize.py``) builds on
:class:`PayloadReader`; the HTTP adapters inherit it too, so a check reads the same everywhere.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from ledgerlink.banks.adapters.base import InvalidResponse, stockholm_date


def blank_to_none(value: Any) -> str | None:
    """A value as stripped text, or None when it is missing or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


class PayloadReader:
    """Checks on decoded JSON for one bank (``bank_id`` names it in every error)."""

    bank_id: str

    def __init__(self, bank_id: str) -> None:
        self.bank_id = bank_id

    def fail(self, message: str, field: str | None = None) -> NoReturn:
        raise InvalidResponse(self.bank_id, message, field)

    def require(self, obj: Any, key: str, field: str | None = None) -> Any:
        if not isinstance(obj, dict) or obj.get(key) in (None, ""):
            self.fail("missing value", field or key)
        return obj[key]

    def require_object(self, obj: Any, key: str, field: str) -> dict[str, Any]:
        value = self.require(obj, key, field)
        if not isinstance(value, dict):
            self.fail("not an object", field)
        return value

    def expect_object(self, body: Any, what: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            self.fail(f"{what} answer is not an object", what)
        return body

    def parse_amount(self, value: Any, field: str) -> Decimal:
        if isinstance(value, bool) or value is None:
            self.fail("missing or invalid amount", field)
        if isinstance(value, float):
            value = repr(value)  # JSON numbers: keep the digits the bank sent
        try:
            amount = Decimal(str(value).strip().replace(" ", ""))
        except InvalidOperation:
            self.fail(f"unparseable amount {str(value)[:40]!r}", field)
        if not amount.is_finite():
            self.fail("amount is not finite", field)
        return amount

    def parse_date(self, value: Any, field: str, *, required: bool = True) -> dt.date | None:
        """A bank date: ``YYYY-MM-DD`` taken as Stockholm-local, or a timestamp converted to Stockholm."""
        if value in (None, ""):
            if required:
                self.fail("missing date", field)
            return None
        if not isinstance(value, str):
            self.fail(f"unparseable date {value!r}", field)
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"unparseable date {text[:40]!r}", field)
        return stockholm_date(stamp)


__all__ = ["PayloadReader", "blank_to_none"]
