"""Request and response bodies of the closings API. Money is a decimal string in JSON."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StringConstraints

from ledgerlink.models.closing import DataSource, ExportState, ExportStatus, JobStatus
from ledgerlink.schema_types import AccountNumberIn, MoneyIn
from ledgerlink.timestamps import Timestamp

# A Fortnox voucher series code: it becomes part of Fortnox URL paths, so letters and digits only.
SERIES_PATTERN = r"^[0-9A-ZÅÄÖ]{1,10}$"


def _series_code(value: Any) -> Any:
    """Fortnox series codes are upper case; a code typed as " a " is "A"."""
    return value.strip().upper() if isinstance(value, str) else value


# Financial years the service takes (a year far outside is a typing error, and 9999 has no next year).
FIRST_DAY, LAST_DAY = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
YearDay = Annotated[dt.date, Field(ge=FIRST_DAY, le=LAST_DAY)]


class ClosingCreate(BaseModel):
    financial_year_start: YearDay
    financial_year_end: YearDay
    data_source: DataSource


class ClosingUpdate(BaseModel):
    data_source: DataSource | None = None


class ClosingOut(BaseModel):
    id: uuid.UUID
    financial_year_start: dt.date
    financial_year_end: dt.date
    data_source: DataSource
    current_import_id: uuid.UUID | None = None
    imported_at: Timestamp | None = None
    company_name: str | None = None
    org_number: str | None = None
    created_at: Timestamp


class JobProgress(BaseModel):
    done: int
    total: int
    step: str


class JobError(BaseModel):
    code: str
    message: str
    retryable: bool


class ImportCounts(BaseModel):
    """What a succeeded import read."""

    accounts: int = Field(description="Accounts in the imported chart")
    vouchers: int
    transactions: int = Field(description="Voucher rows (#TRANS)")
    unbalanced_vouchers: int = Field(description="Vouchers whose rows do not sum to zero (kept, reported)")
    open_customer_invoices: int = Field(description="Open at year end, behind the 1510 specification")
    open_supplier_invoices: int = Field(description="Open at year end, behind the 2440 specification")


class ImportOut(BaseModel):
    """An import job. ``counts`` once it succeeded."""

    id: uuid.UUID
    closing_id: uuid.UUID
    source: DataSource
    status: JobStatus
    progress: JobProgress
    error: JobError | None = None
    file_name: str | None = None
    counts: ImportCounts | None = None
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class TrialBalanceRow(BaseModel):
    """An account's year: opening balance (#IB), closing balance (#UB, or #RES for result accounts) and
    the change between them. Debit positive, credit negative, as in SIE."""

    number: str
    name: str
    opening_balance: Decimal
    closing_balance: Decimal
    period_change: Decimal


class VoucherRowOut(BaseModel):
    account: str
    amount: Decimal = Field(description="Debit positive, credit negative")
    debit: Decimal
    credit: Decimal
    date: dt.date | None = None
    text: str = ""


class VoucherOut(BaseModel):
    id: uuid.UUID
    series: str
    number: str
    date: dt.date
    text: str
    registration_date: dt.date | None = None
    rows: list[VoucherRowOut]


class OpenItemOut(BaseModel):
    document_number: str
    counterparty: str
    invoice_date: dt.date
    due_date: dt.date | None = None
    open_amount: Decimal


class SpecificationOut(BaseModel):
    """An automatic attachment ("bilaga") for 1510 or 2440.

    Sign convention: amounts are presented as the natural balance of the account, positive for a
    normal balance: 1510 (a receivable, debit) as the SIE #UB; 2440 (a debt, credit) as the SIE #UB
    negated, so a normal supplier debt is positive like the open supplier invoices. ``difference`` is
    ``ledger_balance - items_total`` (0 when the ledger ties to the invoices).
    """

    account: str
    title: str
    ledger_balance: Decimal
    items_total: Decimal
    difference: Decimal
    currency: str = "SEK"
    items: list[OpenItemOut]


class AdjustmentRowIn(BaseModel):
    account: AccountNumberIn
    debit: MoneyIn | None = None
    credit: MoneyIn | None = None
    description: str | None = Field(default=None, max_length=200)


class AdjustmentCreate(BaseModel):
    date: dt.date
    description: str = Field(min_length=1, max_length=180)
    rows: list[AdjustmentRowIn] = Field(max_length=500)


class AdjustmentRowOut(BaseModel):
    account: str
    debit: Decimal
    credit: Decimal
    description: str | None = None


class FortnoxVoucherRef(BaseModel):
    series: str
    number: int
    year: int


class AdjustmentOut(BaseModel):
    """A bokföringsorder. ``export_status`` is ``none`` until it has been part of an export."""

    id: uuid.UUID
    closing_id: uuid.UUID
    date: dt.date
    description: str
    rows: list[AdjustmentRowOut]
    total: Decimal
    export_status: ExportState
    fortnox_voucher: FortnoxVoucherRef | None = None
    export_error: str | None = None
    created_at: Timestamp


class ExportCreate(BaseModel):
    target: Literal["fortnox"]
    voucher_series: Annotated[
        str,
        BeforeValidator(_series_code),
        StringConstraints(pattern=SERIES_PATTERN),
        Field(
            description="A Fortnox voucher series code (1–10 letters or digits) that exists for the "
            "financial year and takes manual vouchers"
        ),
    ]
    adjustment_ids: list[uuid.UUID] | None = Field(
        default=None, description="Default: every adjustment of the closing"
    )


class ExportItemOut(BaseModel):
    adjustment_id: uuid.UUID
    status: ExportState
    fortnox_voucher: FortnoxVoucherRef | None = None
    error: JobError | None = None


class ExportOut(BaseModel):
    id: uuid.UUID
    closing_id: uuid.UUID
    target: str
    voucher_series: str
    status: ExportStatus
    progress: JobProgress
    error: JobError | None = None
    items: list[ExportItemOut]
    created_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class SpecificationList(BaseModel):
    """Every list answers ``{items, ...}``: the specifications too (1510 and 2440, in that order)."""

    items: list[SpecificationOut]
