"""Webhook endpoints and signed delivery (receiver: a tiny ASGI app injected as the "webhooks" transport)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit, verify
from ledgerlink.events.tasks import deliver_due
from ledgerlink.models import WebhookDelivery
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.runner import ArqDispatcher


class Receiver:
    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


async def test_private_target_is_refused(client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    for url in (
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://[::1]/hook",
        "http://example.com/hook",
    ):
        response = await client.post(
            "/v1/webhook-endpoints",
            json={"url": url, "events": ["bank_account.synced"]},
            headers=auth_headers,
        )
        assert response.status_code == 422, url
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_signed_delivery_retried_and_recorded(
    settings: Any,
    app: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    transports: dict[str, Any],
    arq_redis: Any,
    run_jobs: Any,
) -> None:
    settings.webhooks.allow_private_targets = True
    receiver = Receiver([500])
    transports["webhooks"] = httpx.MockTransport(receiver.handler)
    created = await client.post(
        "/v1/webhook-endpoints",
        json={"url": "http://hooks.internal.test/ledgerlink", "events": ["bank_account.synced"]},
        headers=auth_headers,
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    listed = await client.get("/v1/webhook-endpoints", headers=auth_headers)
    assert "secret" not in listed.json()["items"][0]

    set_dispatcher(ArqDispatcher(arq_redis, queue_name=settings.queue_name))
    async with session_scope(sessionmaker) as s:
        await emit(s, company_id, "bank_account.synced", {"bank_account_id": "x"})
        await emit(s, company_id, "transactions.available", {"bank_account_id": "x"})  # not subscribed
    await run_jobs()  # first attempt: 500
    ctx = {"settings": settings, "sessionmaker": sessionmaker, "redis": arq_redis, "transports": transports}
    async with session_scope(sessionmaker) as s:
        delivery = (await s.execute(select(WebhookDelivery))).scalar_one()
        assert delivery.status == "pending" and delivery.attempts == 1
        delivery.next_attempt_at = dt.datetime.fromisoformat(delivery.attempt_log[0]["at"])  # due now
    assert await deliver_due(ctx) == 1
    async with sessionmaker() as s:
        delivery = (await s.execute(select(WebhookDelivery))).scalar_one()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]
    assert len(receiver.received) == 2
    request = receiver.received[-1]
    assert verify(secret, request.headers["Ledgerlink-Signature"], request.content)
    assert not verify("whsec_wrong", request.headers["Ledgerlink-Signature"], request.content)
    assert json.loads(request.content)["type"] == "bank_account.synced"
