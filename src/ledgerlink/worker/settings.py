"""The worker: task discovery (:func:`load_all_tasks`, the one list of the features' task modules) and
the arq worker settings built from what registered (``ledgerlink worker``; tests build one in burst
mode)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import arq
import httpx
from arq import cron as arq_cron
from arq.connections import RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerlink.banks.adapters.keepalive import KeptAliveTransports
from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings
from ledgerlink.db.idle_ping import ping_when_idle
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.logging import configure_logging, get_logger
from ledgerlink.ops.scrape import WorkerMetricsServer
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.jobs import CRONS, TASKS, JobContext, RetryLater, TaskFn, run_measured, service_env
from ledgerlink.worker.runner import ArqDispatcher

log = get_logger(__name__)


def load_all_tasks() -> None:
    """Import every feature's ``tasks`` module so their jobs register (:mod:`ledgerlink.worker.jobs`).

    A feature with jobs adds its module here; the features import only the job primitives, so the
    worker depends on them and never the other way round."""
    import ledgerlink.closing.tasks
    import ledgerlink.events.tasks
    import ledgerlink.fortnox.tasks
    import ledgerlink.statements.tasks
    import ledgerlink.sync.tasks  # noqa: F401


def worker_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for a worker process, set as the thread's current loop (arq's ``run_worker``
    runs on it): uvloop's where it is installed (Linux and macOS, with ``uvicorn[standard]``), which
    spends less CPU per socket operation than asyncio's own; asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux and macOS
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def _worker_engine(url: str) -> AsyncEngine:
    """The worker's engine: on PostgreSQL, the checkout ping only for connections idle ≥ 1 s
    (:func:`ping_when_idle`); SQLite (``make run``'s database) as :func:`create_engine` builds it."""
    if url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, pool_pre_ping=False)
    ping_when_idle(engine)
    return engine


def _job_ctx(ctx: dict[str, Any]) -> JobContext:
    job_ctx = cast(JobContext, dict(ctx["ledgerlink"]))
    job_ctx["job_id"] = str(ctx.get("job_id", ""))
    job_ctx["job_try"] = int(ctx.get("job_try", 1))
    return job_ctx


def _adapt(name: str, fn: TaskFn) -> Any:
    async def run(ctx: dict[str, Any], **kwargs: Any) -> Any:
        try:
            return await run_measured(name, fn, _job_ctx(ctx), kwargs)
        except RetryLater as retry:
            raise arq.Retry(defer=retry.defer_seconds) from retry

    run.__qualname__ = run.__name__ = name.replace(".", "_")
    return run


def build_worker_settings(
    settings: Settings,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    configure_logs: bool = True,
    clock: Clock = system_clock,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``arq.Worker``: every registered task and cron, with our job context
    (``clock``: the service clock the jobs pass on; simulations give their own). With ``metrics_port``
    the worker serves its Prometheus metrics there while it runs (:class:`WorkerMetricsServer`)."""
    if not settings.redis_url:
        raise RuntimeError("the arq worker needs LEDGERLINK_REDIS_URL")
    load_all_tasks()

    async def startup(ctx: dict[str, Any]) -> None:
        if configure_logs:
            configure_logging(settings.log_level, json=settings.log_json)
        engine = _worker_engine(settings.database_url)
        set_dispatcher(ArqDispatcher(ctx["redis"], queue_name=settings.queue_name))
        ctx["engine"] = engine
        ctx["ledgerlink"] = {
            "settings": settings,
            "sessionmaker": create_sessionmaker(engine),
            "redis": ctx["redis"],
            "transports": dict(transports or {}),
            "kept_alive": KeptAliveTransports(),  # one connection pool per bank for the process
            "clock": clock,
        }
        if metrics_port is not None:
            ctx["metrics_server"] = WorkerMetricsServer(metrics_port, service_env(ctx["ledgerlink"]))
        log.info("worker.started", tasks=sorted(TASKS), metrics_port=metrics_port)

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "metrics_server" in ctx:
            await asyncio.to_thread(ctx.pop("metrics_server").close)
        if "ledgerlink" in ctx:
            await ctx["ledgerlink"]["kept_alive"].aclose()
        await ctx["engine"].dispose()

    functions = [
        arq.func(_adapt(d.name, d.fn), name=d.name, max_tries=d.max_tries, timeout=d.timeout_seconds)
        for d in TASKS.values()
        if d.name not in CRONS
    ]
    cron_jobs = [
        arq_cron(
            _adapt(c.name, c.fn),
            name=c.name,
            minute=set(c.minute) if c.minute is not None else None,
            hour=set(c.hour) if c.hour is not None else None,
            run_at_startup=c.run_at_startup,
            unique=True,
        )
        for c in CRONS.values()
    ]
    return {
        "functions": functions,
        "cron_jobs": cron_jobs,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": settings.queue_name,
        "max_jobs": 20,
        "job_timeout": 1800,
    }
