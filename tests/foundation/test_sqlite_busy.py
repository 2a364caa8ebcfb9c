"""The embedded default's one writer: SQLite lets one write transaction run at a time, so a request's
write waits for another's (a 100 MB SIE upload's store, an import's batch) up to the busy timeout
(``LEDGERLINK_DATABASE_SQLITE_BUSY_TIMEOUT_SECONDS``, 30 s; SQLite's own default is 5 s), and past it the
request is answered 503 ``database_busy`` with Retry-After, never a 500, and writes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ledgerlink.config import Settings
from ledgerlink.db.base import Base
from ledgerlink.db.session import SQLITE_BUSY_TIMEOUT_SECONDS, create_engine
from ledgerlink.main import create_app

pytestmark = pytest.mark.sqlite

CLOSING = {"financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"}


@asynccontextmanager
async def _embedded_app(tmp_path: Path, settings: Settings, **overrides: Any) -> AsyncIterator[Any]:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    app = create_app(
        settings.model_copy(update={"database_url": url, "redis_url": None, **overrides}), start_cron=False
    )
    async with app.router.lifespan_context(app):
        yield app


@contextmanager
def _other_writer(path: Path) -> Iterator[threading.Event]:
    """Another connection holding SQLite's write lock until the yielded event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        yield release
    finally:
        release.set()
        thread.join()


async def _closings(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get("/v1/closings", headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


async def test_every_sqlite_engine_waits_longer_than_sqlites_own_default(tmp_path: Path) -> None:
    """Engines made outside the API (migrations, the CLI, the sandbox) wait too."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db")
    try:
        async with engine.connect() as conn:
            waits_ms = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await engine.dispose()
    assert waits_ms == SQLITE_BUSY_TIMEOUT_SECONDS * 1000
    assert waits_ms > 5000


async def test_the_apis_sqlite_connections_wait_the_configured_busy_timeout(
    tmp_path: Path, settings: Settings
) -> None:
    async with _embedded_app(tmp_path, settings, database_sqlite_busy_timeout_seconds=12.5) as app:
        engine = app.state.engine
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one() == 12500


async def test_a_write_waits_for_another_write_to_finish(
    tmp_path: Path, settings: Settings, auth_headers: dict[str, str]
) -> None:
    async with _embedded_app(tmp_path, settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            with _other_writer(tmp_path / "ledgerlink.db") as release:
                post = asyncio.create_task(client.post("/v1/closings", json=CLOSING, headers=auth_headers))
                await asyncio.sleep(1.0)
                assert not post.done()  # waiting for the other writer, not failed
                release.set()
                created = await post
            assert created.status_code == 201, created.text
            assert await _closings(client, auth_headers) == 1


async def test_a_write_that_waited_past_the_busy_timeout_is_a_503_and_writes_nothing(
    tmp_path: Path, settings: Settings, auth_headers: dict[str, str]
) -> None:
    async with _embedded_app(tmp_path, settings, database_sqlite_busy_timeout_seconds=0.2) as app:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            with _other_writer(tmp_path / "ledgerlink.db"):
                refused = await client.post("/v1/closings", json=CLOSING, headers=auth_headers)
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "database_busy"
            assert refused.headers["retry-after"] == "1"
            assert await _closings(client, auth_headers) == 0
            retried = await client.post("/v1/closings", json=CLOSING, headers=auth_headers)
            assert retried.status_code == 201, retried.text
            assert await _closings(client, auth_headers) == 1
