"""Parsing one SIE field or record's fields: numbers, amounts, dates, object lists, ``#VER`` and
``#TRANS`` (the reader's general path), and which records real exports leave incomplete."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from ledgerlink.sie.model import Voucher, VoucherRow
from ledgerlink.sie.tokens import ObjectList, parse_objects

CACHE_LIMIT = 4096

DATE_CACHE: dict[str, dt.date] = {}

# Records read with a warning (and skipped) when real exports leave their required fields missing:
# how many fields (label included, object lists not counted) each needs, and whether an empty one counts
# as missing (where an empty value could never be read: dates, numbers, amounts). Balances (#IB, #UB,
# #RES) and vouchers are not among them: without their amount or date the data itself is wrong.
REQUIRED_FIELDS: dict[str, tuple[int, bool]] = {
    "#FLAGGA": (2, True),
    "#GEN": (2, True),
    "#SIETYP": (2, True),
    "#RAR": (4, True),
    "#TAXAR": (2, True),
    "#OMFATTN": (2, True),
    "#OIB": (4, False),
    "#OUB": (4, False),
    "#PSALDO": (5, False),
    "#PBUDGET": (5, False),
    "#KONTO": (2, False),
    "#ENHET": (2, False),
    "#DIM": (2, False),
    "#UNDERDIM": (4, False),
    "#OBJEKT": (3, False),
}


class FieldError(ValueError):
    """A malformed field; the reader turns it into a SieError with the line."""


UNESCAPE_RE = re.compile(r'\\(["\\])')


def unescape(text: str) -> str:
    """``\\"`` is a quote and ``\\\\`` a backslash; any other backslash stays."""
    if "\\\\" in text:
        return UNESCAPE_RE.sub(r"\1", text)
    return text.replace('\\"', '"')


def parse_voucher(fields: list[str]) -> Voucher:
    """``#VER series number date [text] [registration date] [signature]``."""
    count = len(fields)
    return Voucher(
        text_field(fields[1]),
        text_field(fields[2]),
        to_date(fields[3]),
        fields[4] if count > 4 else "",
        [],
        opt_date(fields[5]) if count > 5 else None,
        fields[6] if count > 6 else "",
    )


def parse_row(fields: list[str]) -> VoucherRow:
    """``#TRANS account {objects} amount [date] [text] [quantity] [signature]``.

    A missing object list (seen in some exports) is accepted as an empty one.
    """
    count = len(fields)
    account = fields[1]
    if type(account) is not str:
        raise FieldError("account missing")
    objects_field = fields[2]
    if type(objects_field) is ObjectList:
        objects = parse_objects(objects_field) if objects_field else ()
        at = 3
    else:
        objects = ()
        at = 2
    amount_text = fields[at]
    sign = amount_text[:1]
    digits = amount_text[1:] if sign == "-" or sign == "+" else amount_text
    if not (digits.isascii() and digits.replace(".", "", 1).isdigit()):
        raise FieldError(f"bad amount {amount_text!r}")
    if count == at + 1:
        return VoucherRow(account, Decimal(amount_text), objects)
    return VoucherRow(
        account,
        Decimal(amount_text),
        objects,
        opt_date(fields[at + 1]) if count > at + 1 else None,
        fields[at + 2] if count > at + 2 else "",
        opt_amount(fields[at + 3]) if count > at + 3 else None,
        fields[at + 4] if count > at + 4 else "",
    )


NO_SERIES = "#VER with an empty series or number, read as given"


def incomplete(fields: list[str], need: int, empty_is_missing: bool) -> bool:
    """Fewer than ``need`` fields besides object lists (or an empty one among them, if it counts)."""
    plain = [f for f in fields if type(f) is not ObjectList]
    return len(plain) < need or (empty_is_missing and "" in plain[1:need])


def opt(fields: list[str], index: int) -> str:
    return fields[index] if len(fields) > index else ""


def text_field(value: str) -> str:
    if type(value) is not str:
        raise FieldError(f"unexpected object list {{{value}}}")
    return value


def to_int(value: str) -> int:
    digits = value[1:] if value[:1] == "-" else value
    if not (digits.isascii() and digits.isdigit()):
        raise FieldError(f"bad number {value!r}")
    return int(value)


def to_amount(value: str) -> Decimal:
    sign = value[:1]
    digits = value[1:] if sign == "-" or sign == "+" else value
    if not (digits.isascii() and digits.replace(".", "", 1).isdigit()):
        raise FieldError(f"bad amount {value!r}")
    return Decimal(value)


def opt_amount(value: str) -> Decimal | None:
    return to_amount(value) if value else None


def object_list(value: str) -> tuple[tuple[int, str], ...]:
    if type(value) is not ObjectList:
        raise FieldError(f"expected an object list, found {value!r}")
    return parse_objects(value)


def to_date(value: str) -> dt.date:
    cached = DATE_CACHE.get(value)
    if cached is not None:
        return cached
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise FieldError(f"bad date {value!r} (expected YYYYMMDD)")
    try:
        parsed = dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        raise FieldError(f"bad date {value!r}") from None
    if len(DATE_CACHE) >= CACHE_LIMIT:
        DATE_CACHE.clear()
    DATE_CACHE[value] = parsed
    return parsed


def opt_date(value: str) -> dt.date | None:
    return to_date(value) if value else None
