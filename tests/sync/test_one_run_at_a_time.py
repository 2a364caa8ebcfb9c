"""Racing requests never duplicate work: 50 parallel confirmations of a bank account start ONE initial
import, and 50 parallel "sync now" queue ONE run (the others answer 409 naming it), on PostgreSQL and on
the embedded SQLite default, even when runs finish while the requests are still arriving."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.db.base import Base
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.main import create_app
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    Company,
    ConnectionStatus,
    Plan,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from tests.conftest import make_token

PARALLEL = 50


async def seed(sm: async_sessionmaker[AsyncSession], status: AccountStatus) -> tuple[uuid.UUID, uuid.UUID]:
    company_id = uuid.uuid4()
    async with sm() as s:
        s.add(Company(id=company_id, name="Racer AB", plan=Plan.business))
        connection = BankConnection(
            id=uuid.uuid4(), company_id=company_id, bank_id="sandbox", account_type="business",
            status=ConnectionStatus.active,
        )  # fmt: skip
        s.add(connection)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(), company_id=company_id, connection_id=connection.id, bank_id="sandbox",
            external_id="ftg-1", identity_key="ftg-1", currency="SEK",
            sync_from=dt.date.today() - dt.timedelta(days=10), status=status, ledger_account="1930",
        )  # fmt: skip
        s.add(account)
        await s.commit()
    return company_id, account.id


async def finish_runs_quickly(sm: async_sessionmaker[AsyncSession], stop: asyncio.Event) -> None:
    """A worker faster than the requests: every queued run is done moments after it is committed."""
    while not stop.is_set():
        async with sm() as s:
            await s.execute(
                update(SyncRun)
                .where(SyncRun.status.in_([SyncStatus.queued, SyncStatus.running]))
                .values(status=SyncStatus.succeeded, finished_at=func.now())
            )
            await s.commit()
        await asyncio.sleep(0.002)


async def storm(client: httpx.AsyncClient, url: str, headers: dict[str, str], **kw: Any) -> Counter[int]:
    responses = await asyncio.gather(*(client.post(url, headers=headers, **kw) for _ in range(PARALLEL)))
    assert all(r.status_code < 500 for r in responses), [r.text for r in responses if r.status_code >= 500]
    for r in responses:
        if r.status_code == 409:
            assert r.headers["content-type"].startswith("application/problem+json")
    return Counter(r.status_code for r in responses)


async def runs_of(sm: async_sessionmaker[AsyncSession], account_id: uuid.UUID, trigger: SyncTrigger) -> int:
    async with sm() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(SyncRun)
            .where(SyncRun.account_id == account_id, SyncRun.trigger == trigger)
        )
    return int(count or 0)


async def check_confirmations(
    client: httpx.AsyncClient, sm: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    company_id, account_id = await seed(sm, AccountStatus.pending_confirmation)
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking')}"}
    stop = asyncio.Event()
    worker = asyncio.create_task(finish_runs_quickly(sm, stop))
    try:
        statuses = await storm(client, f"/v1/bank-accounts/{account_id}/confirmation", headers)
    finally:
        stop.set()
        await worker
    assert statuses[202] == 1, statuses
    assert set(statuses) <= {202, 409}, statuses
    assert await runs_of(sm, account_id, SyncTrigger.initial) == 1


async def check_sync_now(
    client: httpx.AsyncClient, sm: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    company_id, account_id = await seed(sm, AccountStatus.active)
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking')}"}
    responses = await asyncio.gather(
        *(
            client.post(f"/v1/bank-accounts/{account_id}/syncs", json={}, headers=headers)
            for _ in range(PARALLEL)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == Counter({202: 1, 409: PARALLEL - 1}), [
        r.text for r in responses if r.status_code >= 500
    ]
    run_id = next(r.json()["id"] for r in responses if r.status_code == 202)
    assert {r.json().get("run_id") for r in responses if r.status_code == 409} == {run_id}
    assert await runs_of(sm, account_id, SyncTrigger.manual) == 1


# --------------------------------------------------------------------------- PostgreSQL


async def test_parallel_confirmations_start_one_initial_import_on_postgresql(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await check_confirmations(client, sessionmaker, settings)


async def test_parallel_sync_nows_queue_one_run_on_postgresql(
    client: httpx.AsyncClient, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    await check_sync_now(client, sessionmaker, settings)


# --------------------------------------------------------------------------- the embedded default


@pytest.fixture
async def sqlite_app(tmp_path: Path, settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    embedded = settings.model_copy(update={"database_url": url, "redis_url": None})
    app = create_app(embedded, start_cron=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, create_sessionmaker(engine)
    await engine.dispose()


@pytest.mark.sqlite
async def test_parallel_confirmations_start_one_initial_import_on_sqlite(
    sqlite_app: tuple[httpx.AsyncClient, Any], settings: Settings
) -> None:
    client, sm = sqlite_app
    await check_confirmations(client, sm, settings)


@pytest.mark.sqlite
async def test_parallel_sync_nows_queue_one_run_on_sqlite(
    sqlite_app: tuple[httpx.AsyncClient, Any], settings: Settings
) -> None:
    client, sm = sqlite_app
    await check_sync_now(client, sm, settings)
