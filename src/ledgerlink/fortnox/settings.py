"""Which Fortnox this server talks to, and how fast: the effective settings and the per-company budget."""

from __future__ import annotations

import math
import uuid
from typing import Any

from pydantic import SecretStr

from ledgerlink.config import FortnoxSettings, Settings
from ledgerlink.errors import ServiceUnavailable
from ledgerlink.ratelimit import InProcessLimiter, Limiter, SlidingWindowLimiter

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # the public sandbox's well-known secret


def effective_fortnox_settings(settings: Settings) -> FortnoxSettings:
    """``settings.fortnox``, or, in sandbox mode without a configured client, the mounted sandbox
    Fortnox at ``{public_base_url}/sandbox/fortnox`` with its well-known client."""
    fx = settings.fortnox
    if settings.sandbox and not fx.client_id:
        base = f"{settings.public_base_url.rstrip('/')}/sandbox/fortnox"
        return fx.model_copy(
            update={
                "api_base_url": base,
                "auth_base_url": f"{base}/oauth-v1",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SecretStr(SANDBOX_CLIENT_SECRET),
            }
        )
    return fx


def require_configured(fx: FortnoxSettings) -> None:
    if not fx.client_id or fx.client_secret is None:
        raise ServiceUnavailable("Fortnox is not configured on this server", code="fortnox_not_configured")


def paced_limit(fx: FortnoxSettings) -> int:
    """Requests we allow ourselves per window: Fortnox's limit less ``rate_headroom_percent``."""
    return max(1, math.floor(fx.requests_per_window * (100 - fx.rate_headroom_percent) / 100))


def build_limiter(settings: Settings, redis: Any | None, company_id: uuid.UUID) -> Limiter:
    """The company's Fortnox budget, shared by every worker (Redis) or by this process (no Redis)."""
    fx = effective_fortnox_settings(settings)
    key = f"fortnox:rl:{fx.client_id}:{company_id}"
    if redis is not None:
        return SlidingWindowLimiter(redis, key, paced_limit(fx), fx.window_seconds)
    return InProcessLimiter(key, paced_limit(fx), fx.window_seconds)


__all__ = [
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "build_limiter",
    "effective_fortnox_settings",
    "paced_limit",
    "require_configured",
]
