"""SQL of the events feature: webhook endpoints, the outbox and deliveries."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import select

from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.events import OutboxEvent, WebhookDelivery, WebhookEndpoint


class WebhookEndpointRepository(RepositoryBase[WebhookEndpoint]):
    model = WebhookEndpoint

    async def list_active(self, company_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
        stmt = (
            scoped(select(WebhookEndpoint), WebhookEndpoint, company_id)
            .where(WebhookEndpoint.disabled_at.is_(None))
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return await self.all(stmt)

    async def get_active(self, company_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        stmt = (
            scoped(select(WebhookEndpoint), WebhookEndpoint, company_id)
            .where(WebhookEndpoint.id == endpoint_id)
            .where(WebhookEndpoint.disabled_at.is_(None))
        )
        return await self.one_or_none(stmt)


class OutboxRepository(RepositoryBase[OutboxEvent]):
    model = OutboxEvent

    async def for_company(self, company_id: uuid.UUID, type: str | None = None) -> Sequence[OutboxEvent]:
        stmt = scoped(select(OutboxEvent), OutboxEvent, company_id).order_by(OutboxEvent.created_at)
        if type is not None:
            stmt = stmt.where(OutboxEvent.type == type)
        return await self.all(stmt)


class DeliveryRepository(RepositoryBase[WebhookDelivery]):
    model = WebhookDelivery

    async def claim(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        """The pending delivery, row-locked (skipped when another worker is delivering it)."""
        stmt = (
            select(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
            .with_for_update(skip_locked=True)
        )
        return await self.one_or_none(stmt)

    async def due_ids(self, at: dt.datetime, limit: int) -> Sequence[uuid.UUID]:
        stmt = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= at)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def event(self, event_id: uuid.UUID) -> OutboxEvent | None:
        return await self.session.get(OutboxEvent, event_id)

    async def endpoint(self, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return await self.session.get(WebhookEndpoint, endpoint_id)

    async def record_crash(
        self,
        delivery_id: uuid.UUID,
        error: str,
        at: dt.datetime,
        retry_delay: Callable[[int], dt.timedelta],
        max_attempts: int | None = None,
    ) -> None:
        """Count an attempt that raised instead of completing, and plan the next (or give up)."""
        delivery = await self.claim(delivery_id)
        if delivery is None:
            return
        delivery.attempts += 1
        delivery.last_error = error
        delivery.attempt_log = [
            *delivery.attempt_log,
            {"attempt": delivery.attempts, "at": at.isoformat(), "status_code": None, "error": error},
        ]
        if max_attempts is not None and delivery.attempts >= max_attempts:
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delivery.next_attempt_at = at + retry_delay(delivery.attempts)
        await self.session.flush()
