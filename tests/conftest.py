"""Test fixtures: a real PostgreSQL database per test run (migrated with Alembic, tables truncated after
each test), real Redis with a queue name of its own, the app over ASGI, and tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from arq import Worker
from arq.connections import RedisSettings, create_pool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

os.environ.setdefault("LEDGERLINK_ENV", "testing")

from ledgerlink.auth.tokens import issue_dev_token
from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings
from ledgerlink.db.migrate import upgrade
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.main import create_app
from ledgerlink.models import Base
from ledgerlink.worker.settings import build_worker_settings

PG_ADMIN_DSN = os.environ.get("LEDGERLINK_TEST_PG_DSN", "postgresql://postgres@localhost:5432/postgres")
REDIS_URL = os.environ.get("LEDGERLINK_TEST_REDIS_URL", "redis://localhost:6379/0")


def _asyncpg_dsn(db: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{db}"


def _sqlalchemy_url(db: str) -> str:
    return _asyncpg_dsn(db).replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture(scope="session")
def database_name() -> Iterator[str]:
    """A fresh database for this test run, migrated to head; dropped at the end."""
    import asyncio

    name = f"ledgerlink_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    upgrade("head", _sqlalchemy_url(name))
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(database_name: str) -> str:
    return _sqlalchemy_url(database_name)


@pytest.fixture(scope="session")
def queue_name() -> str:
    return f"ledgerlink-test:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(database_url: str, queue_name: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="testing",
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=queue_name,
        sandbox=True,
        log_json=True,
        allowed_redirect_uris=["https://app.example.test/callback", "http://localhost:3000/callback"],
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=5, max_overflow=10)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    yield create_sessionmaker(engine)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def transports() -> dict[str, httpx.AsyncBaseTransport]:
    """Per-test map of bank id / "fortnox" to an httpx transport (sandbox apps or respx)."""
    return {}


@pytest.fixture
def service_clock() -> Clock:
    """The clock the app and the jobs run on (a simulated one where a test package overrides this)."""
    return system_clock


@pytest.fixture
async def app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transports: dict[str, Any],
    service_clock: Clock,
) -> AsyncIterator[Any]:
    application = create_app(settings, transports=transports, start_cron=False, clock=service_clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def arq_redis(settings: Settings) -> AsyncIterator[Any]:
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    yield pool
    keys = await pool.keys(f"{settings.queue_name}*")
    if keys:
        await pool.delete(*keys)
    await pool.aclose()


@pytest.fixture
async def run_jobs(
    settings: Settings, arq_redis: Any, transports: dict[str, Any], service_clock: Clock
) -> Any:
    """Run every queued job to completion with a real arq worker in burst mode; returns the worker."""

    async def run(**overrides: Any) -> Worker:
        kwargs = build_worker_settings(
            settings, transports=transports, configure_logs=False, clock=service_clock
        )
        kwargs.update(burst=True, poll_delay=0.0, max_jobs=kwargs.get("max_jobs", 10), handle_signals=False)
        kwargs.pop("redis_settings")
        kwargs.update(overrides)
        worker = Worker(redis_pool=arq_redis, **kwargs)
        try:
            await worker.main()
        finally:
            await worker.close()
        return worker

    return run


def make_token(settings: Settings, company_id: uuid.UUID, scopes: str = "banking closing") -> str:
    return issue_dev_token(settings, company_id=company_id, scopes=scopes)


@pytest.fixture
def company_id() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def auth_headers(settings: Settings, company_id: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(settings, company_id)}"}
