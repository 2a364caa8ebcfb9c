"""Refreshing Fortnox tokens as the independent look-alike exercised it: parallel requests after expiry
in the embedded default (SQLite, no Redis) spend the refresh token once and keep the connection, and a
short-lived access token is refreshed once per expiry, not once per call."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import ledgerlink.models  # noqa: F401  (every table on Base.metadata)
from ledgerlink.config import Settings
from ledgerlink.db.base import Base
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth, InMemoryTokenProvider, TokenSet
from ledgerlink.fortnox.errors import FortnoxAuthError
from ledgerlink.fortnox.service import connection_status, open_client
from ledgerlink.ratelimit import InProcessLimiter
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.fortnox import test_connection_api as api
from tests.fortnox import test_connection_tokens as tokens_tests
from tests.fortnox.conftest import make_settings
from tests.fortnox.test_connection_api import stored_connection
from tests.fortnox.test_connection_tokens import current_tokens, insert_connection

T = TypeVar("T")

settings = api.settings
sandbox_app = api.sandbox_app
sandbox = api.sandbox
transport = api.transport


@pytest.fixture
async def sqlite_sessionmaker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The embedded default's database: a SQLite file (the schema straight from the models)."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def in_parallel(
    n: int,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    transport: httpx.AsyncBaseTransport,
    call: Callable[[FortnoxClient], Awaitable[T]],
) -> list[T]:
    """``n`` requests at once, each through its own client (as ``n`` parallel API requests or jobs)."""

    async def one() -> T:
        async with open_client(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=None,
            company_id=company_id,
            transport=transport,
        ) as client:
            return await call(client)

    return list(await asyncio.gather(*(one() for _ in range(n))))


@pytest.mark.parametrize("parallel", [3, 8])
async def test_parallel_requests_after_expiry_refresh_once_without_redis_on_sqlite(
    parallel: int,
    settings: Settings,
    sqlite_sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    tokens = TokenSet.from_token_response(sandbox.issue_tokens())
    await insert_connection(sqlite_sessionmaker, settings, company_id, tokens)
    sandbox.expire_access_tokens()  # Fortnox now answers 401 to the stored access token

    infos = await in_parallel(
        parallel, settings, sqlite_sessionmaker, company_id, transport, FortnoxClient.company_information
    )
    names = [info.company_name for info in infos]

    assert names == [sandbox.company.name] * parallel
    assert sandbox.counters.refresh_grants == 1  # one refresh token sent, once
    row = await stored_connection(sqlite_sessionmaker, company_id)
    assert connection_status(row) == "active" and row.last_error is None
    stored = await current_tokens(sqlite_sessionmaker, settings, company_id)
    assert stored.refresh_token != tokens.refresh_token
    assert not sandbox.refresh_tokens[stored.refresh_token].used  # the stored one is still good


async def test_the_same_after_our_own_margin_says_expiring(
    settings: Settings,
    sqlite_sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    """Expired by our clock (no 401 first): the proactive refresh is serialised the same way."""
    sandbox.access_token_seconds = 1
    tokens = TokenSet.from_token_response(sandbox.issue_tokens())
    await insert_connection(sqlite_sessionmaker, settings, company_id, tokens)
    await asyncio.sleep(1.1)

    sandbox.access_token_seconds = 3600
    await in_parallel(3, settings, sqlite_sessionmaker, company_id, transport, FortnoxClient.locked_period)
    assert sandbox.counters.refresh_grants == 1
    assert connection_status(await stored_connection(sqlite_sessionmaker, company_id)) == "active"


def test_the_refresh_margin_is_relative_to_the_lifetime() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hour = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 3600}, now=now
    )
    assert hour.refresh_margin_seconds == 60
    assert not hour.needs_refresh(now=now + dt.timedelta(seconds=3539))
    assert hour.needs_refresh(now=now + dt.timedelta(seconds=3540))
    short = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 30}, now=now
    )
    assert short.refresh_margin_seconds == 3
    assert not short.needs_refresh(now=now)  # 30 s < 60 s, yet fresh: not refreshed on every call
    assert short.needs_refresh(now=now + dt.timedelta(seconds=27))


async def test_a_short_lived_token_is_refreshed_once_per_expiry_not_per_call(
    sandbox_app: FastAPI, sandbox: SandboxFortnox
) -> None:
    lifetime = 2
    sandbox.access_token_seconds = lifetime
    fx = make_settings()
    transport = httpx.ASGITransport(app=sandbox_app)
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    provider = InMemoryTokenProvider(oauth, TokenSet.from_token_response(sandbox.issue_tokens()))
    limiter = InProcessLimiter(f"test:{uuid.uuid4()}", 100, 1.0)
    async with FortnoxClient(settings=fx, token_provider=provider, limiter=limiter, transport=transport) as c:
        for _ in range(10):
            await c.locked_period()
        assert sandbox.counters.refresh_grants == 0  # before: 60 s > 2 s, so every call refreshed
        await asyncio.sleep(lifetime)
        for _ in range(10):
            await c.locked_period()
    await oauth.aclose()
    assert sandbox.counters.refresh_grants == 1
    assert sandbox.counters.api_requests == 20  # and Fortnox never answered 401 on the way


connected = tokens_tests.connected


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_refreshes_are_counted_by_outcome(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    """/metrics counts Fortnox token refreshes by outcome."""
    ok, rejected = (
        metric("ledgerlink_fortnox_token_refreshes_total", outcome="ok"),
        metric("ledgerlink_fortnox_token_refreshes_total", outcome="rejected"),
    )
    sandbox.expire_access_tokens()
    async with open_client(
        settings=settings, sessionmaker=sessionmaker, redis=None, company_id=company_id, transport=transport
    ) as fortnox:
        await fortnox.locked_period()
    assert metric("ledgerlink_fortnox_token_refreshes_total", outcome="ok") == ok + 1

    for grant in sandbox.refresh_tokens.values():
        grant.revoked = True
    sandbox.expire_access_tokens()
    async with open_client(
        settings=settings, sessionmaker=sessionmaker, redis=None, company_id=company_id, transport=transport
    ) as fortnox:
        with pytest.raises(FortnoxAuthError):  # the connection needs a new login
            await fortnox.locked_period()
    assert metric("ledgerlink_fortnox_token_refreshes_total", outcome="rejected") == rejected + 1
