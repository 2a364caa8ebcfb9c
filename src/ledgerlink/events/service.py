"""The transactional outbox and signed webhook delivery.

:func:`emit` writes an :class:`OutboxEvent` in the caller's transaction together with one pending
:class:`WebhookDelivery` per subscribed endpoint, and enqueues ``events.deliver`` (sent after the
commit). Delivery is at least once: ``events.deliver_due`` (cron) picks any pending delivery whose
``next_attempt_at`` has passed, so a lost job or a crashed worker only delays it.

Signature: ``Ledgerlink-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` with the endpoint's
secret. Target URLs are checked strictly (:func:`validate_url`) and must not resolve to
loopback/link-local/private ranges, also through an IPv6 form wrapping an IPv4 address (checked when
registering and again before every attempt) unless ``settings.webhooks.allow_private_targets``. A
delivery's failure, whatever it is, is recorded on that delivery and retried with backoff: it never
stops the due-deliveries job from reaching the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink import metrics
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


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (IPv4-mapped, 6to4, Teredo server and client,
    NAT64, IPv4-compatible): a target is refused when any of them would be."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found += list(ip.teredo)
    if any(ip in net for net in (*_NAT64, _IPV4_COMPATIBLE)):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        ip.is_loopback
        or ip.is_link_local
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
        or ip.is_private
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded:
            return any(_refused_ip(v4) for v4 in embedded)
    return _refused_ip(ip)


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _refuse(why: str) -> WebhookTargetRefused:
    return WebhookTargetRefused(f"the webhook URL {why}", loc=["body", "url"])


def validate_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """The scheme, host and port of a webhook URL that is well-formed in every respect, or 422: printable
    ASCII only (no whitespace or control characters: a CR/LF is a header injection), https (http only
    where private targets are allowed), a host name of DNS labels or an IP literal (no userinfo, no
    numeric shorthand like ``2130706433`` or ``0x7f.1``), a valid port, no fragment; an IP literal must
    be a public address (also when it wraps an IPv4 one), unless private targets are allowed."""
    if not url.isascii() or not url.isprintable() or any(ch.isspace() for ch in url):
        raise _refuse("must be printable ASCII without spaces or control characters (IDN hosts in punycode)")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise _refuse("must be an absolute https URL")
    if parts.scheme == "http" and not allow_private:
        raise _refuse("must use https")
    if "@" in parts.netloc:
        raise _refuse("must not carry credentials")
    if parts.fragment or "#" in url:
        raise _refuse("must not have a fragment")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise _refuse("has an invalid port") from exc
    host = (parts.hostname or "").rstrip(".")
    if not host or "%" in host:
        raise _refuse("has no host, or an IPv6 zone id")
    try:
        literal: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is None:
        labels = host.split(".")
        if not all(_HOST_LABEL.match(label) for label in labels) or labels[-1].isdigit() or len(host) > 253:
            raise _refuse("has an invalid host name")
        if all(label.isdigit() or label.startswith("0x") for label in labels):
            raise _refuse("has an invalid host name")
    elif isinstance(literal, ipaddress.IPv6Address) and not parts.netloc.split("]")[0].startswith("["):
        raise _refuse("has an invalid host")
    if literal is not None and not allow_private and _refused_address(str(literal)):
        raise _refuse("points at a loopback, link-local, private or otherwise non-public address")
    try:
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise _refuse("is not a valid URL") from exc
    return parts.scheme, host, port


async def check_target(url: str, settings: Settings) -> None:
    """Refuse a URL that is not a well-formed https URL or that resolves to a non-public address (422)."""
    allow_private = settings.webhooks.allow_private_targets
    _, host, port = validate_url(url, allow_private=allow_private)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
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


def retry_delay(attempts: int) -> dt.timedelta:
    """How long after its ``attempts``-th failed attempt a delivery is tried again (jittered backoff)."""
    return dt.timedelta(seconds=compute_backoff(attempts, base=30.0, cap=6 * 3600.0))


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
        metrics.WEBHOOK_DELIVERIES.labels("dropped").inc()
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
    except Exception as exc:  # whatever one endpoint does is that delivery's failure
        # (httpx.InvalidURL is no HTTPError; a stored secret that no longer decrypts; ...): recorded on
        # the row and retried with backoff. The message is not kept: it may quote the URL or a header.
        error = f"delivery failed: {type(exc).__name__}"
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
        delivery.next_attempt_at = started + retry_delay(delivery.attempts)
    metrics.WEBHOOK_DELIVERIES.labels(
        "delivered" if error is None else "failed" if delivery.status == "failed" else "retrying"
    ).inc()
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
