"""Statement import and reconciliation schemas (money as decimal strings, dates as bank dates)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field

FormatName = Literal["camt053", "csv_nordea", "csv_seb", "csv_handelsbanken", "csv_swedbank"]


class StatementPeriod(BaseModel):
    from_: dt.date | None = Field(None, alias="from", serialization_alias="from")
    to: dt.date | None = None

    model_config = {"populate_by_name": True}


class StatementCounts(BaseModel):
    rows: int
    new: int
    duplicate: int
    conflicting: int


class StatementRowRead(BaseModel):
    position: int
    line: int | None = Field(None, description="The file's line (CSV) or entry number (camt.053)")
    booking_date: dt.date
    value_date: dt.date | None = None
    amount: str = Field(examples=["-125.50"])
    currency: str
    text: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    bank_ref: str | None = None
    balance_after: str | None = None
    verdict: Literal["new", "duplicate", "conflicting"]
    transaction_id: uuid.UUID | None = Field(
        None, description="The held row a duplicate (or conflict) matched"
    )


class StatementImportRead(BaseModel):
    id: uuid.UUID
    bank_account_id: uuid.UUID
    status: Literal["preview", "committed"]
    format: FormatName
    file_name: str | None = None
    period: StatementPeriod
    counts: StatementCounts
    created_at: dt.datetime
    committed_at: dt.datetime | None = None
    rows: list[StatementRowRead] | None = Field(None, description="With `include=rows`")


class CommittedCounts(BaseModel):
    inserted: int


class StatementCommitRead(BaseModel):
    id: uuid.UUID
    status: Literal["committed"]
    counts: CommittedCounts


class BankBalanceRead(BaseModel):
    amount: str = Field(examples=["10250.00"])
    as_of: dt.date


class ReconciliationRead(BaseModel):
    """The bank's booked balance against the opening balance plus the booked rows held."""

    status: Literal["ok", "gap", "unknown"] = "unknown"
    bank_balance: BankBalanceRead | None = None
    computed_balance: str | None = None
    gap: str | None = None
    gap_since: dt.date | None = None
