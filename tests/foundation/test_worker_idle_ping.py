"""The worker's checkout ping (``db.idle_ping``): a connection that sat idle is pinged and a dead one
replaced on checkout; one used a moment ago is not pinged, so a statement meeting it dead fails as a lost
connection (which the sync job retries) and the next checkout gets a live one."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledgerlink.db.idle_ping import is_lost_connection, ping_when_idle
from ledgerlink.db.session import create_engine


async def _kill_pooled_connection(database_url: str, pid: int) -> None:
    other = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with other.connect() as killer:
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


async def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    ping_when_idle(engine, idle_seconds=0.0)  # every connection counts as idle
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _kill_pooled_connection(database_url, pid)
        async with engine.connect() as conn:  # idle ≥ 0 s: pinged, found dead, replaced
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await engine.dispose()


async def test_a_recently_used_dead_connection_fails_as_lost_and_the_next_checkout_is_live(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    ping_when_idle(engine, idle_seconds=3600.0)  # nothing counts as idle: no ping
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _kill_pooled_connection(database_url, pid)
        with pytest.raises(DBAPIError) as lost:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert is_lost_connection(lost.value)
        async with engine.connect() as conn:
            new_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await engine.dispose()


def test_other_errors_are_not_lost_connections() -> None:
    assert not is_lost_connection(ValueError("nope"))
    assert not is_lost_connection(
        DBAPIError("SELECT 1", None, Exception("syntax"), connection_invalidated=False)
    )
