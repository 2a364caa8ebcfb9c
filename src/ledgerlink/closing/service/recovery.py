"""Closing jobs that lost their worker: every import and export ends in a final state.

A running import or export touches its row every :data:`HEARTBEAT_SECONDS` (a task beside the job).
One whose heartbeat stopped for :data:`STALE_SECONDS` lost its worker (``kill -9``, a lost machine): the
cron sweep puts it back to ``queued`` and sends its job again. An export's adjustments left ``sending``
by the dead worker become ``uncertain``, so the job sent again looks the voucher up by its marker before
any resend. In the embedded default (jobs in the API process) every unfinished job lost its worker with
the previous process: :func:`resume_unfinished_jobs` sends them all again at startup.

A job runs only once it has claimed its row (``queued`` -> ``running``, or a stale ``running``), so a
job delivered twice never runs twice at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.closing.repository import ClosingRepository, JobGone
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.logging import get_logger
from ledgerlink.models.closing import ClosingExport, ClosingImport
from ledgerlink.runtime import ServiceEnv
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 90.0
JOB_KINDS: tuple[tuple[Any, str, str], ...] = (
    (ClosingImport, "closing.import", "closing-import"),
    (ClosingExport, "closing.export", "closing-export"),
)


async def claim_job(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, company_id: uuid.UUID, job_id: uuid.UUID
) -> bool:
    """``queued`` (or a ``running`` one whose heartbeat stopped) -> ``running``; False when another
    worker runs it or it is finished."""
    now = utcnow()
    async with session_scope(sessionmaker) as session:
        return await ClosingRepository(session).claim_job(
            model, company_id, job_id, at=now, stale_before=now - dt.timedelta(seconds=STALE_SECONDS)
        )


@contextlib.asynccontextmanager
async def heartbeat(
    sessionmaker: async_sessionmaker[AsyncSession], model: Any, company_id: uuid.UUID, job_id: uuid.UUID
) -> AsyncIterator[None]:
    """Touch the job's row while the block runs (a missed beat is only logged: the next one counts)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with session_scope(sessionmaker) as session:
                    await ClosingRepository(session).touch_job(model, company_id, job_id, at=utcnow())
            except Exception as exc:  # a busy database: the job itself goes on
                log.info("closing.job.heartbeat_missed", job_id=str(job_id), error=type(exc).__name__)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


JobBody = Callable[[ServiceEnv, uuid.UUID, uuid.UUID], Awaitable[None]]


async def run_claimed(
    env: ServiceEnv, model: Any, company_id: uuid.UUID, job_id: uuid.UUID, body: JobBody
) -> None:
    """Run an import or export job's ``body`` once it has claimed the job's row, beating meanwhile;
    nothing when the job is finished, gone, or running in another worker."""
    sessionmaker = env.sessionmaker
    if not await claim_job(sessionmaker, model, company_id, job_id):
        return
    async with heartbeat(sessionmaker, model, company_id, job_id):
        with contextlib.suppress(JobGone):
            await body(env, company_id, job_id)


def claimed(model: Any, body: JobBody) -> JobBody:
    """The job that runs ``body`` for a ``model`` row (an import or an export) through :func:`run_claimed`."""

    async def run(env: ServiceEnv, company_id: uuid.UUID, job_id: uuid.UUID) -> None:
        await run_claimed(env, model, company_id, job_id, body)

    return run


async def _requeue(env: ServiceEnv, *, stale_before: dt.datetime | None) -> int:
    """Put unfinished jobs back to ``queued`` and send them again: those whose heartbeat is older than
    ``stale_before``, or every one when it is None."""
    at = utcnow()
    sent = 0
    async with session_scope(env.sessionmaker) as session:
        repo = ClosingRepository(session)
        for model, task, prefix in JOB_KINDS:
            for job in await repo.unfinished_jobs(model, stale_before=stale_before):
                if not await repo.requeue_job(model, job.company_id, job.id, job.modified_at, at=at):
                    continue  # its worker touched it meanwhile: alive
                if model is ClosingExport:  # the dead worker's claims: look before any resend
                    await repo.release_sending_claims(
                        job.company_id, job.id, claimed_before=stale_before or at, at=at
                    )
                job_id = f"{prefix}:{job.id}:resent:{int(at.timestamp())}"
                if model is ClosingExport:
                    enqueue(task, job_id=job_id, company_id=str(job.company_id), export_id=str(job.id))
                else:
                    enqueue(task, job_id=job_id, company_id=str(job.company_id), import_id=str(job.id))
                sent += 1
    if sent:
        log.info("closing.jobs.resent", jobs=sent, at_startup=stale_before is None)
    return sent


async def recover_stale_jobs(env: ServiceEnv) -> int:
    """The cron sweep: jobs whose worker stopped beating are sent again."""
    return await _requeue(env, stale_before=utcnow() - dt.timedelta(seconds=STALE_SECONDS))


async def resume_unfinished_jobs(env: ServiceEnv) -> int:
    """Embedded default only (jobs in this process), at startup: every unfinished import and export lost
    its job with the previous process. Never call this with other workers alive."""
    return await _requeue(env, stale_before=None)
