"""The 30-day sliding validity: renew(), expiry, the fortnox_expiring to-do and the hourly cron."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.fortnox.client import TokenSet
from ledgerlink.fortnox.service import connection_status, renew
from ledgerlink.fortnox.tasks import refresh_due
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.models.inbox import Todo
from ledgerlink.sandbox.fortnox import SandboxFortnox
from ledgerlink.worker.jobs import CRONS, JobContext
from tests.fortnox import test_connection_api as api
from tests.fortnox.test_connection_api import stored_connection
from tests.fortnox.test_connection_tokens import current_tokens, insert_connection

settings = api.settings
sandbox_app = api.sandbox_app
sandbox = api.sandbox
transport = api.transport

DAY = dt.timedelta(days=1)


async def connect_used(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    *,
    days_ago: float,
) -> TokenSet:
    tokens = TokenSet.from_token_response(sandbox.issue_tokens())
    used = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
    await insert_connection(sessionmaker, settings, company_id, tokens, last_used_at=used)
    return tokens


async def todos(sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> list[Todo]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Todo)
            .where(Todo.company_id == company_id, Todo.type == "fortnox_expiring")
            .order_by(Todo.created_at)
        )
        return list(rows.scalars())


def job_context(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], transport: Any
) -> JobContext:
    return {
        "settings": settings,
        "sessionmaker": sessionmaker,
        "redis": None,
        "transports": {"fortnox": transport},
    }


async def test_renew_slides_the_validity_30_days_from_now(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=20)
    now = dt.datetime.now(dt.UTC)
    async with session_scope(sessionmaker) as session:
        await renew(session, company_id, settings=settings, now=now)
    row = await stored_connection(sessionmaker, company_id)
    assert row.last_used_at == now
    assert row.expires_at == now + dt.timedelta(days=30)
    assert connection_status(row) == "active"


async def test_renew_is_part_of_the_callers_unit_of_work(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=20)
    before = await stored_connection(sessionmaker, company_id)
    async with sessionmaker() as session:
        await renew(session, company_id, settings=settings)
        await session.rollback()
    after = await stored_connection(sessionmaker, company_id)
    assert after.expires_at == before.expires_at


async def test_renew_does_not_revive_an_expired_connection(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=31)
    async with session_scope(sessionmaker) as session:
        await renew(session, company_id, settings=settings)
    row = await stored_connection(sessionmaker, company_id)
    assert connection_status(row) == "expired"


async def test_cron_raises_the_expiring_todo_7_days_ahead_once_and_renew_resolves_it(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=24)
    ctx = job_context(settings, sessionmaker, transport)
    await refresh_due(ctx)
    await refresh_due(ctx)
    open_todos = await todos(sessionmaker, company_id)
    assert len(open_todos) == 1
    row = await stored_connection(sessionmaker, company_id)
    assert open_todos[0].resolved_at is None
    assert open_todos[0].subject_key == "fortnox"
    assert dt.datetime.fromisoformat(open_todos[0].data["expires_at"]) == row.expires_at

    async with session_scope(sessionmaker) as session:
        await renew(session, company_id, settings=settings)
    assert all(t.resolved_at is not None for t in await todos(sessionmaker, company_id))


async def test_cron_raises_no_todo_more_than_7_days_ahead(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=22)
    await refresh_due(job_context(settings, sessionmaker, transport))
    assert await todos(sessionmaker, company_id) == []


async def test_cron_expires_an_idle_connection_and_revokes_its_token(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
) -> None:
    tokens = await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=30.5)
    outcome = await refresh_due(job_context(settings, sessionmaker, transport))
    assert outcome == {"expired": 1}
    row = await stored_connection(sessionmaker, company_id)
    assert row.status == FortnoxConnectionStatus.expired
    assert row.secrets is None
    assert sandbox.refresh_tokens[tokens.refresh_token].revoked
    assert [t.resolved_at for t in await todos(sessionmaker, company_id)] == [None]
    assert await refresh_due(job_context(settings, sessionmaker, transport)) == {}


async def test_cron_refreshes_access_tokens_that_expire_before_the_next_run(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
) -> None:
    tokens = await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=1)
    outcome = await refresh_due(job_context(settings, sessionmaker, transport))
    assert outcome == {"refreshed": 1}
    assert sandbox.counters.refresh_grants == 1
    stored = await current_tokens(sessionmaker, settings, company_id)
    assert stored.refresh_token != tokens.refresh_token
    assert stored.refresh_token in sandbox.refresh_tokens


async def test_cron_leaves_fresh_access_tokens_alone(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox: SandboxFortnox,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
) -> None:
    await connect_used(sessionmaker, settings, sandbox, company_id, days_ago=1)
    async with sessionmaker() as session:
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)
        await session.execute(update(FortnoxConnection).values(access_expires_at=later))
        await session.commit()
    assert await refresh_due(job_context(settings, sessionmaker, transport)) == {"ok": 1}
    assert sandbox.counters.refresh_grants == 0


def test_refresh_due_is_an_hourly_cron() -> None:
    cron = CRONS["fortnox.refresh_due"]
    assert cron.hour is None
    assert cron.minute is not None and len(cron.minute) == 1
