"""The account lock's three backends keep one promise: one holder per account, freed on release."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest

from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.service.lock import (
    AdvisoryLocks,
    LocalLocks,
    LockBackend,
    RedisLocks,
    lock_backend,
    lock_key,
)


@pytest.fixture(params=["redis", "advisory", "local"])
def backend(request: pytest.FixtureRequest, arq_redis: Any, sessionmaker: Any) -> LockBackend:
    if request.param == "redis":
        return RedisLocks(arq_redis, ttl_ms=30_000)
    if request.param == "advisory":
        return AdvisoryLocks(sessionmaker)
    return LocalLocks()


async def test_one_holder_per_account_until_released(backend: LockBackend) -> None:
    account, other_account = uuid.uuid4(), uuid.uuid4()
    first = await backend.acquire(account)
    assert first.token is not None
    busy = await backend.acquire(account)
    assert busy.token is None
    elsewhere = await backend.acquire(other_account)
    assert elsewhere.token is not None  # another account's lock is independent
    await first.release()
    again = await backend.acquire(account)
    assert again.token is not None
    await first.release()  # releasing twice is harmless and frees nothing of the next holder's
    assert (await backend.acquire(account)).token is None
    for lock in (busy, elsewhere, again):
        await lock.release()
    last = await backend.acquire(account)
    assert last.token is not None
    await last.release()


async def test_redis_and_local_locks_tell_the_stale_run_sweep_a_live_run_holds_them(
    arq_redis: Any, sessionmaker: Any
) -> None:
    for backend in (RedisLocks(arq_redis, ttl_ms=30_000), LocalLocks()):
        account = uuid.uuid4()
        assert not await backend.held_by_live_run(account)
        lock = await backend.acquire(account)
        assert await backend.held_by_live_run(account)
        await lock.release()
        assert not await backend.held_by_live_run(account)
    # An advisory lock cannot be seen from another session: the sweep relies on the run's age.
    assert not await AdvisoryLocks(sessionmaker).held_by_live_run(uuid.uuid4())


async def test_a_redis_lock_that_lapsed_and_was_taken_frees_nothing_of_the_new_holder(arq_redis: Any) -> None:
    """Release and renewal compare the token (redis-py's Lua scripts): a run whose lock lapsed and went to
    another run neither deletes nor extends the other run's key, and its release does not raise."""
    backend = RedisLocks(arq_redis, ttl_ms=300)
    account = uuid.uuid4()
    lapsed = await backend.acquire(account)
    assert lapsed.token is not None
    assert (await arq_redis.get(lock_key(account))).decode() == lapsed.token
    await arq_redis.set(lock_key(account), "another-run", px=60_000)  # the TTL ran out, another run won
    await asyncio.sleep(0.25)  # a renewal beat (every third of the TTL) finds the key no longer ours
    assert await arq_redis.pttl(lock_key(account)) > 30_000  # not reset to our 300 ms
    await lapsed.release()
    assert await arq_redis.get(lock_key(account)) == b"another-run"


def test_the_backend_follows_the_deployment(settings: Any, sessionmaker: Any, arq_redis: Any) -> None:
    env = ServiceEnv(settings=settings, sessionmaker=sessionmaker, redis=arq_redis)
    assert isinstance(lock_backend(env), RedisLocks)
    assert isinstance(
        lock_backend(replace(env, redis=None)), AdvisoryLocks
    )  # the test database is PostgreSQL
