"""Test fixtures: a real PostgreSQL database per test process (migrated with Alembic; each pytest-xdist
worker has its own), emptied after each test of exactly the tables the test wrote to, real Redis with a
queue name of its own per process, the app over ASGI, and tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import hypothesis
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


# Property tests assert behaviour, never time: Hypothesis's default 200 ms deadline per example turns a
# loaded machine (the whole suite under xdist beside the fault soak) into failures, so it is off.
hypothesis.settings.register_profile("ledgerlink", deadline=None)
hypothesis.settings.load_profile("ledgerlink")

#: Under pytest-xdist (``make test``) these run first, longest first, so the long ones overlap the many
#: short ones instead of trailing at the end; a file listed with a group runs as one unit on one worker.
#: (path prefix, xdist group or None)
_LONG_FIRST: list[tuple[str, str | None]] = [
    # the soak is the longest test by far (minutes) and waits on timeouts and a worker subprocess: alone
    ("tests/resilience/test_fault_soak.py", "fault-soak"),
    # one make-run server per module (module-scoped fixture): the file stays on one worker
    ("tests/e2e/test_make_run_journeys.py", "make-run-journeys"),
    ("tests/resilience/test_load.py", None),
    ("tests/fortnox/test_client.py", None),
    ("tests/resilience/", None),
    ("tests/sync/test_nightly.py", None),
    ("tests/foundation/test_smoke_sqlite.py", None),
    ("tests/sie/", None),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the files that must stay on one xdist worker and put the long tests first (a stable sort:
    the order within a file is kept). The same on every worker, as xdist requires."""

    def rank(item: pytest.Item) -> int:
        for index, (prefix, _) in enumerate(_LONG_FIRST):
            if item.nodeid.startswith(prefix):
                return index
        return len(_LONG_FIRST)

    for item in items:
        index = rank(item)
        if index < len(_LONG_FIRST) and (group := _LONG_FIRST[index][1]) is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=rank)


#: Under xdist, a worker lowers its own CPU priority by this much once it runs anything but the fault soak:
#: the soak is the critical path and slows most under CPU contention, while the short tests fill the time
#: the soak spends waiting (its worker subprocess, started while its xdist worker is not yet lowered,
#: keeps the normal priority).
_YIELD_TO_SOAK = 10
_yielded: list[bool] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _yielded or _worker_id() == "main":
        return
    group = item.get_closest_marker("xdist_group")
    if group is not None and group.args and group.args[0] == _LONG_FIRST[0][1]:
        return
    os.nice(_YIELD_TO_SOAK)
    _yielded.append(True)


def _worker_id() -> str:
    """The pytest-xdist worker id (``gw0``, ``gw1``, ...), or ``main`` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_name() -> Iterator[str]:
    """A fresh database for this test process (one per xdist worker), migrated to head; dropped at the end."""
    import asyncio

    name = f"ledgerlink_test_{_worker_id()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"

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
    return f"ledgerlink-test:{_worker_id()}:{uuid.uuid4().hex[:8]}"


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


#: Tables children first, so deleting in this order never trips a foreign key.
_TABLES_CHILDREN_FIRST = [t.name for t in reversed(Base.metadata.sorted_tables)]
#: Above this many rows in one table TRUNCATE beats DELETE (soak and load tests write thousands).
_DELETE_AT_MOST = 2000
#: One round trip: each table's row count, capped just above ``_DELETE_AT_MOST`` (empty tables cost nothing).
_ROW_COUNTS_SQL = " UNION ALL ".join(
    f"SELECT '{name}', (SELECT count(*) FROM (SELECT 1 FROM \"{name}\" LIMIT {_DELETE_AT_MOST + 1}) t)"
    for name in _TABLES_CHILDREN_FIRST
)
#: Table -> its serial (autoincrement integer) key column, whose sequence restarts with the table.
_SERIAL_COLUMNS = {
    t.name: t.autoincrement_column.name
    for t in Base.metadata.sorted_tables
    if t.autoincrement_column is not None
}


async def reset_database(engine: AsyncEngine) -> list[str]:
    """Empty exactly the tables that hold rows and restart their identity sequences, as a TRUNCATE of
    every table with RESTART IDENTITY did, at a fraction of the cost; returns the tables it emptied.

    The code under test commits for real (requests and jobs commit at the edges), so a rolled-back
    per-test transaction would not see its writes; a DELETE of a few rows is much cheaper than a TRUNCATE,
    which rewrites every table file it names (and with CASCADE pulls in every referencing table)."""
    async with engine.begin() as conn:
        counts: dict[str, int] = dict((await conn.execute(text(_ROW_COUNTS_SQL))).tuples().all())
        ordered = [name for name in _TABLES_CHILDREN_FIRST if counts[name] > 0]
        if not ordered:
            return []
        big = any(counts[name] > _DELETE_AT_MOST for name in ordered)
        if big:
            names = ", ".join(f'"{name}"' for name in ordered)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            return ordered
        for name in ordered:
            await conn.execute(text(f'DELETE FROM "{name}"'))
        for name in ordered:
            if name in _SERIAL_COLUMNS:
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', '{_SERIAL_COLUMNS[name]}'), 1, false)"
                    )
                )
        return ordered


@pytest.fixture
async def sessionmaker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    yield create_sessionmaker(engine)
    await reset_database(engine)


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
    """Run every queued job to completion with a real arq worker in burst mode; returns the worker.

    Each worker has a Redis pool of its own, as a worker process has: arq's ``Worker.close`` closes its
    pool's connections, which would cut off another worker running beside it (two at once, in tests of
    concurrent workers) in the middle of a command."""

    async def run(**overrides: Any) -> Worker:
        kwargs = build_worker_settings(
            settings, transports=transports, configure_logs=False, clock=service_clock
        )
        kwargs.update(burst=True, poll_delay=0.0, max_jobs=kwargs.get("max_jobs", 10), handle_signals=False)
        kwargs.pop("redis_settings")
        kwargs.update(overrides)
        worker = Worker(redis_pool=await create_pool(RedisSettings.from_dsn(REDIS_URL)), **kwargs)
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
