"""The allowance ledger's one-statement spend (``UnattendedReadRepository.record_if_below``): a read is
recorded while fewer than the limit were recorded since the window start, never beyond it; older reads
and the other endpoint do not count. On PostgreSQL and on SQLite (``make run``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.db.base import Base
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, Company, ConnectionStatus, Plan
from ledgerlink.models.bank import UnattendedRead
from ledgerlink.sync.repository import UnattendedReadRepository

AT = dt.datetime(2026, 3, 10, 2, 0, tzinfo=dt.UTC)
SINCE = AT - dt.timedelta(hours=24)


@pytest.fixture
async def sqlite_sessionmaker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/allowance.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _account(sm: async_sessionmaker[AsyncSession]) -> uuid.UUID:
    company, connection, account = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sm() as s:
        s.add(Company(id=company, name="Kaffekoppen AB", plan=Plan.business))
        await s.flush()
        s.add(
            BankConnection(
                id=connection,
                company_id=company,
                bank_id="sandbox",
                account_type="business",
                status=ConnectionStatus.active,
            )
        )
        await s.flush()
        s.add(
            BankAccount(
                id=account,
                company_id=company,
                connection_id=connection,
                bank_id="sandbox",
                external_id="ftg-anna",
                identity_key=f"ftg-anna:{account.hex[:6]}",
                currency="SEK",
                name="Företagskonto",
                ledger_account="1930",
                sync_from=dt.date(2026, 1, 1),
                status=AccountStatus.active,
            )
        )
        await s.commit()
    return account


async def _spend(
    sm: async_sessionmaker[AsyncSession], account: uuid.UUID, endpoint: str, at: dt.datetime
) -> bool:
    async with sm() as s:
        spent = await UnattendedReadRepository(s).record_if_below(account, endpoint, at, SINCE, 4)
        await s.commit()
    return spent


async def _recorded(sm: async_sessionmaker[AsyncSession], account: uuid.UUID, endpoint: str) -> int:
    async with sm() as s:
        stmt = select(func.count()).where(
            UnattendedRead.account_id == account, UnattendedRead.endpoint == endpoint
        )
        return int((await s.execute(stmt)).scalar_one())


async def _reads_are_recorded_up_to_the_limit_and_never_beyond(
    sm: async_sessionmaker[AsyncSession],
) -> None:
    account = await _account(sm)
    assert await _spend(sm, account, "transactions", SINCE - dt.timedelta(minutes=1))  # before the window
    spent = [await _spend(sm, account, "transactions", AT + dt.timedelta(minutes=i)) for i in range(6)]
    assert spent == [True, True, True, True, False, False]
    assert await _recorded(sm, account, "transactions") == 5  # 4 in the window + the older one
    assert await _spend(sm, account, "balances", AT)  # the other endpoint has its own allowance
    assert await _recorded(sm, account, "balances") == 1
    async with sm() as s:  # the recorded values are the ones given
        oldest = await UnattendedReadRepository(s).oldest_since(account, "transactions", SINCE)
    assert oldest == AT


async def test_postgresql_records_reads_up_to_the_limit_and_never_beyond(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _reads_are_recorded_up_to_the_limit_and_never_beyond(sessionmaker)


async def test_sqlite_records_reads_up_to_the_limit_and_never_beyond(
    sqlite_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _reads_are_recorded_up_to_the_limit_and_never_beyond(sqlite_sessionmaker)
