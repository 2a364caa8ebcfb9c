"""The job primitives every feature's ``tasks.py`` uses: :class:`JobContext`, the ``@task`` and
``@cron_task`` decorators and :class:`RetryLater`.

A job registers in :data:`TASKS` / :data:`CRONS` when its module is imported; which modules those are is
the worker's business (:mod:`ledgerlink.worker.settings`), so this module imports no feature."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink import metrics
from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings
from ledgerlink.runtime import ServiceEnv

if TYPE_CHECKING:  # the type only: the worker primitives import no feature
    from ledgerlink.banks.adapters.keepalive import KeptAliveTransports


class JobContext(TypedDict, total=False):
    """What a job receives. ``redis`` is None in the embedded default; ``clock`` is the process's service
    clock (the wall clock unless a simulation gave the app or worker another): jobs pass it on to the
    services they call."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Any
    transports: dict[str, httpx.AsyncBaseTransport]
    kept_alive: KeptAliveTransports
    clock: Clock
    job_id: str
    job_try: int


def service_env(ctx: JobContext) -> ServiceEnv:
    """What the services a job calls are given: the parts of the job's context they need."""
    return ServiceEnv(
        settings=ctx["settings"],
        sessionmaker=ctx["sessionmaker"],
        clock=ctx.get("clock", system_clock),
        redis=ctx.get("redis"),
        transports=ctx.get("transports", {}),
        kept_alive=ctx.get("kept_alive"),
    )


TaskFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class TaskDef:
    name: str
    fn: TaskFn
    max_tries: int
    timeout_seconds: int


@dataclass(frozen=True)
class CronDef:
    name: str
    fn: TaskFn
    minute: frozenset[int] | None
    hour: frozenset[int] | None
    run_at_startup: bool = False


TASKS: dict[str, TaskDef] = {}
CRONS: dict[str, CronDef] = {}


def task(name: str, *, max_tries: int = 5, timeout_seconds: int = 600) -> Callable[[TaskFn], TaskFn]:
    def register(fn: TaskFn) -> TaskFn:
        TASKS[name] = TaskDef(name, fn, max_tries, timeout_seconds)
        return fn

    return register


def cron_task(
    name: str, *, minute: set[int] | None = None, hour: set[int] | None = None, run_at_startup: bool = False
) -> Callable[[TaskFn], TaskFn]:
    def register(fn: TaskFn) -> TaskFn:
        CRONS[name] = CronDef(
            name,
            fn,
            frozenset(minute) if minute is not None else None,
            frozenset(hour) if hour is not None else None,
            run_at_startup,
        )
        return fn

    return register


class RetryLater(Exception):
    """Raised by a job to run again after ``defer_seconds`` (counts against ``max_tries``)."""

    def __init__(self, defer_seconds: float) -> None:
        super().__init__(f"retry in {defer_seconds:.0f}s")
        self.defer_seconds = defer_seconds


async def run_measured(name: str, fn: TaskFn, ctx: JobContext, kwargs: dict[str, Any]) -> Any:
    """One attempt of job ``name``, timed and counted (``ledgerlink_job_duration_seconds``,
    ``ledgerlink_jobs{task,outcome}``) the same way under arq and the in-process runner."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        result = await fn(ctx, **kwargs)
        outcome = "succeeded"
        return result
    except RetryLater:
        outcome = "retry"
        raise
    except (asyncio.CancelledError, TimeoutError):
        outcome = "cancelled"
        raise
    finally:
        metrics.job_finished(name, outcome, time.perf_counter() - started)
