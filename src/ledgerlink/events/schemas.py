"""Webhook endpoint schemas."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from ledgerlink.timestamps import Timestamp

EventType = Literal[
    "transactions.available",
    "bank_account.synced",
    "bank_account.balance_gap",
    "bank_connection.reauth_required",
    "bank_connection.consent_expiring",
    "fortnox.import.completed",
    "fortnox.export.completed",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]


class WebhookEndpointCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2000, description="https URL receiving signed POSTs")
    events: list[EventType] = Field(min_length=1, description="Event types to deliver")


class WebhookEndpointRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    created_at: Timestamp


class WebhookEndpointCreated(WebhookEndpointRead):
    secret: str | None = Field(
        description="The signing secret, shown only in the first response (null on an idempotent replay)"
    )
