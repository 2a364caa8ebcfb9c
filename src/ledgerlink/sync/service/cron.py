"""The cron passes: the nightly fan-out (with stale-run recovery) and the consent lifecycle.

Fan-out: every 10 minutes, due accounts (``next_sync_at`` passed; each account's slot is spread over
the night window by :func:`next_night_slot`) get a scheduled run. Per-bank concurrency is arq job
deferral: within a pass the i-th account of a bank starts ``(i // per_bank_concurrency) * SLOT``
seconds later, and a pass takes at most ``per_bank_concurrency * SLOTS_PER_PASS`` accounts per bank
(the rest stay due for the next pass). Accounts of companies without the entitlement are paused with
an ``upgrade_required`` to-do; when it returns they resume.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence

from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.banks.service import mark_reauth_required
from ledgerlink.clock import today_stockholm
from ledgerlink.companies.service import bank_import_entitlement, company
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import AccountStatus, ConnectionStatus, SyncStatus, SyncTrigger
from ledgerlink.models.inbox import TodoType
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.errors import SyncInProgress
from ledgerlink.sync.repository import LifecycleRepository, SyncRunRepository, UnattendedReadRepository
from ledgerlink.sync.service.common import next_night_slot, schedule_sync
from ledgerlink.sync.service.engine import pause_for_plan
from ledgerlink.sync.service.failures import CONSENT_EXPIRED
from ledgerlink.sync.service.lock import lock_backend
from ledgerlink.worker.enqueue import enqueue

log = get_logger(__name__)
SLOT_SECONDS = 30
SLOTS_PER_PASS = 20
CONSENT_EVENT = "bank_connection.consent_expiring"


async def recover_stale_runs(ctx: ServiceEnv) -> int:
    """A run left ``running`` by a dead worker (lock gone, untouched for a lock TTL) fails as
    ``worker_lost`` and its account becomes due again; a queued run whose job was lost is re-sent."""
    settings = ctx.settings
    at = ctx.clock()
    ttl = dt.timedelta(seconds=settings.sync.lock_ttl_seconds)
    locks = lock_backend(ctx)
    recovered = 0
    async with session_scope(ctx.sessionmaker) as session:
        runs = await SyncRunRepository(session).stale_runs(at - ttl, at - ttl)
        accounts = BankAccountRepository(session)
        for run in runs:
            if await locks.held_by_live_run(run.account_id):
                continue  # a live run keeps its lock: it is slow, not lost
            if run.status == SyncStatus.running:
                run.status, run.finished_at = SyncStatus.failed, at
                run.error_code, run.error_retryable = "worker_lost", True
                run.error_message = "The sync was interrupted; it runs again at the next scheduling pass."
                account = await accounts.get(run.account_id)
                if account is not None and account.status == AccountStatus.active:
                    account.next_sync_at = at
            else:
                run.next_attempt_at = at
                enqueue(
                    "sync.account",
                    job_id=f"sync.account:{run.id}:resent:{int(at.timestamp())}",
                    run_id=str(run.id),
                )
            recovered += 1
    return recovered


async def resend_unfinished_runs(ctx: ServiceEnv) -> int:
    """Embedded default only (jobs in this process): at startup every unfinished run lost its job with
    the previous process, so each is sent again (a deferred one at its time); a ``running`` one is simply
    claimed again. Never call this with other workers alive: they may be running those runs."""
    at = ctx.clock()
    async with session_scope(ctx.sessionmaker) as session:
        runs = await SyncRunRepository(session).unfinished_runs()
        for run in runs:
            due = run.next_attempt_at
            enqueue(
                "sync.account",
                job_id=f"sync.account:{run.id}:restart:{int(at.timestamp())}",
                defer_until=due if due is not None and due > at else None,
                run_id=str(run.id),
            )
    if runs:
        log.info("sync.runs.resent_at_startup", runs=len(runs))
    return len(runs)


async def forget_psu_addresses(ctx: ServiceEnv) -> int:
    """Runs that ended no longer keep the user's address (personal data, needed only to call the bank)."""
    async with session_scope(ctx.sessionmaker) as session:
        return await SyncRunRepository(session).forget_psu_addresses()


async def schedule_due_accounts(ctx: ServiceEnv) -> int:
    settings = ctx.settings
    await recover_stale_runs(ctx)
    await forget_psu_addresses(ctx)
    at = ctx.clock()
    today = today_stockholm(at)
    conc = max(1, settings.sync.per_bank_concurrency)
    per_bank: dict[str, int] = defaultdict(int)
    scheduled = 0
    async with session_scope(ctx.sessionmaker) as session:
        due = await BankAccountRepository(session).due_accounts(at, limit=5000)
        entitled: dict[uuid.UUID, bool] = {}
        todos = TodoRepository(session)
        for account in due:
            if account.company_id not in entitled:
                plan = await company.plan_of(session, account.company_id)
                entitled[account.company_id] = bank_import_entitlement(plan, settings, today=today).enabled
            if not entitled[account.company_id]:
                await pause_for_plan(session, account, at, settings.sync)
                continue
            if account.status == AccountStatus.paused:
                account.status = AccountStatus.active
                await todos.resolve(account.company_id, TodoType.upgrade_required)
            index = per_bank[account.bank_id]
            if index >= conc * SLOTS_PER_PASS:
                continue
            per_bank[account.bank_id] = index + 1
            slot = index // conc
            # the spread paces real calls to the bank: an arq (wall-clock) instant, not service time
            defer = utcnow() + dt.timedelta(seconds=slot * SLOT_SECONDS) if slot else None
            account.next_sync_at = next_night_slot(account.id, settings.sync, at)
            try:
                await schedule_sync(
                    session,
                    account,
                    trigger=SyncTrigger.scheduled,
                    user_present=False,
                    defer_until=defer,
                    clock=ctx.clock,
                )
            except SyncInProgress:
                continue  # a "sync now" got there first; that run covers tonight
            scheduled += 1
        await UnattendedReadRepository(session).prune(at - dt.timedelta(days=2))
    log.info("sync.schedule_due", scheduled=scheduled, due=len(due))
    return scheduled


def reminder_due(expires_at: dt.datetime, at: dt.datetime, days: Sequence[int]) -> int | None:
    """The reminder threshold (days before the end) that ``at`` has reached for a consent ending at
    ``expires_at``: the smallest of ``days`` with at most that many days left (None before the first)."""
    left = expires_at - at
    reached = [d for d in days if left <= dt.timedelta(days=d)]
    return min(reached) if reached else None


async def sweep_consents(ctx: ServiceEnv) -> int:
    """Consent reminders and expiry (hourly).

    A consent reaching a threshold of ``settings.sync.consent_reminder_days`` (14 and 3 days before
    its end by default) raises the ``consent_expiring`` to-do (refreshed, with ``expires_at`` and
    ``days_before``) and the ``bank_connection.consent_expiring`` event, once per threshold and consent:
    the connection keeps the threshold it was last reminded of (``consent_reminded_days``), and a new
    consent (a re-authorization) clears it. A sweep that first sees a consent past several thresholds
    reminds once, of the nearest. A consent past its end flips the connection to ``reauth_required``
    (code ``consent_expired``); to-dos of connections that were re-authorised are resolved."""
    settings = ctx.settings
    at = ctx.clock()
    days = settings.sync.consent_reminder_days
    horizon = at + settings.sync.consent_reminder_horizon
    touched = 0
    async with session_scope(ctx.sessionmaker) as session:
        repo = LifecycleRepository(session)
        todos = TodoRepository(session)
        expiring = await repo.expiring_connections(horizon)
        for connection in expiring:
            expires_at = connection.consent_expires_at
            assert expires_at is not None
            if expires_at <= at:
                await todos.resolve(connection.company_id, TodoType.consent_expiring, str(connection.id))
                await mark_reauth_required(
                    session, connection, reason="The bank consent has expired.", code=CONSENT_EXPIRED, at=at
                )
                touched += 1
                continue
            due = reminder_due(expires_at, at, days)
            reminded = connection.consent_reminded_days
            if due is None or (reminded is not None and reminded <= due):
                continue
            connection.consent_reminded_days = due
            data = {
                "connection_id": str(connection.id),
                "bank_id": connection.bank_id,
                "expires_at": expires_at.isoformat(),
                "days_before": due,
            }
            await todos.upsert_open(
                connection.company_id, TodoType.consent_expiring, str(connection.id), data, at=at
            )
            await emit(session, connection.company_id, CONSENT_EVENT, data, at=at)
            touched += 1
        for todo in await todos.open_of_type(TodoType.consent_expiring):
            linked = await repo.connection(uuid.UUID(todo.subject_key)) if todo.subject_key else None
            if (
                linked is None
                or linked.status != ConnectionStatus.active
                or linked.consent_expires_at is None
                or linked.consent_expires_at > horizon
            ):
                await todos.resolve(todo.company_id, TodoType.consent_expiring, todo.subject_key, at=at)
    return touched
