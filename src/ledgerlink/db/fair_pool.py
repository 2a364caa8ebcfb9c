"""A connection pool that serves waiting checkouts first come, first served.

SQLAlchemy's asyncio pool keeps its idle connections in an ``asyncio.Queue`` and a checkout first takes
one without waiting if any is free. When a connection comes back while checkouts wait, the longest
waiting one is woken, but a checkout arriving before it runs takes the connection, and the woken one
queues again at the back. Under a full pool (more concurrent requests than connections) most
requests pass quickly while a few are overtaken again and again until the pool's 30 s timeout. The load
test saw exactly that: p50 0.7 s, p99 19.6 s, and 503 ``database_busy`` after 30 s.

Here a returned connection goes straight to the longest waiting checkout, and a new checkout takes a
free connection only when nobody waits. Everything else (size, overflow, timeout, pre-ping, recycle) is
SQLAlchemy's own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

_T = TypeVar("_T")


class FairAsyncQueue(AsyncAdaptedQueue[_T]):
    """The pool's idle connections, handed to waiting checkouts in the order they came."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        while self._waiters and self._waiters[0].done():  # timed out or cancelled
            self._waiters.popleft()
        if not self._waiters:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        if not block:
            raise Empty()
        return await_(self._wait(seconds=timeout))

    async def _wait(self, *, seconds: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except TimeoutError:
            self._pass_on(waiter)
            raise Empty() from None
        except asyncio.CancelledError:
            self._pass_on(waiter)
            raise

    def _pass_on(self, waiter: asyncio.Future[_T]) -> None:
        """A checkout that timed out or was cancelled just after it was handed a connection, before it
        could run: the connection goes to the next in line."""
        if waiter.done() and not waiter.cancelled():
            self.put_nowait(waiter.result())


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool with first-come, first-served checkouts (:class:`FairAsyncQueue`)."""

    _queue_class = FairAsyncQueue  # type: ignore[assignment]
