"""Inbox schemas: transactions to book and to-dos."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from ledgerlink.matching.schemas import BookingFeedback, Suggestion, TransactionPartRead
from ledgerlink.models.inbox import TodoType
from ledgerlink.timestamps import Timestamp

StatusValue = Literal["unbooked", "booked", "ignored"]


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


class ConsentExpiringTodo(StoredTodo):
    """The bank consent expires soon: renew it with a reauthorization before ``expires_at``."""

    type: Literal[TodoType.consent_expiring]
    connection_id: uuid.UUID
    bank_id: str
    expires_at: Timestamp


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
