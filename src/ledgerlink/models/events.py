"""Webhook endpoints, the transactional outbox and delivery attempts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import Base, IDMixin, JSONType, TimestampMixin


class WebhookEndpoint(IDMixin, TimestampMixin, Base):
    __tablename__ = "webhook_endpoint"

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSONType)
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted signing secret
    disabled_at: Mapped[dt.datetime | None]


class OutboxEvent(IDMixin, Base):
    """An event written in the same transaction as the change it announces."""

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_undelivered", "dispatched_at", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime]
    dispatched_at: Mapped[dt.datetime | None]


class WebhookDelivery(IDMixin, Base):
    """One event to one endpoint, with every attempt recorded."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_event.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    delivered_at: Mapped[dt.datetime | None]


class IdempotencyRecord(Base):
    """The first response to a POST with an ``Idempotency-Key``, replayed for the same key and body."""

    __tablename__ = "idempotency_record"

    company_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method_path: Mapped[str] = mapped_column(String(300))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[Any] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime]
