"""The database token store behind open_client: single-use refresh under a lock, persisted first;
the shared limiter; against the sandbox Fortnox, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.fortnox.client import FortnoxClient, TokenSet
from ledgerlink.fortnox.errors import FortnoxAuthError, FortnoxNotConnected, FortnoxReauthRequired
from ledgerlink.fortnox.service import connection_status, open_client
from ledgerlink.fortnox.token_store import open_tokens, seal_tokens
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.ratelimit import InProcessLimiter, SlidingWindowLimiter
from ledgerlink.sandbox.fortnox import SandboxFortnox
from ledgerlink.security import SecretBox
from tests.fortnox import test_connection_api as api
from tests.fortnox.test_connection_api import stored_connection

# the app-level fixtures of the API tests (they override tests/fortnox/conftest.py's client-level ones)
settings = api.settings
sandbox_app = api.sandbox_app
sandbox = api.sandbox
transport = api.transport


async def insert_connection(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    company_id: uuid.UUID,
    tokens: TokenSet,
    *,
    last_used_at: dt.datetime | None = None,
) -> uuid.UUID:
    """A connected company, as the callback would have left it (skips the browser)."""
    now = dt.datetime.now(dt.UTC)
    used = last_used_at or now
    row_id = uuid.uuid4()
    async with session_scope(sessionmaker) as session:
        session.add(
            FortnoxConnection(
                id=row_id,
                company_id=company_id,
                status=FortnoxConnectionStatus.active,
                secrets=seal_tokens(SecretBox.from_settings(settings.security), row_id, tokens),
                access_expires_at=tokens.expires_at,
                scopes=tokens.scope,
                connected_at=used,
                last_used_at=used,
                expires_at=used + dt.timedelta(days=settings.fortnox.validity_days),
            )
        )
    return row_id


async def current_tokens(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, company_id: uuid.UUID
) -> TokenSet:
    row = await stored_connection(sessionmaker, company_id)
    return open_tokens(SecretBox.from_settings(settings.security), row)


@pytest.fixture
async def connected(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    company_id: uuid.UUID,
    sandbox: SandboxFortnox,
) -> TokenSet:
    tokens = TokenSet.from_token_response(sandbox.issue_tokens())
    await insert_connection(sessionmaker, settings, company_id, tokens)
    return tokens


@pytest.fixture
async def app_redis() -> Any:
    client = Redis.from_url("redis://localhost:6379/0")
    yield client
    await client.aclose()


def _open(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any,
    company_id: uuid.UUID,
    transport: httpx.AsyncBaseTransport,
) -> Any:
    return open_client(
        settings=settings, sessionmaker=sessionmaker, redis=redis, company_id=company_id, transport=transport
    )


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis-lock", "row-lock"])
async def test_two_concurrent_refreshes_make_one_fortnox_call(
    use_redis: bool,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    redis = app_redis if use_redis else None
    async with (
        _open(settings, sessionmaker, redis, company_id, transport) as first,
        _open(settings, sessionmaker, redis, company_id, transport) as second,
    ):
        assert isinstance(first, FortnoxClient) and isinstance(second, FortnoxClient)
        results = await asyncio.gather(
            first.tokens.refresh_access_token(connected.access_token),
            second.tokens.refresh_access_token(connected.access_token),
        )
    assert sandbox.counters.refresh_grants == 1
    stored = await current_tokens(sessionmaker, settings, company_id)
    assert results == [stored.access_token, stored.access_token]
    assert stored.access_token != connected.access_token
    assert stored.refresh_token != connected.refresh_token


async def test_expired_access_token_is_refreshed_once_and_persisted(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    sandbox.expire_access_tokens()
    async with _open(settings, sessionmaker, app_redis, company_id, transport) as fortnox:
        info = await fortnox.company_information()
    assert info.company_name == sandbox.company.name
    assert sandbox.counters.refresh_grants == 1
    stored = await current_tokens(sessionmaker, settings, company_id)
    assert stored.access_token in sandbox.access_tokens
    assert stored.refresh_token != connected.refresh_token
    row = await stored_connection(sessionmaker, company_id)
    assert row.access_expires_at == stored.expires_at
    async with _open(settings, sessionmaker, app_redis, company_id, transport) as fortnox:
        await fortnox.company_information()
    assert sandbox.counters.refresh_grants == 1  # the next client uses the stored pair


async def test_a_stale_client_never_sends_the_old_refresh_token(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    """B loaded the pair before A rotated it; B's 401 reuses A's new token instead of refreshing with
    the spent refresh token (which the sandbox would answer with invalid_grant)."""
    async with _open(settings, sessionmaker, app_redis, company_id, transport) as stale:
        sandbox.expire_access_tokens()
        async with _open(settings, sessionmaker, app_redis, company_id, transport) as fresh:
            await fresh.company_information()
        assert sandbox.counters.refresh_grants == 1
        info = await stale.company_information()
    assert info.company_name == sandbox.company.name
    assert sandbox.counters.refresh_grants == 1
    assert sandbox.refresh_tokens[connected.refresh_token].used
    row = await stored_connection(sessionmaker, company_id)
    assert row.status == FortnoxConnectionStatus.active


async def test_refresh_rejected_marks_the_connection_for_reauthorization(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    sandbox.refresh_tokens[connected.refresh_token].revoked = True  # e.g. revoked in Fortnox's UI
    sandbox.expire_access_tokens()
    async with _open(settings, sessionmaker, app_redis, company_id, transport) as fortnox:
        with pytest.raises(FortnoxAuthError) as excinfo:
            await fortnox.company_information()
    assert excinfo.value.error == "invalid_grant"
    row = await stored_connection(sessionmaker, company_id)
    assert row.status == FortnoxConnectionStatus.expired
    assert row.secrets is None
    assert connection_status(row) == "expired"
    with pytest.raises(FortnoxReauthRequired):
        async with _open(settings, sessionmaker, app_redis, company_id, transport):
            pass


async def test_refresh_survives_a_rollback_of_the_calling_job(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    sandbox.expire_access_tokens()

    class JobFailed(Exception):
        pass

    async def failing_job() -> None:
        async with session_scope(sessionmaker) as job_session:
            await job_session.get(FortnoxConnection, (await stored_connection(sessionmaker, company_id)).id)
            async with _open(settings, sessionmaker, app_redis, company_id, transport) as fortnox:
                await fortnox.company_information()
            raise JobFailed

    with pytest.raises(JobFailed):
        await failing_job()
    stored = await current_tokens(sessionmaker, settings, company_id)
    assert stored.refresh_token != connected.refresh_token
    assert not sandbox.refresh_tokens[stored.refresh_token].used


async def test_open_client_without_a_connection_is_not_connected(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transport: httpx.ASGITransport,
) -> None:
    with pytest.raises(FortnoxNotConnected):
        async with _open(settings, sessionmaker, None, uuid.uuid4(), transport):
            pass


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "in-process"])
async def test_the_limiter_holds_under_concurrent_jobs_for_one_company(
    use_redis: bool,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app_redis: Redis,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    connected: TokenSet,
) -> None:
    """Three jobs, each with its own client, share the company's budget: Fortnox never answers 429.

    Without one shared budget the 12 requests would reach the sandbox within one of its windows. Our
    window is twice the sandbox's so that scheduling delay on a loaded machine (requests reaching the
    sandbox later than the limiter let them start) cannot make a correct limiter look wrong."""
    settings.fortnox = settings.fortnox.model_copy(update={"requests_per_window": 4, "window_seconds": 1.0})
    sandbox.requests_per_window = 4
    sandbox.window_seconds = 0.5
    redis = app_redis if use_redis else None
    if use_redis:
        await app_redis.delete(f"fortnox:rl:sandbox-client:{company_id}")

    async def job() -> int:
        async with _open(settings, sessionmaker, redis, company_id, transport) as fortnox:
            assert isinstance(fortnox.limiter, SlidingWindowLimiter if use_redis else InProcessLimiter)
            for _ in range(4):
                await fortnox.company_information()
        return 4

    assert sum(await asyncio.gather(job(), job(), job())) == 12
    assert sandbox.counters.rate_limited == 0
    assert sandbox.counters.by_path["GET /3/companyinformation"] == 12
    if use_redis:
        await app_redis.delete(f"fortnox:rl:sandbox-client:{company_id}")
