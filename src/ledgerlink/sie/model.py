"""Plain data model of a SIE file.

Every class is an ordinary dataclass with defaults, so a document can be built by hand (the sandbox
Fortnox export, the closing adjustments export) and compared with ``==`` after a round trip.
Account numbers, voucher series and voucher numbers are strings: ``"0351"`` and ``""`` (a voucher
number left for the importing program to assign) are both valid SIE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

ObjectRef = tuple[int, str]
"""One ``(dimension, object number)`` pair of an object list, e.g. ``(1, "100")`` for cost centre 100."""

ChecksumStatus = Literal["ok", "absent", "mismatch"]


@dataclass(slots=True)
class FinancialYear:
    """``#RAR``: index 0 is the current year, -1 the previous one."""

    index: int
    start: dt.date
    end: dt.date


@dataclass(slots=True)
class Address:
    """``#ADRESS contact street postal phone``."""

    contact: str = ""
    street: str = ""
    postal: str = ""
    phone: str = ""


@dataclass(slots=True)
class Account:
    """``#KONTO`` with its optional ``#KTYP`` (T, S, K, I), ``#SRU`` code and ``#ENHET`` unit."""

    number: str
    name: str = ""
    type: str | None = None
    sru: str | None = None
    unit: str | None = None


@dataclass(slots=True)
class Dimension:
    """``#DIM`` (``parent`` None) or ``#UNDERDIM`` (``parent`` = the superior dimension)."""

    number: int
    name: str = ""
    parent: int | None = None


@dataclass(slots=True)
class SieObject:
    """``#OBJEKT dimension number name``: a cost centre, project, ..."""

    dimension: int
    number: str
    name: str = ""


@dataclass(slots=True)
class Balance:
    """``#IB``, ``#UB`` or ``#RES``: an account's balance in financial year ``year``."""

    year: int
    account: str
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(slots=True)
class ObjectBalance:
    """``#OIB`` or ``#OUB``: a balance per object."""

    year: int
    account: str
    objects: tuple[ObjectRef, ...]
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(slots=True)
class PeriodBalance:
    """``#PSALDO`` or ``#PBUDGET``: the change of one month (``period`` is ``YYYYMM``), not cumulative."""

    year: int
    period: str
    account: str
    objects: tuple[ObjectRef, ...]
    amount: Decimal
    quantity: Decimal | None = None


@dataclass(slots=True)
class VoucherRow:
    """``#TRANS account {objects} amount [date] [text] [quantity] [signature]``; debit positive."""

    account: str
    amount: Decimal
    objects: tuple[ObjectRef, ...] = ()
    date: dt.date | None = None
    text: str = ""
    quantity: Decimal | None = None
    signature: str = ""


@dataclass(slots=True)
class Voucher:
    """``#VER series number date [text] [registration date] [signature]`` and its rows.

    ``rows`` are the ``#TRANS`` rows (the ones that make up the ledger and must sum to zero);
    ``added_rows`` (``#RTRANS``) and ``removed_rows`` (``#BTRANS``) only document later corrections.
    """

    series: str
    number: str
    date: dt.date
    text: str = ""
    rows: list[VoucherRow] = field(default_factory=list)
    registration_date: dt.date | None = None
    signature: str = ""
    added_rows: list[VoucherRow] = field(default_factory=list)
    removed_rows: list[VoucherRow] = field(default_factory=list)

    def imbalance(self) -> Decimal:
        """Sum of the ``#TRANS`` amounts; zero for a balanced voucher."""
        return sum((row.amount for row in self.rows), Decimal(0))


@dataclass(slots=True)
class UnbalancedVoucher:
    """A voucher whose ``#TRANS`` rows do not sum to zero (reported, not fatal)."""

    series: str
    number: str
    difference: Decimal
    line_number: int


@dataclass(slots=True)
class ReadDiagnostics:
    """What the reader noticed while reading; not part of the document's content."""

    encoding: str = "cp437"
    checksum: ChecksumStatus = "absent"
    warnings: list[str] = field(default_factory=list)
    unbalanced_vouchers: list[UnbalancedVoucher] = field(default_factory=list)
    voucher_count: int = 0
    transaction_count: int = 0


@dataclass(slots=True)
class SieDocument:
    """The content of one SIE file. Every field has a default; set what you have."""

    program: str = "ledgerlink"
    program_version: str = ""
    company_name: str = ""
    org_number: str = ""
    financial_years: list[FinancialYear] = field(default_factory=list)
    accounts: dict[str, Account] = field(default_factory=dict)
    opening_balances: list[Balance] = field(default_factory=list)
    closing_balances: list[Balance] = field(default_factory=list)
    results: list[Balance] = field(default_factory=list)
    vouchers: list[Voucher] = field(default_factory=list)
    flag: int = 0
    format: str = "PC8"
    generated: dt.date | None = None
    generated_by: str = ""
    sie_type: str = "4"
    company_id: str = ""
    company_type: str = ""
    address: Address | None = None
    tax_year: int | None = None
    currency: str = ""
    chart_type: str = ""
    balances_until: dt.date | None = None
    dimensions: dict[int, Dimension] = field(default_factory=dict)
    objects: list[SieObject] = field(default_factory=list)
    object_opening_balances: list[ObjectBalance] = field(default_factory=list)
    object_closing_balances: list[ObjectBalance] = field(default_factory=list)
    period_balances: list[PeriodBalance] = field(default_factory=list)
    period_budgets: list[PeriodBalance] = field(default_factory=list)
    diagnostics: ReadDiagnostics = field(default_factory=ReadDiagnostics, compare=False, repr=False)

    @property
    def variant(self) -> str:
        """``1``, ``2``, ``3``, ``4E`` (type 4 with balances) or ``4I`` (type 4, vouchers only)."""
        if self.sie_type != "4":
            return self.sie_type
        has_balances = bool(
            self.opening_balances
            or self.closing_balances
            or self.results
            or self.object_opening_balances
            or self.object_closing_balances
            or self.period_balances
        )
        return "4E" if has_balances else "4I"
