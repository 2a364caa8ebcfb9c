"""Sync jobs: ``sync.account`` (one run of one account), the nightly fan-out ``sync.schedule_due`` and
the consent lifecycle cron ``sync.consents_due``."""

from __future__ import annotations

import uuid

from ledgerlink.sync.service.cron import schedule_due_accounts, sweep_consents
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.sync.service.lock import release_lock, take_lock
from ledgerlink.worker.jobs import JobContext, RetryLater, cron_task, service_env, task

LOCK_BUSY_RETRY_SECONDS = 20.0


@task("sync.account", max_tries=50, timeout_seconds=1800)
async def sync_account(ctx: JobContext, run_id: str, psu_ip_address: str | None = None) -> str:
    """Run one sync under the account's lock; RetryLater for backoff, rate limits and a busy lock."""
    rid = uuid.UUID(run_id)
    env = service_env(ctx)
    lock = await take_lock(env, rid)
    if lock is None:
        return "done"
    if lock.token is None:
        raise RetryLater(LOCK_BUSY_RETRY_SECONDS)
    try:
        outcome = await execute_run(env, rid, psu_ip_address=psu_ip_address)
    finally:
        await release_lock(env, lock)
    if outcome.retry_in is not None:
        raise RetryLater(outcome.retry_in)
    return outcome.status


@cron_task("sync.schedule_due", minute={0, 10, 20, 30, 40, 50})
async def schedule_due(ctx: JobContext) -> int:
    """The nightly fan-out (every 10 minutes): due, entitled accounts get a scheduled run."""
    return await schedule_due_accounts(service_env(ctx))


@cron_task("sync.consents_due", minute={5}, hour=None)
async def consents_due(ctx: JobContext) -> int:
    """Consent lifecycle: ``consent_expiring`` to-dos and events from 7 days ahead."""
    return await sweep_consents(service_env(ctx))
