"""The account lock: at most one sync run of an account at a time, across workers.

One interface (:class:`LockBackend`), three backends chosen by the deployment (:func:`lock_backend`):

* :class:`RedisLocks` (Redis configured): redis-py's :class:`redis.asyncio.lock.Lock` (``SET key token
  NX PX ttl``, compare-and-delete release, compare-and-pexpire ``reacquire``, in Lua), renewed every
  third of the TTL while the run lives, so a run longer than the TTL (the job may take up to its
  30-minute timeout) keeps its lock and a dead worker's lock lapses after one TTL.
* :class:`AdvisoryLocks` (no Redis, PostgreSQL): a session advisory lock held on a dedicated connection
  (it ends with the connection, so a dead process frees it).
* :class:`LocalLocks` (no Redis, SQLite: the embedded default is one process): a process-local lock.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio.lock import Lock as RedisLock
from redis.exceptions import LockError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.logging import get_logger
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.repository import AdvisoryLockRepository, SyncRunRepository

log = get_logger(__name__)

_LOCAL_LOCKS: dict[uuid.UUID, asyncio.Lock] = {}


async def _nothing() -> None:
    return None


@dataclass
class Lock:
    """An attempt at an account's lock: held when ``token`` is set (then :meth:`release` frees it),
    busy (someone else holds it) when ``token`` is None."""

    account_id: uuid.UUID
    token: str | None
    _release: Callable[[], Awaitable[None]] = _nothing

    async def release(self) -> None:
        release, self._release = self._release, _nothing
        await release()


class LockBackend(Protocol):
    async def acquire(self, account_id: uuid.UUID) -> Lock:
        """Take the account's lock without waiting (a busy :class:`Lock` when another run holds it)."""
        ...

    async def held_by_live_run(self, account_id: uuid.UUID) -> bool:
        """Whether a live run holds the account's lock (the stale-run sweep leaves such a run alone).
        False when the backend cannot tell: the sweep then relies on the run's age alone."""
        ...


def lock_key(account_id: uuid.UUID) -> str:
    """The account's Redis lock key."""
    return f"ledgerlink:lock:sync:{account_id}"


class RedisLocks:
    def __init__(self, redis: Any, ttl_ms: int) -> None:
        self.redis, self.ttl_ms = redis, ttl_ms

    async def acquire(self, account_id: uuid.UUID) -> Lock:
        token = secrets.token_hex(16)
        held = self.redis.lock(lock_key(account_id), timeout=self.ttl_ms / 1000, thread_local=False)
        if not await held.acquire(blocking=False, token=token):
            return Lock(account_id, None)
        keeper = asyncio.create_task(self._keep(account_id, held))

        async def release() -> None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            try:
                await held.release()
            except LockError:  # it lapsed (and maybe another run holds it now): nothing of ours to free
                log.warning("sync.lock.lost_before_release", account_id=str(account_id))

        return Lock(account_id, token, release)

    async def held_by_live_run(self, account_id: uuid.UUID) -> bool:
        return bool(await self.redis.exists(lock_key(account_id)))

    async def _keep(self, account_id: uuid.UUID, held: RedisLock) -> None:
        """Reset the lock's TTL while the run is alive; stop (and say so) if someone else holds it now."""
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await held.reacquire()
            except LockError:  # LockNotOwnedError: the key lapsed or holds another token
                log.warning("sync.lock.lost", account_id=str(account_id))
                return
            except Exception:  # a Redis hiccup: the next beat tries again while the TTL still runs
                log.warning("sync.lock.renew_failed", account_id=str(account_id))


class AdvisoryLocks:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def acquire(self, account_id: uuid.UUID) -> Lock:
        connection = await self.sessionmaker().connection()
        locks = AdvisoryLockRepository(connection)
        if not await locks.try_lock_account(account_id):
            await connection.close()
            return Lock(account_id, None)

        async def release() -> None:
            try:
                await locks.unlock_account(account_id)
            finally:
                await connection.close()

        return Lock(account_id, secrets.token_hex(16), release)

    async def held_by_live_run(self, account_id: uuid.UUID) -> bool:
        return False


class LocalLocks:
    async def acquire(self, account_id: uuid.UUID) -> Lock:
        lock = _LOCAL_LOCKS.setdefault(account_id, asyncio.Lock())
        if lock.locked():
            return Lock(account_id, None)
        await lock.acquire()

        async def release() -> None:
            lock.release()

        return Lock(account_id, secrets.token_hex(16), release)

    async def held_by_live_run(self, account_id: uuid.UUID) -> bool:
        lock = _LOCAL_LOCKS.get(account_id)
        return lock is not None and lock.locked()


def lock_backend(ctx: ServiceEnv) -> LockBackend:
    """The deployment's backend: Redis when configured, else PostgreSQL advisory locks, else (SQLite)
    process-local locks."""
    if ctx.redis is not None:
        return RedisLocks(ctx.redis, ctx.settings.sync.lock_ttl_seconds * 1000)
    if ctx.settings.uses_sqlite:
        return LocalLocks()
    return AdvisoryLocks(ctx.sessionmaker)


async def take_lock(ctx: ServiceEnv, run_id: uuid.UUID) -> Lock | None:
    """The lock of the run's account (None when the run no longer exists; ``token`` None when busy)."""
    async with ctx.sessionmaker() as session:
        account_id = await SyncRunRepository(session).account_of(run_id)
    if account_id is None:
        return None
    return await lock_backend(ctx).acquire(account_id)


async def release_lock(ctx: ServiceEnv, lock: Lock) -> None:
    await lock.release()
