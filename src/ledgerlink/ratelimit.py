"""Sliding-window rate limiters: one shared by every worker and process through Redis, and the same
semantics inside one process for the embedded default (no Redis).

Each granted slot is a member of a sorted set scored by the Redis server's clock, so all processes
agree on time. A Lua script drops the members older than the window, grants a slot when fewer than
``limit`` remain and otherwise answers how long to wait; the check and the grant are one atomic step.

``margin_seconds`` widens the window the limiter enforces beyond the remote one: the remote server
counts arrivals, not our start times, and network delay differs per request. ``min_interval_seconds``
optionally spaces consecutive starts (Fortnox throttles bursts even below 25 per 5 s).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from redis.asyncio import Redis

_ACQUIRE = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local min_interval = tonumber(ARGV[3])
local member = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local wait = 0
if count >= limit then
  local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  wait = tonumber(oldest[2]) + window - now
end
if min_interval > 0 and count > 0 then
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local gap = tonumber(newest[2]) + min_interval - now
  if gap > wait then wait = gap end
end
if wait > 0 then
  return wait
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, math.ceil((window + min_interval) / 1000) + 1000)
return 0
"""


class Limiter(Protocol):
    """What :class:`ledgerlink.fortnox.client.FortnoxClient` needs: wait for a slot, then go."""

    async def acquire(self) -> None: ...


@dataclass(eq=False)
class _Window:
    """The budget both limiters enforce, and how they wait for it."""

    key: str
    limit: int
    window_seconds: float
    margin_seconds: float = field(default=0.25, kw_only=True)
    min_interval_seconds: float = field(default=0.0, kw_only=True)
    max_jitter_seconds: float = field(default=0.0, kw_only=True)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError("limit must be at least 1")
        if self.window_seconds <= 0 or self.margin_seconds < 0 or self.min_interval_seconds < 0:
            raise ValueError("window must be positive and margins non-negative")

    @property
    def effective_window_seconds(self) -> float:
        return self.window_seconds + self.margin_seconds

    async def _wait_time(self) -> float:
        raise NotImplementedError

    async def acquire(self) -> None:
        """Wait until a slot is free and take it."""
        while True:
            wait = await self._wait_time()
            if wait <= 0:
                return
            await asyncio.sleep(wait + random.uniform(0, self.max_jitter_seconds))


class SlidingWindowLimiter(_Window):
    """At most ``limit`` acquisitions start within any ``window_seconds + margin_seconds`` window.

    ``key`` names the shared budget (e.g. ``fortnox:rl:<client_id>:<tenant>``). ``acquire`` polls the
    script and sleeps for the time it reports (plus a little jitter so waiters do not stampede).
    """

    def __init__(self, redis: Redis, key: str, limit: int, window_seconds: float, **budget: float) -> None:
        """``budget``: ``margin_seconds``, ``min_interval_seconds`` and ``max_jitter_seconds`` (0.02 here:
        waiters on a shared budget do not stampede)."""
        super().__init__(key, limit, window_seconds, **{"max_jitter_seconds": 0.02, **budget})
        self.redis = redis
        self._script = redis.register_script(_ACQUIRE)

    async def try_acquire(self) -> float:
        """Take a slot if one is free and return 0.0, else return the seconds to wait before retrying."""
        window_us = round(self.effective_window_seconds * 1_000_000)
        interval_us = round(self.min_interval_seconds * 1_000_000)
        member = uuid.uuid4().hex
        wait_us = await self._script(keys=[self.key], args=[window_us, self.limit, interval_us, member])
        return max(0.0, int(wait_us) / 1_000_000)

    async def _wait_time(self) -> float:
        return await self.try_acquire()

    async def reset(self) -> None:
        """Forget every granted slot (tests and admin tooling)."""
        await self.redis.delete(self.key)


class InProcessLimiter(_Window):
    """:class:`SlidingWindowLimiter` semantics inside one process (the embedded default without Redis):
    at most ``limit`` starts within any ``window_seconds + margin_seconds``, and consecutive starts at
    least ``min_interval_seconds`` apart. Limiters built with the same ``key`` share one budget."""

    _windows: ClassVar[dict[str, deque[float]]] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        self._starts = self._windows.setdefault(self.key, deque())

    def try_acquire(self) -> float:
        """Take a slot if one is free and return 0.0, else return the seconds to wait before retrying."""
        now = time.monotonic()
        window = self.effective_window_seconds
        while self._starts and now - self._starts[0] >= window:
            self._starts.popleft()
        wait = 0.0
        if len(self._starts) >= self.limit:
            wait = self._starts[len(self._starts) - self.limit] + window - now
        if self.min_interval_seconds > 0 and self._starts:
            wait = max(wait, self._starts[-1] + self.min_interval_seconds - now)
        if wait > 0:
            return wait
        self._starts.append(now)  # no await between the check and the grant: atomic in this process
        return 0.0

    async def _wait_time(self) -> float:
        return self.try_acquire()

    async def reset(self) -> None:
        self._starts.clear()


__all__ = ["InProcessLimiter", "Limiter", "SlidingWindowLimiter"]
