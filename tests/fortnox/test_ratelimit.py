from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from redis.asyncio import Redis

from ledgerlink.ratelimit import InProcessLimiter, SlidingWindowLimiter


def max_in_any_window(times: list[float], window: float) -> int:
    """The largest number of timestamps that fall within one half-open window of ``window`` seconds."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_window_counter_counts_what_it_should() -> None:
    assert max_in_any_window([0.0, 0.1, 0.2, 1.0, 1.05], 1.0) == 4
    assert max_in_any_window([0.0, 0.1, 1.0, 1.05, 2.5], 1.0) == 3
    assert max_in_any_window([0.0, 0.5, 0.9, 0.99], 1.0) == 4
    assert max_in_any_window([], 1.0) == 0


async def test_grants_up_to_limit_then_reports_a_wait(redis: Redis, limiter_key: str) -> None:
    limiter = SlidingWindowLimiter(redis, limiter_key, limit=3, window_seconds=10, margin_seconds=0)
    waits = [await limiter.try_acquire() for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 9 < waits[3] <= 10
    assert await redis.zcard(limiter_key) == 3


@pytest.mark.parametrize("in_process", [False, True], ids=["redis", "in-process"])
async def test_many_concurrent_acquirers_across_limiter_instances(
    redis: Redis, limiter_key: str, in_process: bool
) -> None:
    """Six independent limiter objects (as in six processes over Redis, or six jobs of one company in
    the embedded default) share one budget of 5 per 0.5 s."""
    limit, window = 5, 0.5
    limiters: list[SlidingWindowLimiter | InProcessLimiter] = [
        InProcessLimiter(limiter_key, limit, window, margin_seconds=0.05)
        if in_process
        else SlidingWindowLimiter(redis, limiter_key, limit=limit, window_seconds=window, margin_seconds=0.05)
        for _ in range(6)
    ]
    starts: list[float] = []

    async def worker(limiter: SlidingWindowLimiter | InProcessLimiter) -> None:
        for _ in range(5):
            await limiter.acquire()
            starts.append(time.monotonic())

    await asyncio.gather(*(worker(limiter) for limiter in limiters))
    assert len(starts) == 30
    assert max_in_any_window(starts, window) <= limit


async def test_separate_keys_do_not_share_a_budget(redis: Redis, limiter_key: str) -> None:
    other_key = limiter_key + ":other"
    try:
        first = SlidingWindowLimiter(redis, limiter_key, limit=1, window_seconds=30)
        second = SlidingWindowLimiter(redis, other_key, limit=1, window_seconds=30)
        assert await first.try_acquire() == 0.0
        assert await second.try_acquire() == 0.0
        assert await first.try_acquire() > 0
    finally:
        await redis.delete(other_key)


async def test_min_interval_spaces_consecutive_starts(redis: Redis, limiter_key: str) -> None:
    limiter = SlidingWindowLimiter(
        redis, limiter_key, limit=100, window_seconds=1, margin_seconds=0, min_interval_seconds=0.05
    )
    starts: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        starts.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(6)))
    assert len(starts) == 6
    # The granted slots carry the Redis server's clock (microseconds): consecutive grants are >= 50 ms apart.
    scores = [score for _, score in await redis.zrange(limiter_key, 0, -1, withscores=True)]
    assert len(scores) == 6
    assert all(b - a >= 50_000 for a, b in itertools.pairwise(scores))


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(Redis(), "k", limit=0, window_seconds=1)
