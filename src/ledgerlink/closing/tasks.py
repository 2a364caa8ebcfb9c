"""The closing feature's jobs: imports and exports (thin wrappers over the service)."""

from __future__ import annotations

import uuid

from ledgerlink.closing.service import run_export, run_import
from ledgerlink.worker.jobs import JobContext, service_env, task


@task("closing.import", max_tries=3, timeout_seconds=3600)
async def import_closing(ctx: JobContext, *, company_id: str, import_id: str) -> None:
    await run_import(service_env(ctx), uuid.UUID(company_id), uuid.UUID(import_id))


@task("closing.export", max_tries=3, timeout_seconds=3600)
async def export_closing(ctx: JobContext, *, company_id: str, export_id: str) -> None:
    await run_export(service_env(ctx), uuid.UUID(company_id), uuid.UUID(export_id))
