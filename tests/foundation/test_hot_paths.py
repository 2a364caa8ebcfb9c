"""Hot-path shortcuts keep their guarantees: the one-round-trip checkout ping replaces a killed
connection, read sessions do not open transactions, verified tokens are cached only until exp."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from ledgerlink.auth.tokens import TokenVerifier, issue_dev_token
from ledgerlink.config import AuthSettings, Settings
from ledgerlink.db.session import create_engine
from ledgerlink.errors import Unauthorized


async def test_checkout_ping_replaces_a_terminated_connection(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        other = create_engine(database_url, pool_size=1, max_overflow=0)
        try:
            async with other.connect() as killer:
                await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        finally:
            await other.dispose()
        async with engine.connect() as conn:  # the pooled connection is dead: replaced on checkout
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await engine.dispose()


async def test_verified_tokens_are_cached_until_exp() -> None:
    settings = Settings(_env_file=None, auth=AuthSettings())
    verifier = TokenVerifier(settings.auth)
    company = uuid.uuid4()
    token = issue_dev_token(settings, company_id=company, scopes="banking")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache
    assert first.company_id == company
    # An entry past its exp is not honoured: the token is verified again (and here rejected).
    expired = issue_dev_token(settings, company_id=company, scopes="banking", ttl_seconds=-3600)
    verifier._verified[expired] = (first, time.time() - 1)
    try:
        await verifier.verify(expired)
    except Unauthorized:
        pass
    else:
        raise AssertionError("an expired token was accepted from the cache")
    assert expired not in verifier._verified


async def _kill_backends(database_url: str, pids: set[int]) -> None:
    killer = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with killer.connect() as conn:
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


PATHS = ("/v1/transactions?status=unbooked", "/v1/todos", "/v1/bank-connections")


@contextlib.asynccontextmanager
async def _api_with_one_connection(
    settings: Settings, company_id: uuid.UUID
) -> AsyncIterator[tuple[Any, dict[str, str], Any]]:
    """The app with a pool of ONE PostgreSQL connection (so the one killed is the one the next request
    gets): its client, a token's headers and its engine."""
    import httpx

    from ledgerlink.main import create_app

    app = create_app(settings.model_copy(update={"database_pool_size": 1}), start_cron=False)
    headers = {
        "Authorization": f"Bearer {issue_dev_token(settings, company_id=company_id, scopes='banking')}"
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, headers, app.state.engine


async def _kill_the_pooled_connection(settings: Settings, engine: Any) -> int:
    async with engine.connect() as conn:
        pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
    await _kill_backends(settings.database_url, {pid})
    return pid


async def _pooled_pid(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_killed_pooled_connection_is_a_503_then_replaced_never_a_500(
    settings: Settings, company_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's pool pings only connections idle for a while (here: never, so the test does not depend
    on timing): a backend killed while pooled (pg_terminate_backend, as a database restart does) answers
    the request that meets it 503 problem+json with Retry-After, on the prebuilt asyncpg path (the
    transaction list), on SQLAlchemy's in a read session (the to-dos) and in a unit of work (the
    connections); the pool drops the connection and the next request is served."""
    from ledgerlink.db import idle_ping

    monkeypatch.setattr(idle_ping, "IDLE_PING_SECONDS", 3600.0)
    async with _api_with_one_connection(settings, company_id) as (client, headers, engine):
        assert engine.pool.size() == 1 and engine.pool._max_overflow == 0
        for path in PATHS:
            assert (await client.get(path, headers=headers)).status_code == 200
            pid = await _kill_the_pooled_connection(settings, engine)
            dead = await client.get(path, headers=headers)
            assert dead.status_code == 503, (path, dead.text)
            assert dead.headers["content-type"].startswith("application/problem+json")
            assert dead.headers["retry-after"] == "1"
            assert dead.json()["code"] == "database_unavailable"
            again = await client.get(path, headers=headers)
            assert again.status_code == 200, (path, again.text)
            assert await _pooled_pid(engine) != pid


async def test_a_pooled_connection_that_died_while_idle_is_replaced_before_the_request_uses_it(
    settings: Settings, company_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection idle for the ping's threshold (here: every one, threshold 0) is pinged on checkout: a
    backend killed while the API was quiet costs no request (200 on every path, a new backend)."""
    from ledgerlink.db import idle_ping

    monkeypatch.setattr(idle_ping, "IDLE_PING_SECONDS", 0.0)
    async with _api_with_one_connection(settings, company_id) as (client, headers, engine):
        for path in PATHS:
            assert (await client.get(path, headers=headers)).status_code == 200
            pid = await _kill_the_pooled_connection(settings, engine)
            served = await client.get(path, headers=headers)
            assert served.status_code == 200, (path, served.text)
            assert await _pooled_pid(engine) != pid
