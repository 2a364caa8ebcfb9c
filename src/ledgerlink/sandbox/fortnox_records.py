"""The records of the sandbox Fortnox's company: years, accounts, series, vouchers and their rows,
invoices and payments (:mod:`ledgerlink.sandbox.fortnox_data` holds the company made of them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

VAT_RATE = Decimal("0.25")


@dataclass(slots=True)
class SandboxYear:
    id: int
    from_date: dt.date
    to_date: dt.date
    accounting_method: str = "ACCRUAL"

    def contains(self, day: dt.date) -> bool:
        return self.from_date <= day <= self.to_date


@dataclass(slots=True)
class SandboxAccount:
    number: int
    description: str
    sru: str = ""
    inactive_in: set[int] = field(default_factory=set)
    """Financial-year ids where the account exists but is not active."""

    def active_in(self, year_id: int) -> bool:
        return year_id not in self.inactive_in

    @property
    def is_balance_account(self) -> bool:
        return self.number < 3000


@dataclass(slots=True)
class SandboxSeries:
    code: str
    description: str
    manual: bool


@dataclass(slots=True)
class SandboxRow:
    account: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    text: str = ""

    @property
    def amount(self) -> Decimal:
        return self.debit - self.credit


@dataclass(slots=True)
class SandboxVoucher:
    series: str
    number: int
    year_id: int
    date: dt.date
    description: str
    rows: list[SandboxRow]
    reference_type: str = "MANUAL"
    reference_number: str = ""


@dataclass(slots=True)
class SandboxInvoice:
    """A customer invoice (``supplier=False``) or a supplier invoice (``supplier=True``)."""

    number: str
    """DocumentNumber for customer invoices, GivenNumber for supplier invoices."""
    counterparty_number: str
    counterparty_name: str
    invoice_date: dt.date
    due_date: dt.date
    total: Decimal
    vat: Decimal
    supplier: bool = False
    booked: bool = True
    cancelled: bool = False
    credit_reference: str = ""
    external_number: str = ""
    """The supplier's own invoice number (supplier invoices)."""
    voucher: SandboxVoucher | None = None

    @property
    def credit(self) -> bool:
        return self.total < 0


@dataclass(slots=True)
class SandboxPayment:
    number: str
    invoice_number: str
    payment_date: dt.date
    amount: Decimal
    voucher: SandboxVoucher | None = None


__all__ = [
    "VAT_RATE",
    "SandboxAccount",
    "SandboxInvoice",
    "SandboxPayment",
    "SandboxRow",
    "SandboxSeries",
    "SandboxVoucher",
    "SandboxYear",
]
