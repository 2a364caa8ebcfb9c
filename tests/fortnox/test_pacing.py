"""Pacing below Fortnox's limit: the headroom setting and the in-process limiter of the embedded default."""

from __future__ import annotations

import itertools
import time
import uuid

from ledgerlink.config import FortnoxSettings, Settings
from ledgerlink.fortnox.settings import build_limiter, paced_limit
from ledgerlink.ratelimit import InProcessLimiter


def test_the_default_keeps_headroom_below_fortnox_limit() -> None:
    fx = FortnoxSettings()
    assert fx.requests_per_window == 25 and fx.window_seconds == 5.0  # Fortnox's own limit
    assert paced_limit(fx) == 20
    assert paced_limit(FortnoxSettings(rate_headroom_percent=0)) == 25
    assert paced_limit(FortnoxSettings(rate_headroom_percent=90)) == 2


def test_the_company_budget_uses_the_paced_limit() -> None:
    settings = Settings(fortnox=FortnoxSettings(client_id="c", rate_headroom_percent=40))
    limiter = build_limiter(settings, None, uuid.uuid4())
    assert isinstance(limiter, InProcessLimiter)
    assert limiter.limit == 15 and limiter.window_seconds == 5.0


async def test_min_interval_spaces_starts() -> None:
    limiter = InProcessLimiter(f"test:{uuid.uuid4()}", 100, 1.0, margin_seconds=0, min_interval_seconds=0.05)
    starts: list[float] = []
    for _ in range(5):
        await limiter.acquire()
        starts.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045
