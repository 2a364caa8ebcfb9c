from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(os.environ.get("LEDGERLINK_TEST_REDIS_URL", "redis://localhost:6379/0"))
    yield client
    await client.aclose()


@pytest.fixture
async def limiter_key(redis: Redis) -> AsyncIterator[str]:
    key = f"test:fortnox:rl:{uuid.uuid4().hex}"
    yield key
    await redis.delete(key)


# -- the sandbox Fortnox over ASGITransport -------------------------------------------------------

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from ledgerlink.config import FortnoxSettings  # noqa: E402
from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth, InMemoryTokenProvider, TokenSet  # noqa: E402
from ledgerlink.ratelimit import SlidingWindowLimiter  # noqa: E402
from ledgerlink.sandbox.fortnox import (  # noqa: E402
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SandboxFortnox,
    create_sandbox_fortnox_app,
)
from ledgerlink.sandbox.fortnox_data import SandboxCompany  # noqa: E402

BASE = "http://fortnox.test"


def make_settings(**overrides: object) -> FortnoxSettings:
    values: dict[str, object] = {
        "api_base_url": BASE,
        "auth_base_url": f"{BASE}/oauth-v1",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": SecretStr(DEFAULT_CLIENT_SECRET),
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return FortnoxSettings.model_validate(values)


@pytest.fixture
def sandbox_app() -> FastAPI:
    return create_sandbox_fortnox_app(company=SandboxCompany.generate(seed=7, vouchers=150, year=2025))


@pytest.fixture
def sandbox(sandbox_app: FastAPI) -> SandboxFortnox:
    state: SandboxFortnox = sandbox_app.state.fortnox
    return state


@pytest.fixture
def transport(sandbox_app: FastAPI) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=sandbox_app)


@pytest.fixture
def settings() -> FortnoxSettings:
    return make_settings()


@pytest.fixture
async def oauth(settings: FortnoxSettings, transport: httpx.ASGITransport) -> AsyncIterator[FortnoxOAuth]:
    client = FortnoxOAuth(settings=settings, transport=transport)
    yield client
    await client.aclose()


@pytest.fixture
def provider(oauth: FortnoxOAuth, sandbox: SandboxFortnox) -> InMemoryTokenProvider:
    return InMemoryTokenProvider(oauth, TokenSet.from_token_response(sandbox.issue_tokens()))


@pytest.fixture
def limiter(redis: Redis, limiter_key: str) -> SlidingWindowLimiter:
    return SlidingWindowLimiter(redis, limiter_key, limit=25, window_seconds=5.0)


@pytest.fixture
async def client(
    settings: FortnoxSettings,
    provider: InMemoryTokenProvider,
    limiter: SlidingWindowLimiter,
    transport: httpx.ASGITransport,
) -> AsyncIterator[FortnoxClient]:
    async def no_sleep(_: float) -> None:
        return None

    fortnox = FortnoxClient(
        settings=settings, token_provider=provider, limiter=limiter, transport=transport, sleep=no_sleep
    )
    yield fortnox
    await fortnox.aclose()
