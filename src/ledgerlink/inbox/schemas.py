"""Inbox schemas: transactions to book and to-dos."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledgerlink.models.inbox import TodoType
from ledgerlink.schema_types import BAS_ACCOUNT_PATTERN, money_text
from ledgerlink.timestamps import Timestamp

StatusValue = Literal["unbooked", "booked", "ignored"]


# --- what the suggestions (matching) add to a transaction, and the booking feedback it reads ---------


class Allocation(BaseModel):
    open_item_external_id: str
    number: str
    amount: str


class Remainder(BaseModel):
    kind: Literal["none", "partial_payment", "overpayment", "rounding", "fee"]
    amount: str


class VoucherLine(BaseModel):
    account: str
    debit: str
    credit: str
    vat_code: str | None = None
    description: str | None = None


class Suggestion(BaseModel):
    kind: Literal["invoice", "rule", "history", "default"]
    confidence: float = Field(ge=0, le=1)
    unambiguous: bool
    reason: str
    allocations: list[Allocation]
    remainder: Remainder
    lines: list[VoucherLine]


class BookingLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(pattern=BAS_ACCOUNT_PATTERN)
    debit: str = "0"
    credit: str = "0"
    vat_code: str | None = Field(default=None, max_length=10)
    description: str | None = Field(default=None, max_length=200)

    @field_validator("debit", "credit")
    @classmethod
    def _amount(cls, value: str) -> str:
        return money_text(value, "debit/credit")


class BookingFeedback(BaseModel):
    """How the platform booked a row: the voucher lines and the open items it paid."""

    model_config = ConfigDict(extra="forbid")

    lines: list[BookingLine] = Field(default_factory=list, max_length=50)
    open_item_external_ids: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("lines")
    @classmethod
    def _balanced(cls, lines: list[BookingLine]) -> list[BookingLine]:
        if lines and sum(Decimal(x.debit) for x in lines) != sum(Decimal(x.credit) for x in lines):
            raise ValueError("the booking lines must balance (debits equal credits)")
        return lines


class TransactionPartRead(BaseModel):
    amount: str
    reference: str | None
    ocr_valid: bool
    payer: str | None
    payer_org_number: str | None = None


class TransactionRead(BaseModel):
    id: uuid.UUID
    bank_account_id: uuid.UUID
    booking_date: dt.date
    value_date: dt.date | None
    amount: str = Field(description='Signed decimal string, e.g. "-125.50"')
    currency: str
    counterparty: str | None
    description: str | None
    reference: str | None
    booking_status: Literal["booked", "pending"]
    status: StatusValue
    ledger_account: str | None
    voucher_ref: str | None = None
    parts: list[TransactionPartRead] = Field(
        default_factory=list, description="A Bankgiro lump sum's payments"
    )
    suggestion: Suggestion | None = Field(
        default=None, description="The best suggestion (?include=suggestion)"
    )


class TransactionPatch(BaseModel):
    status: StatusValue
    voucher_ref: str | None = Field(default=None, max_length=100)
    booking: BookingFeedback | None = None


class BulkStatus(BaseModel):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    status: StatusValue


class BulkStatusResult(BaseModel):
    updated: int
    items: list[TransactionRead]


class StoredTodo(BaseModel):
    """The fields of every to-do that is stored until it resolves (all but ``transactions_to_book``)."""

    id: uuid.UUID
    created_at: Timestamp


class TransactionsToBookTodo(BaseModel):
    """Rows waiting in "transactions to book" for one account: ``count`` is the account's
    ``unbooked_count`` (booked rows only; pending rows cannot be booked yet)."""

    type: Literal[TodoType.transactions_to_book]
    bank_account_id: uuid.UUID
    account_name: str | None = None
    ledger_account: str | None = None
    count: int


class ReauthRequiredTodo(StoredTodo):
    """The bank connection needs the user to log in at the bank again."""

    type: Literal[TodoType.reauth_required]
    connection_id: uuid.UUID
    bank_id: str
    reason: str | None = None
    code: str | None = Field(
        default=None, description="consent_expired (the consent reached its end) or reauth_required"
    )


class ConsentExpiringTodo(StoredTodo):
    """The bank consent expires soon: renew it with a reauthorization before ``expires_at`` (the old
    consent keeps syncing until the new one is authorised). Raised at each reminder threshold."""

    type: Literal[TodoType.consent_expiring]
    connection_id: uuid.UUID
    bank_id: str
    expires_at: Timestamp
    days_before: int | None = Field(
        default=None, description="The reminder threshold reached: days before expires_at (14, then 3)"
    )


class SyncFailedTodo(StoredTodo):
    """The account's last sync failed; ``code`` is the sync run's error code."""

    type: Literal[TodoType.sync_failed]
    bank_account_id: uuid.UUID
    account_name: str | None = None
    run_id: uuid.UUID | None = None
    code: str | None = None
    message: str | None = None
    retryable: bool | None = None


class UpgradeRequiredTodo(StoredTodo):
    """Automatic bank import needs the Business plan: the accounts are paused."""

    type: Literal[TodoType.upgrade_required]
    reason: str | None = None


class FortnoxExpiringTodo(StoredTodo):
    """The Fortnox connection expires at ``expires_at`` unless an import or export renews it."""

    type: Literal[TodoType.fortnox_expiring]
    expires_at: Timestamp


class BalanceGapTodo(StoredTodo):
    """The bank's balance and the imported booked rows disagree by ``amount`` since the bank day
    ``since``: rows are missing (import a statement to fill the gap; the to-do resolves by itself)."""

    type: Literal[TodoType.balance_gap]
    bank_account_id: uuid.UUID
    amount: str
    since: dt.date | None = None


class SyncStalledTodo(StoredTodo):
    """The account has had no new rows for longer than its own history says is normal."""

    type: Literal[TodoType.sync_stalled]
    bank_account_id: uuid.UUID
    last_row_date: dt.date
    days_without_rows: int
    longest_quiet_days: int


TodoRead = Annotated[
    TransactionsToBookTodo
    | ReauthRequiredTodo
    | ConsentExpiringTodo
    | SyncFailedTodo
    | UpgradeRequiredTodo
    | FortnoxExpiringTodo
    | BalanceGapTodo
    | SyncStalledTodo,
    Field(discriminator="type"),
]


class TodoList(BaseModel):
    items: list[TodoRead]
