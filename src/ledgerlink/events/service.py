"""The transactional outbox and signed webhook delivery.

:func:`emit` writes an :class:`OutboxEvent` in the caller's transaction together with one pending
:class:`WebhookDelivery` per subscribed endpoint, and enqueues ``events.deliver`` (sent after the
commit). Delivery is at least once: ``events.deliver_due`` (cron) picks any pending delivery whose
``next_attempt_at`` has passed, so a lost job or a crashed worker only delays it.

Signature: ``Ledgerlink-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the endpoint's
secret. Targets must not resolve to loopback/link-local/private ranges (checked when registering and
again before every attempt) unless ``settings.webhooks.allow_private_targets``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.events.errors import WebhookEndpointNotFound, WebhookTargetRefused
from ledgerlink.events.repository import DeliveryRepository, WebhookEndpointRepository
from ledgerlink.events.schemas import WebhookEndpointCreate
from ledgerlink.logging import get_logger
from ledgerlink.models.events import OutboxEvent, WebhookDelivery, WebhookEndpoint
from ledgerlink.security import SecretBox
from ledgerlink.worker.backoff import compute_backoff
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)
SIGNATURE_HEADER = "Ledgerlink-Signature"


async def emit(
    session: AsyncSession,
    company_id: uuid.UUID,
    type: str,
    payload: dict[str, Any],
    *,
    at: dt.datetime | None = None,
) -> OutboxEvent:
    """Record ``type`` for ``company_id`` in the caller's transaction and queue its deliveries."""
    created = at or utcnow()
    event = OutboxEvent(
        id=uuid.uuid4(),
        company_id=company_id,
        type=type,
        payload=json.loads(json.dumps(payload, default=str)),
        created_at=created,
        dispatched_at=created,
    )
    session.add(event)
    endpoints = await WebhookEndpointRepository(session).list_active(company_id)
    deliveries = [
        WebhookDelivery(
            id=uuid.uuid4(),
            company_id=company_id,
            event_id=event.id,
            endpoint_id=ep.id,
            status="pending",
            attempts=0,
            next_attempt_at=created,
            attempt_log=[],
        )
        for ep in endpoints
        if type in ep.events
    ]
    session.add_all(deliveries)
    await session.flush()
    for delivery in deliveries:
        enqueue("events.deliver", job_id=f"events.deliver:{delivery.id}:0", delivery_id=str(delivery.id))
    return event


# --------------------------------------------------------------------------- targets


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


async def check_target(url: str, settings: Settings) -> None:
    """Refuse a URL that is not https or that resolves to a non-public address (422)."""
    parts = urlsplit(url)
    allow_private = settings.webhooks.allow_private_targets
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookTargetRefused("the webhook URL must be an absolute https URL", loc=["body", "url"])
    if parts.scheme == "http" and not allow_private:
        raise WebhookTargetRefused("the webhook URL must use https", loc=["body", "url"])
    if parts.username or parts.password:
        raise WebhookTargetRefused("the webhook URL must not carry credentials", loc=["body", "url"])
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookTargetRefused("the webhook URL has an invalid port", loc=["body", "url"]) from exc
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookTargetRefused("the webhook host does not resolve", loc=["body", "url"]) from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses or any(_refused_address(a) for a in addresses):
        raise WebhookTargetRefused(
            "the webhook host resolves to a loopback, link-local or private address", loc=["body", "url"]
        )


# --------------------------------------------------------------------------- endpoints


class WebhookService:
    async def create(
        self, session: AsyncSession, company_id: uuid.UUID, data: WebhookEndpointCreate, settings: Settings
    ) -> tuple[WebhookEndpoint, str]:
        await check_target(data.url, settings)
        secret = "whsec_" + secrets.token_urlsafe(32)
        endpoint_id = uuid.uuid4()
        box = SecretBox.from_settings(settings.security)
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            company_id=company_id,
            url=data.url,
            events=list(dict.fromkeys(data.events)),
            secret=box.encrypt_json(secret, context=str(endpoint_id)),
        )
        await WebhookEndpointRepository(session).add(endpoint)
        return endpoint, secret

    async def list(self, session: AsyncSession, company_id: uuid.UUID) -> list[WebhookEndpoint]:
        return list(await WebhookEndpointRepository(session).list_active(company_id))

    async def delete(self, session: AsyncSession, company_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        endpoint = await WebhookEndpointRepository(session).get_active(company_id, endpoint_id)
        if endpoint is None:
            raise WebhookEndpointNotFound("no such webhook endpoint")
        endpoint.disabled_at = utcnow()  # pending deliveries stop; the audit trail stays
        await session.flush()


webhooks = WebhookService()


# --------------------------------------------------------------------------- delivery


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Ledgerlink-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, header: str, body: bytes, *, tolerance_seconds: int | None = None, at: int | None = None
) -> bool:
    """Check a signature header (what a receiver does); constant-time comparison."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if tolerance_seconds is not None and at is not None and abs(at - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def event_body(event: OutboxEvent) -> bytes:
    document = {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "company_id": str(event.company_id),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


async def deliver(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    at: dt.datetime | None = None,
) -> WebhookDelivery | None:
    """One attempt of one delivery (row-locked); records it in ``attempt_log`` and plans the next."""
    repo = DeliveryRepository(session)
    delivery = await repo.claim(delivery_id)
    if delivery is None:
        return None
    started = at or utcnow()
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > started:
        return delivery  # not due yet (an early duplicate job)
    endpoint = await repo.endpoint(delivery.endpoint_id)
    event = await repo.event(delivery.event_id)
    if endpoint is None or event is None or endpoint.disabled_at is not None:
        delivery.status, delivery.next_attempt_at = "failed", None
        delivery.last_error = "endpoint removed"
        await session.flush()
        return delivery
    body = event_body(event)
    timestamp = int(started.timestamp())
    status_code: int | None = None
    error: str | None = None
    try:
        await check_target(endpoint.url, settings)
        secret = SecretBox.from_settings(settings.security).decrypt_json(
            endpoint.secret, context=str(endpoint.id)
        )
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ledgerlink-webhooks/1",
            SIGNATURE_HEADER: sign(str(secret), timestamp, body),
            "Ledgerlink-Event-Id": str(event.id),
            "Ledgerlink-Event-Type": event.type,
        }
        async with httpx.AsyncClient(
            transport=transport, timeout=settings.webhooks.timeout_seconds, follow_redirects=False
        ) as client:
            response = await client.post(endpoint.url, content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookTargetRefused as exc:
        error = f"target refused: {exc.detail}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.attempt_log = [
        *delivery.attempt_log,
        {"attempt": delivery.attempts, "at": started.isoformat(), "status_code": status_code, "error": error},
    ]
    if error is None:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", started, None
    elif delivery.attempts >= settings.webhooks.max_attempts:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        delay = compute_backoff(delivery.attempts, base=30.0, cap=6 * 3600.0)
        delivery.next_attempt_at = started + dt.timedelta(seconds=delay)
    log.info(
        "events.delivery.attempt",
        delivery_id=str(delivery.id),
        event_type=event.type,
        attempt=delivery.attempts,
        status_code=status_code,
        outcome=delivery.status,
    )
    await session.flush()
    return delivery
