"""Jittered exponential backoff: when a job (or a webhook delivery) tries again after a failure."""

from __future__ import annotations

import random


def compute_backoff(attempt: int, *, base: float = 30.0, cap: float = 3600.0) -> float:
    """Exponential backoff with full jitter: a random delay in [base/2, min(cap, base * 2**(attempt-1))].

    Args:
        attempt: 1 for the first retry.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(min(base / 2, ceiling), ceiling)
