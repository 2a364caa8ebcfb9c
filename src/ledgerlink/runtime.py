"""What a service is given by the process that runs it (a worker's job, or the app): :class:`ServiceEnv`.

Services take it (or the parts they need) as an argument; they never see the worker's job context, so
they run the same from a job, an endpoint, a script or a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings

if TYPE_CHECKING:  # the type only: the foundation imports no feature
    from ledgerlink.banks.adapters.keepalive import KeptAliveTransports


@dataclass(frozen=True)
class ServiceEnv:
    """Settings, the session factory, the service clock, the Redis pool (None in the embedded default)
    and the httpx transports injected by tests and dev (by bank id, or ``"fortnox"``); in the worker, its
    kept-alive bank transports."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock = system_clock
    redis: Any = None
    transports: Mapping[str, httpx.AsyncBaseTransport] = field(default_factory=dict)
    #: The worker's kept-alive connection pools to the banks (None: a new client per adapter).
    kept_alive: KeptAliveTransports | None = None


def app_env(state: Any) -> ServiceEnv:
    """The app's own parts as a :class:`ServiceEnv` (an endpoint passes ``request.app.state``, which holds
    them under the same names)."""
    return ServiceEnv(
        **{f.name: getattr(state, f.name) for f in fields(ServiceEnv) if hasattr(state, f.name)}
    )
