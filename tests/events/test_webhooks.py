"""Webhook endpoints and signed delivery (receiver: a tiny ASGI app injected as the "webhooks" transport)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.events import tasks as event_tasks
from ledgerlink.events.errors import WebhookTargetRefused
from ledgerlink.events.service import emit, validate_url, verify
from ledgerlink.events.tasks import deliver_due
from ledgerlink.models import WebhookDelivery, WebhookEndpoint
from ledgerlink.security import SecretBox
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.runner import ArqDispatcher
from tests.conftest import make_token


@pytest.fixture
def auth_headers(settings: Settings, company_id: uuid.UUID) -> dict[str, str]:
    """Webhooks are for internal services: the ``admin`` scope."""
    return {"Authorization": f"Bearer {make_token(settings, company_id, 'admin')}"}


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


# --------------------------------------------------------------------------- scope


async def test_webhook_routes_need_the_admin_scope(
    client: httpx.AsyncClient, settings: Settings, company_id: uuid.UUID
) -> None:
    for scopes in ("", "banking closing"):
        headers = {"Authorization": f"Bearer {make_token(settings, company_id, scopes)}"}
        calls = [
            client.post(
                "/v1/webhook-endpoints",
                json={"url": "https://hooks.example.invalid/x", "events": ["bank_account.synced"]},
                headers=headers,
            ),
            client.get("/v1/webhook-endpoints", headers=headers),
            client.delete(f"/v1/webhook-endpoints/{uuid.uuid4()}", headers=headers),
        ]
        for call in calls:
            response = await call
            assert response.status_code == 403, (scopes, response.text)
            assert response.json()["code"] == "insufficient_scope"


# --------------------------------------------------------------------------- strict URLs

CRLF = "https://hooks.example.invalid/x\r\nHost: 127.0.0.1"
MALFORMED = [
    CRLF,
    "https://hooks.example.invalid/x\nX: y",
    "https://hooks.example.invalid/a b",
    "https://hooks.example.invalid/\tx",
    "https://hooks.example.invalid/\x7f",
    "https://hooks.example.invalid/\x00",
    "https://hooks.exämple.invalid/x",
    "https://user:pw@hooks.example.invalid/x",
    "https://user@hooks.example.invalid/x",
    "ftp://hooks.example.invalid/x",
    "https:///x",
    "//hooks.example.invalid/x",
    "https://hooks.example.invalid:99999/x",
    "https://hooks.example.invalid:0x1bb/x",
    "https://hooks.example.invalid/x#fragment",
    "https://hooks_under.example.invalid/x",
    "https://-dash.example.invalid/x",
    f"https://{int(ipaddress.IPv4Address('127.0.0.1'))}/x",  # 127.0.0.1 as one decimal number
    "https://0x7f.0.0.1/x",
    "https://127.1/x",
    "https://[fe80::1%25eth0]/x",
]
#: Public-looking IPv6 forms that carry a loopback/private IPv4 address.
EMBEDDED_IPV4 = [
    "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://[2002:a00:1::]/x",  # 6to4 of 10.0.0.1
    "https://[::ffff:127.0.0.1]/x",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/x",  # IPv4-mapped 169.254.169.254
    "https://[64:ff9b::7f00:1]/x",  # NAT64 well-known prefix
    "https://[64:ff9b:1::a9fe:a9fe]/x",  # NAT64 local-use prefix
    "https://[2001:0:c000:201:8000:63bf:80ff:fffe]/x",  # Teredo (server 192.0.2.1), client 127.0.0.1
    "https://[::127.0.0.1]/x",  # IPv4-compatible
]


@pytest.mark.parametrize("url", MALFORMED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_malformed_webhook_urls_are_refused_even_where_private_targets_are_allowed(
    url: str, allow_private: bool
) -> None:
    with pytest.raises(WebhookTargetRefused) as refused:
        validate_url(url, allow_private=allow_private)
    assert refused.value.extra["errors"][0]["loc"] == ["body", "url"]


@pytest.mark.parametrize("url", EMBEDDED_IPV4)
def test_ipv6_forms_wrapping_a_non_public_ipv4_address_are_refused(url: str) -> None:
    with pytest.raises(WebhookTargetRefused):
        validate_url(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.invalid/ledgerlink?tenant=a&x=1",
        "https://HOOKS.example.invalid:8443/x",
        "https://xn--exmple-cua.invalid/x",
    ],
)
def test_well_formed_public_webhook_urls_pass(url: str) -> None:
    # validate_url only parses: nothing here is resolved or sent to (deliveries in tests use example.invalid)
    assert validate_url(url, allow_private=False)[0] == "https"


@pytest.mark.parametrize("url", [CRLF, "https://[2002:7f00:1::]/"])
async def test_registration_refuses_what_delivery_could_not_send(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings, url: str
) -> None:
    for allow_private in (False, True):
        settings.webhooks.allow_private_targets = allow_private
        if allow_private and "2002" in url:
            continue  # a private target is what that setting allows
        response = await client.post(
            "/v1/webhook-endpoints",
            json={"url": url, "events": ["bank_account.synced"]},
            headers=auth_headers,
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "webhook_target_refused"
        assert response.json()["errors"][0]["loc"] == ["body", "url"]


# --------------------------------------------------------------------------- one delivery never blocks the others


async def _endpoint_with_delivery(
    sessionmaker: Any, settings: Settings, company_id: uuid.UUID, url: str, due: dt.datetime
) -> uuid.UUID:
    """An endpoint row written directly (as an older version may have stored it) and a due delivery."""
    endpoint_id = uuid.uuid4()
    box = SecretBox.from_settings(settings.security)
    async with session_scope(sessionmaker) as s:
        s.add(
            WebhookEndpoint(
                id=endpoint_id,
                company_id=company_id,
                url=url,
                events=["bank_account.synced"],
                secret=box.encrypt_json("whsec_test", context=str(endpoint_id)),
            )
        )
        await s.flush()
        await emit(s, company_id, "bank_account.synced", {"bank_account_id": "x"}, at=due)
    async with sessionmaker() as s:
        delivery_id: uuid.UUID = (
            await s.execute(select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id))
        ).scalar_one()
    return delivery_id


async def test_a_poisoned_webhook_row_does_not_delay_another_companys_delivery(
    settings: Settings, sessionmaker: Any, transports: dict[str, Any]
) -> None:
    settings.webhooks.allow_private_targets = True  # the receiver is a name nobody resolves
    receiver = Receiver([])
    transports["webhooks"] = httpx.MockTransport(receiver.handler)
    now = dt.datetime.now(dt.UTC)
    poisoned = await _endpoint_with_delivery(
        sessionmaker, settings, uuid.uuid4(), CRLF, now - dt.timedelta(minutes=30)
    )  # first in line
    healthy = await _endpoint_with_delivery(
        sessionmaker,
        settings,
        uuid.uuid4(),
        "https://hooks.example.invalid/ok",
        now - dt.timedelta(minutes=1),
    )
    ctx: Any = {"settings": settings, "sessionmaker": sessionmaker, "redis": None, "transports": transports}
    assert await deliver_due(ctx) == 2
    async with sessionmaker() as s:
        good = await s.get(WebhookDelivery, healthy)
        bad = await s.get(WebhookDelivery, poisoned)
    assert good is not None and good.status == "delivered"
    assert [str(r.url) for r in receiver.received] == ["https://hooks.example.invalid/ok"]
    assert bad is not None and bad.status == "pending" and bad.attempts == 1
    assert bad.last_error and "webhook URL" in bad.last_error
    assert bad.next_attempt_at is not None and bad.next_attempt_at > now  # retried later, with backoff
    assert await deliver_due(ctx) == 0  # not due again at once: it does not hog the job


async def test_an_attempt_that_raises_is_recorded_on_its_delivery_and_the_job_goes_on(
    settings: Settings, sessionmaker: Any, transports: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.webhooks.allow_private_targets = True
    receiver = Receiver([])
    transports["webhooks"] = httpx.MockTransport(receiver.handler)
    now = dt.datetime.now(dt.UTC)
    first = await _endpoint_with_delivery(
        sessionmaker, settings, uuid.uuid4(), "https://a.example.invalid/x", now - dt.timedelta(minutes=5)
    )
    second = await _endpoint_with_delivery(
        sessionmaker, settings, uuid.uuid4(), "https://b.example.invalid/x", now - dt.timedelta(minutes=1)
    )
    real = event_tasks.deliver

    async def crash_on_first(session: Any, delivery_id: uuid.UUID, *args: Any, **kwargs: Any) -> Any:
        if delivery_id == first:
            raise RuntimeError("an unforeseen failure")
        return await real(session, delivery_id, *args, **kwargs)

    monkeypatch.setattr(event_tasks, "deliver", crash_on_first)
    ctx: Any = {"settings": settings, "sessionmaker": sessionmaker, "redis": None, "transports": transports}
    assert await deliver_due(ctx) == 2
    async with sessionmaker() as s:
        crashed = await s.get(WebhookDelivery, first)
        delivered = await s.get(WebhookDelivery, second)
    assert delivered is not None and delivered.status == "delivered"
    assert crashed is not None and crashed.status == "pending" and crashed.attempts == 1
    assert crashed.last_error == "delivery failed: RuntimeError"
    assert crashed.next_attempt_at is not None and crashed.next_attempt_at > now
