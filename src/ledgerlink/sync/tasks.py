"""Sync jobs: ``sync.account`` (one run of one account), the nightly fan-out ``sync.schedule_due`` and
the consent lifecycle cron ``sync.consents_due``."""

from __future__ import annotations

import uuid

from ledgerlink.db.idle_ping import is_lost_connection
from ledgerlink.logging import get_logger
from ledgerlink.sync.service.cron import schedule_due_accounts, sweep_consents
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.sync.service.lock import release_lock, take_lock
from ledgerlink.worker.jobs import JobContext, RetryLater, cron_task, service_env, task

LOCK_BUSY_RETRY_SECONDS = 20.0
LOST_CONNECTION_RETRY_SECONDS = 5.0

log = get_logger(__name__)


@task("sync.account", max_tries=50, timeout_seconds=1800)
async def sync_account(ctx: JobContext, run_id: str, psu_ip_address: str | None = None) -> str:
    """Run one sync under the account's lock; RetryLater for backoff, rate limits and a busy lock.
    (``psu_ip_address``: only jobs queued before the run kept the user's address pass it.)"""
    rid = uuid.UUID(run_id)
    env = service_env(ctx)
    try:
        lock = await take_lock(env, rid)
        if lock is None:
            return "done"
        if lock.token is None:
            raise RetryLater(LOCK_BUSY_RETRY_SECONDS)
        try:
            outcome = await execute_run(env, rid, psu_ip_address=psu_ip_address)
        finally:
            await release_lock(env, lock)
    except Exception as exc:
        if is_lost_connection(exc):  # the database connection broke under a statement: run again
            log.warning("sync.account.connection_lost", run_id=run_id, error=type(exc).__name__)
            raise RetryLater(LOST_CONNECTION_RETRY_SECONDS) from exc
        raise
    if outcome.retry_in is not None:
        raise RetryLater(outcome.retry_in)
    return outcome.status


@cron_task("sync.schedule_due", minute={0, 10, 20, 30, 40, 50})
async def schedule_due(ctx: JobContext) -> int:
    """The nightly fan-out (every 10 minutes): due, entitled accounts get a scheduled run."""
    return await schedule_due_accounts(service_env(ctx))


@cron_task("sync.consents_due", minute={5}, hour=None)
async def consents_due(ctx: JobContext) -> int:
    """Consent lifecycle: ``consent_expiring`` reminders (14 and 3 days ahead by default), expiry."""
    return await sweep_consents(service_env(ctx))
