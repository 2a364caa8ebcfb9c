"""Webhook delivery jobs: one attempt per ``events.deliver``; a cron picks every due delivery."""

from __future__ import annotations

import uuid

from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.events.repository import DeliveryRepository
from ledgerlink.events.service import deliver, retry_delay
from ledgerlink.logging import get_logger
from ledgerlink.worker.jobs import JobContext, cron_task, task

log = get_logger(__name__)


@task("events.deliver", max_tries=1, timeout_seconds=120)
async def deliver_job(ctx: JobContext, delivery_id: str) -> str | None:
    clock = utcnow  # deliveries pace real calls to receivers: the wall clock, not the service clock
    async with session_scope(ctx["sessionmaker"]) as session:
        delivery = await deliver(
            session,
            uuid.UUID(delivery_id),
            ctx["settings"],
            transport=ctx.get("transports", {}).get("webhooks"),
            at=clock(),
        )
        return delivery.status if delivery is not None else None


@cron_task("events.deliver_due", minute=set(range(60)))
async def deliver_due(ctx: JobContext) -> int:
    """Attempt every pending delivery whose time has come (at least once, whatever happened to jobs).

    One delivery's failure is that delivery's: an attempt that raises (a row an older version stored,
    a database error on that row) is recorded on the row and postponed with backoff, and the loop goes
    on to the next delivery."""
    clock = utcnow  # deliveries pace real calls to receivers: the wall clock, not the service clock
    async with session_scope(ctx["sessionmaker"]) as session:
        ids = await DeliveryRepository(session).due_ids(clock(), limit=500)
    for delivery_id in ids:
        try:
            await deliver_job(ctx, str(delivery_id))
        except Exception as exc:  # one delivery must never stop the others
            log.warning("events.delivery.crashed", delivery_id=str(delivery_id), error=type(exc).__name__)
            async with session_scope(ctx["sessionmaker"]) as session:
                await DeliveryRepository(session).record_crash(
                    delivery_id,
                    f"delivery failed: {type(exc).__name__}",
                    clock(),
                    retry_delay,
                    ctx["settings"].webhooks.max_attempts,
                )
    return len(ids)
