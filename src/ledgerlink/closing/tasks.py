"""The closing feature's jobs: imports and exports (thin wrappers over the service), and the sweep that
sends again the jobs whose worker died."""

from __future__ import annotations

import uuid

from ledgerlink.closing.service import run_export, run_import
from ledgerlink.closing.service.recovery import recover_stale_jobs
from ledgerlink.worker.jobs import JobContext, cron_task, service_env, task


@task("closing.import", max_tries=3, timeout_seconds=3600)
async def import_closing(ctx: JobContext, *, company_id: str, import_id: str) -> None:
    await run_import(service_env(ctx), uuid.UUID(company_id), uuid.UUID(import_id))


@task("closing.export", max_tries=3, timeout_seconds=3600)
async def export_closing(ctx: JobContext, *, company_id: str, export_id: str) -> None:
    await run_export(service_env(ctx), uuid.UUID(company_id), uuid.UUID(export_id))


@cron_task("closing.recover_stale", minute=set(range(0, 60, 2)), run_at_startup=True)
async def recover_stale_closing_jobs(ctx: JobContext) -> None:
    """Workers (arq) only: with jobs in the API process, that process resumes them at startup, and a
    long SQLite import would only make the sweep wait for the database."""
    if ctx.get("redis") is None:
        return
    await recover_stale_jobs(service_env(ctx))
