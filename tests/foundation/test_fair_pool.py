"""Checkouts from a full pool are served first come, first served (``ledgerlink.db.fair_pool``): a
connection coming back goes to the longest waiting checkout, never to one that arrived after it; a
checkout that times out or is cancelled while it waits takes no connection with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import greenlet_spawn

from ledgerlink.db.fair_pool import FairAsyncQueue, FairAsyncQueuePool
from ledgerlink.db.session import create_engine


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=5)
    yield engine
    await engine.dispose()


async def _checkout(engine: AsyncEngine, name: str, order: list[str], hold: asyncio.Event) -> None:
    async with engine.connect() as conn:
        order.append(name)
        await conn.execute(text("SELECT 1"))
        await hold.wait()


async def _waiting(engine: AsyncEngine, waiters: int) -> None:
    """Until ``waiters`` checkouts wait in the pool's queue."""
    queue = engine.sync_engine.pool._pool  # type: ignore[attr-defined]
    for _ in range(500):
        # the fair queue's waiters, or (to compare) those of SQLAlchemy's own asyncio.Queue
        futures = getattr(queue, "_waiters", None) or queue._queue._getters
        if sum(not w.done() for w in futures) == waiters:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {waiters} waiting checkouts")


async def test_the_pool_of_every_postgresql_engine_is_the_fair_one(one_connection: AsyncEngine) -> None:
    assert isinstance(one_connection.sync_engine.pool, FairAsyncQueuePool)


async def test_a_returned_connection_goes_to_the_waiting_checkout_not_to_a_newcomer_ready_to_run() -> None:
    """The overtaking itself, made deterministic: a checkout that is ready to run when a connection comes
    back (a request that just arrived) must not take it from one that has waited."""
    queue: FairAsyncQueue[str] = FairAsyncQueue(maxsize=1)
    order: list[str] = []

    async def checkout(name: str) -> None:
        item = await greenlet_spawn(queue.get, True, 5.0)
        order.append(name)
        await asyncio.sleep(0)
        await greenlet_spawn(queue.put, item, False)

    waiting = asyncio.create_task(checkout("waiting"))
    await asyncio.sleep(0.01)  # it found the queue empty and waits
    newcomer = asyncio.create_task(checkout("newcomer"))  # ready to run, not run yet ...
    await greenlet_spawn(queue.put, "connection", False)  # ... when the connection comes back
    await asyncio.wait_for(asyncio.gather(waiting, newcomer), 10)
    assert order == ["waiting", "newcomer"]


async def test_waiting_checkouts_are_served_in_the_order_they_came(one_connection: AsyncEngine) -> None:
    engine = one_connection
    order: list[str] = []
    go = asyncio.Event()
    first: AsyncConnection = await engine.connect()
    await first.execute(text("SELECT 1"))
    waiters = []
    for n, name in enumerate(("w1", "w2", "w3"), start=1):
        waiters.append(asyncio.create_task(_checkout(engine, name, order, go)))
        await _waiting(engine, n)
    go.set()  # each waiter gives its connection back as soon as it has run its statement
    await first.close()  # the connection goes back ...
    newcomer = asyncio.create_task(_checkout(engine, "newcomer", order, go))  # ... as this one arrives
    await asyncio.wait_for(asyncio.gather(*waiters, newcomer), 30)
    assert order == ["w1", "w2", "w3", "newcomer"]


async def test_a_checkout_that_times_out_gets_the_pools_timeout_and_takes_no_connection(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        held = await engine.connect()
        await held.execute(text("SELECT 1"))
        with pytest.raises(sqlalchemy.exc.TimeoutError):
            async with engine.connect() as late:
                await late.execute(text("SELECT 1"))
        await held.close()
        async with engine.connect() as conn:  # the one connection is back, not lost to the timed-out wait
            assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
        assert engine.sync_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("handed_first", [False, True], ids=["while-waiting", "just-after-handed"])
async def test_a_cancelled_checkout_passes_the_connection_to_the_next_in_line(
    one_connection: AsyncEngine, handed_first: bool
) -> None:
    """Cancelled while it waits, or after the returned connection was handed to it but before it ran."""
    engine = one_connection
    order: list[str] = []
    go = asyncio.Event()
    go.set()
    held = await engine.connect()
    await held.execute(text("SELECT 1"))
    cancelled = asyncio.create_task(_checkout(engine, "cancelled", order, go))
    await _waiting(engine, 1)
    following = asyncio.create_task(_checkout(engine, "following", order, go))
    await _waiting(engine, 2)
    if handed_first:
        await held.close()  # hands the connection to "cancelled" ...
        cancelled.cancel()  # ... which is cancelled before it runs again
    else:
        cancelled.cancel()
        await held.close()
    await asyncio.wait_for(following, 30)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert order == ["following"]
    assert engine.sync_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
