"""The figures read at scrape time, and the worker's metrics server that reads them.

The gauges of :mod:`ledgerlink.metrics` that describe the whole system (the arq queue, consents about to
lapse, what is left of the PSD2 allowance of unattended reads) are not events a process counts: they are
read from Redis and the database when Prometheus asks, by :func:`refresh_scrape_gauges`. The API's
``GET /metrics`` awaits it before rendering; ``ledgerlink worker --metrics-port N`` serves the process
registry from prometheus-client's HTTP server thread, which runs the same refresh on the worker's event
loop (:class:`ScrapeTimeRegistry`), so each process shows the same, current, system-wide figures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import RestrictedRegistry

from ledgerlink import metrics as domain
from ledgerlink.db.session import session_scope
from ledgerlink.logging import get_logger
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.repository import LifecycleRepository
from ledgerlink.sync.service.allowance import allowance_by_bank

log = get_logger(__name__)

#: Each source (Redis, the database) gets this long; a figure that cannot be read keeps its last value.
READ_TIMEOUT_SECONDS = 2.0


async def refresh_scrape_gauges(env: ServiceEnv) -> None:
    """Set the scrape-time gauges: the arq queue (when Redis is configured; 0 in the embedded mode), the
    consents expiring within the reminder horizon (``settings.sync.consent_reminder_horizon``: the largest
    ``consent_reminder_days`` threshold, so the gauge counts the consents that have a ``consent_expiring``
    to-do or will within a sweep) and the unattended reads left per bank and endpoint.
    Best effort: a figure that cannot be read keeps its last value, logged, and the scrape still answers."""
    if env.redis is None:
        domain.QUEUE_DEPTH.set(0)
        domain.QUEUE_OLDEST_DUE_AGE.set(0)
    else:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                await _read_queue(env.redis, env.settings.queue_name)
        except Exception as exc:
            log.warning("metrics.queue.unreadable", error=type(exc).__name__)
    try:
        async with asyncio.timeout(READ_TIMEOUT_SECONDS):
            await _read_database(env)
    except Exception as exc:
        log.warning("metrics.database.unreadable", error=type(exc).__name__)


async def _read_queue(redis: Any, queue: str) -> None:
    now_ms = time.time() * 1000
    domain.QUEUE_DEPTH.set(await redis.zcard(queue))
    oldest = await redis.zrangebyscore(queue, "-inf", now_ms, start=0, num=1, withscores=True)
    domain.QUEUE_OLDEST_DUE_AGE.set(max(0.0, (now_ms - oldest[0][1]) / 1000) if oldest else 0)


async def _read_database(env: ServiceEnv) -> None:
    now = env.clock()
    async with session_scope(env.sessionmaker) as session:
        horizon = now + env.settings.sync.consent_reminder_horizon
        expiring = await LifecycleRepository(session).count_consents_expiring(now, horizon)
        allowance = await allowance_by_bank(session, env.settings.sync.unattended_reads_per_day, now)
    domain.CONSENTS_EXPIRING.set(expiring)
    domain.replace_series(
        domain.UNATTENDED_REMAINING, {(a.bank_id, a.endpoint): a.remaining for a in allowance}
    )
    domain.replace_series(
        domain.ALLOWANCE_SPENT_ACCOUNTS, {(a.bank_id, a.endpoint): a.accounts_spent for a in allowance}
    )


class ScrapeTimeRegistry:
    """The process registry as the worker's metrics server collects it: first the scrape-time gauges are
    refreshed on the worker's event loop (where its database engine and Redis pool live), then every
    metric is collected. The server's thread waits for the refresh at most ``timeout`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        refresh: Callable[[], Coroutine[Any, Any, None]],
        *,
        timeout: float = 2 * READ_TIMEOUT_SECONDS + 1,
    ) -> None:
        self._loop = loop
        self._refresh = refresh
        self._timeout = timeout

    def _refreshed(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self._refresh(), self._loop)
        try:
            future.result(timeout=self._timeout)
        except Exception as exc:  # the loop is busy or stopping: serve the last figures
            future.cancel()
            log.warning("metrics.refresh.failed", error=type(exc).__name__)

    def collect(self) -> Iterable[Metric]:
        self._refreshed()
        return REGISTRY.collect()

    def restricted_registry(self, names: Iterable[str]) -> RestrictedRegistry:
        """``/metrics?name[]=...``: only those metrics, refreshed all the same."""
        self._refreshed()
        return REGISTRY.restricted_registry(names)


class WorkerMetricsServer:
    """``ledgerlink worker --metrics-port N``: prometheus-client's HTTP server (a daemon thread) on
    ``host:port``, serving :class:`ScrapeTimeRegistry`; started from the worker's startup hook, on its loop."""

    def __init__(self, port: int, env: ServiceEnv, *, host: str = "0.0.0.0") -> None:
        registry = ScrapeTimeRegistry(asyncio.get_running_loop(), lambda: refresh_scrape_gauges(env))
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port = int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
