"""What a parsed bank statement is, whatever the file's form: pure data, no I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

StatementFormat = Literal["camt053", "csv_nordea", "csv_seb", "csv_handelsbanken", "csv_swedbank"]
FORMATS: tuple[StatementFormat, ...] = (
    "camt053",
    "csv_nordea",
    "csv_seb",
    "csv_handelsbanken",
    "csv_swedbank",
)


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One row of a statement. ``amount`` is signed (negative = money out); dates are bank dates."""

    booking_date: dt.date
    amount: Decimal
    currency: str
    booked: bool = True
    value_date: dt.date | None = None
    bank_ref: str | None = None
    text: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    balance_after: Decimal | None = None
    line: int | None = None  # where in the file (CSV line, camt entry number)


@dataclass(frozen=True, slots=True)
class StatementBalance:
    amount: Decimal
    as_of: dt.date


@dataclass(slots=True)
class ParsedStatement:
    format: StatementFormat
    currency: str | None = None
    iban: str | None = None
    opening: StatementBalance | None = None
    closing: StatementBalance | None = None
    rows: list[StatementRow] = field(default_factory=list)

    @property
    def period(self) -> tuple[dt.date | None, dt.date | None]:
        dates = [r.booking_date for r in self.rows]
        start = min(dates) if dates else (self.opening.as_of if self.opening else None)
        end = max(dates) if dates else (self.closing.as_of if self.closing else None)
        return start, end
