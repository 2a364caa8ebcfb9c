"""Running jobs: the arq dispatcher (Redis) and the in-process runner of the embedded default.

Both call the same registered functions with the same :class:`JobContext`, so a job behaves alike
whether ``REDIS_URL`` is set or not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from arq.connections import ArqRedis

from ledgerlink.logging import get_logger
from ledgerlink.worker.enqueue import PendingJob
from ledgerlink.worker.jobs import CRONS, TASKS, JobContext, RetryLater, TaskDef, run_measured

log = get_logger(__name__)


class ArqDispatcher:
    def __init__(self, redis: ArqRedis, *, queue_name: str | None = None) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def dispatch(self, job: PendingJob) -> bool:
        kwargs: dict[str, Any] = {}
        if self.queue_name:
            kwargs["_queue_name"] = self.queue_name
        defer_until = job.defer_until
        if defer_until is not None and defer_until <= dt.datetime.now(dt.UTC):
            defer_until = None  # already due; arq refuses an instant more than a day past (negative expiry)
        result = await self.redis.enqueue_job(
            job.name, _job_id=job.job_id, _defer_until=defer_until, **kwargs, **job.kwargs
        )
        return result is not None


class InProcessRunner:
    """Runs jobs as asyncio tasks in this process (the embedded default and some tests)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.running: dict[str, asyncio.Task[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cron_task: asyncio.Task[None] | None = None

    async def dispatch(self, job: PendingJob) -> bool:
        job_id = job.job_id or uuid.uuid4().hex
        existing = self.running.get(job_id)
        if existing is not None and not existing.done():
            return False
        delay = 0.0
        if job.defer_until is not None:
            delay = max(0.0, (job.defer_until - dt.datetime.now(dt.UTC)).total_seconds())
        t = asyncio.create_task(self._run(job.name, job_id, job.kwargs, delay))
        self.running[job_id] = t
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        t.add_done_callback(lambda done: self._forget(job_id, done))
        return True

    def _forget(self, job_id: str, done: asyncio.Task[Any]) -> None:
        """A finished job leaves the registry (a long ``make run`` would otherwise keep every one)."""
        if self.running.get(job_id) is done:
            del self.running[job_id]

    async def _run(self, name: str, job_id: str, kwargs: dict[str, Any], delay: float) -> None:
        definition = TASKS[name]
        for attempt in range(1, definition.max_tries + 1):
            if delay:
                await asyncio.sleep(delay)
            ctx: JobContext = {**self.ctx, "job_id": job_id, "job_try": attempt}
            try:
                await asyncio.wait_for(
                    run_measured(name, definition.fn, ctx, kwargs), timeout=definition.timeout_seconds
                )
                return
            except RetryLater as retry:
                delay = retry.defer_seconds
                log.info("worker.job.retry", job=name, job_id=job_id, attempt=attempt, defer=delay)
            except Exception:
                log.exception("worker.job.failed", job=name, job_id=job_id, attempt=attempt)
                return
        log.warning("worker.job.gave_up", job=name, job_id=job_id)

    async def drain(self, max_seconds: float = 30.0) -> None:
        """Wait for every running job (tests and shutdown)."""
        deadline = asyncio.get_running_loop().time() + max_seconds
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await asyncio.wait(list(self._tasks), timeout=remaining)

    def start_cron(self) -> None:
        self._cron_task = asyncio.create_task(self._cron_loop())

    async def _cron_loop(self) -> None:
        for cron in CRONS.values():
            if cron.run_at_startup:
                await self.dispatch(PendingJob(cron.name, {}))
        last_minute: tuple[int, int] | None = None
        while True:
            now = dt.datetime.now(dt.UTC)
            key = (now.hour, now.minute)
            if key != last_minute:
                last_minute = key
                for cron in CRONS.values():
                    if (cron.minute is None or now.minute in cron.minute) and (
                        cron.hour is None or now.hour in cron.hour
                    ):
                        await self.dispatch(PendingJob(cron.name, {}, job_id=f"cron:{cron.name}:{key}"))
            await asyncio.sleep(60 - now.second + 0.05)

    async def aclose(self) -> None:
        if self._cron_task is not None:
            self._cron_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def register_crons_as_tasks() -> None:
    """Cron functions are also runnable as ordinary jobs (the in-process runner dispatches them by name)."""
    for cron in CRONS.values():
        TASKS.setdefault(cron.name, TaskDef(cron.name, cron.fn, 1, 1800))
