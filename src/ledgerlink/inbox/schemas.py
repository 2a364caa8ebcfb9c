"""Inbox schemas: transactions to book and to-dos."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerlink.matching.schemas import BookingFeedback, Suggestion, TransactionPartRead

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


class TodoRead(BaseModel):
    """A to-do: ``type`` plus type-specific fields (``bank_account_id``/``count`` for
    transactions_to_book, ``expires_at`` for consent_expiring, ...)."""

    model_config = ConfigDict(extra="allow")

    type: str
    id: uuid.UUID | None = None
    created_at: dt.datetime | None = None


class TodoList(BaseModel):
    items: list[dict[str, Any]]
