"""Idempotency-Key: a replay is marked, and a key is remembered only for the configured time."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.models.events import IdempotencyRecord

BODY = {"financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"}


async def _create(client: httpx.AsyncClient, headers: dict[str, str], key: str) -> httpx.Response:
    return await client.post("/v1/closings", json=BODY, headers={**headers, "Idempotency-Key": key})


async def test_a_replayed_answer_is_marked_and_the_first_is_not(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    key = str(uuid.uuid4())
    first = await _create(client, auth_headers, key)
    again = await _create(client, auth_headers, key)
    assert first.status_code == again.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"] == f"/v1/closings/{first.json()['id']}"


async def test_a_key_older_than_the_ttl_is_a_new_request(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    key = str(uuid.uuid4())
    first = await _create(client, auth_headers, key)
    async with sessionmaker() as s:
        aged = dt.datetime.now(dt.UTC) - dt.timedelta(hours=settings.idempotency_ttl_hours, minutes=1)
        await s.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(created_at=aged))
        await s.commit()
    later = await _create(client, auth_headers, key)
    assert later.status_code == 201, later.text
    assert "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    replay = await _create(client, auth_headers, key)  # and the new use is remembered in turn
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == later.json()["id"]


async def test_a_key_within_the_ttl_is_still_replayed(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    key = str(uuid.uuid4())
    first = await _create(client, auth_headers, key)
    async with sessionmaker() as s:
        recent = dt.datetime.now(dt.UTC) - dt.timedelta(hours=settings.idempotency_ttl_hours, minutes=-5)
        await s.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(created_at=recent)
        )
        await s.commit()
    again = await _create(client, auth_headers, key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


def test_the_ttl_is_a_setting_of_24_hours_by_default() -> None:
    assert Settings(_env_file=None).idempotency_ttl_hours == 24  # type: ignore[call-arg]


async def test_an_unavailable_answer_carries_retry_after(client: Any, auth_headers: dict[str, str]) -> None:
    """/readyz while the queue is unreachable: 503 with Retry-After, as the spec declares."""
    app = client._transport.app
    real = app.state.redis
    with socket.socket() as probe:  # a port nothing listens on: a real client, an unreachable queue
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.state.redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.5)
    try:
        response = await client.get("/readyz")
    finally:
        await app.state.redis.aclose()
        app.state.redis = real
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
