"""Jobs enqueued inside a unit of work are buffered and sent only after its commit.

``enqueue("sync.account", account_id=...)`` appends to the current buffer (a contextvar). This module
registers :func:`job_buffer` as a listener of every unit of work (:func:`ledgerlink.db.session.on_unit_of_work`:
the request session dependency and ``session_scope``), so each unit of work opens a buffer and, after
its commit, flushes it through the process's dispatcher: arq's Redis queue when Redis is configured, or
the in-process runner of the embedded default. A rollback discards the buffer. (Whoever can call
:func:`enqueue` has imported this module, so the listener is registered before the first job.)
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledgerlink.db.session import on_unit_of_work


@dataclass(frozen=True)
class PendingJob:
    name: str
    kwargs: dict[str, Any]
    job_id: str | None = None
    defer_until: dt.datetime | None = None


class Dispatcher(Protocol):
    async def dispatch(self, job: PendingJob) -> bool:
        """Send the job; False when a job with the same id is already queued or running."""
        ...


@dataclass
class JobBuffer:
    jobs: list[PendingJob] = field(default_factory=list)

    def discard(self) -> None:
        self.jobs.clear()

    async def flush(self) -> None:
        jobs, self.jobs = self.jobs, []
        if not jobs:
            return
        dispatcher = get_dispatcher()
        for job in jobs:
            await dispatcher.dispatch(job)

    async def after_commit(self) -> None:
        await self.flush()

    def after_rollback(self) -> None:
        self.discard()


_buffer: contextvars.ContextVar[JobBuffer | None] = contextvars.ContextVar(
    "ledgerlink_job_buffer", default=None
)
_dispatcher: Dispatcher | None = None


def set_dispatcher(dispatcher: Dispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher


def get_dispatcher() -> Dispatcher:
    if _dispatcher is None:
        raise RuntimeError("no job dispatcher configured (the app or worker sets one at startup)")
    return _dispatcher


@asynccontextmanager
async def job_buffer() -> AsyncIterator[JobBuffer]:
    """Open a buffer for this unit of work (nested units share the outer buffer)."""
    outer = _buffer.get()
    if outer is not None:
        yield outer
        return
    buf = JobBuffer()
    token = _buffer.set(buf)
    try:
        yield buf
    finally:
        _buffer.reset(token)


on_unit_of_work(job_buffer)


def enqueue(
    name: str, *, job_id: str | None = None, defer_until: dt.datetime | None = None, **kwargs: Any
) -> None:
    """Buffer a job (arguments must be JSON-safe primitives: ids, not objects)."""
    buf = _buffer.get()
    if buf is None:
        raise RuntimeError(f"enqueue({name!r}) outside a unit of work")
    buf.jobs.append(PendingJob(name=name, kwargs=kwargs, job_id=job_id, defer_until=defer_until))


async def send_now(
    name: str, *, job_id: str | None = None, defer_until: dt.datetime | None = None, **kwargs: Any
) -> bool:
    """Send a job immediately (for cron fan-outs that have already committed)."""
    return await get_dispatcher().dispatch(PendingJob(name, kwargs, job_id, defer_until))
