"""Statements jobs: the daily ``sync_stalled`` sweep."""

from __future__ import annotations

from ledgerlink.statements.service import sweep_stalled
from ledgerlink.worker.jobs import JobContext, cron_task, service_env


@cron_task("statements.stalled_due", minute={25}, hour={7})
async def stalled_due(ctx: JobContext) -> int:
    """Once a day: ``sync_stalled`` for accounts quiet for longer than they have ever been."""
    return await sweep_stalled(service_env(ctx))
