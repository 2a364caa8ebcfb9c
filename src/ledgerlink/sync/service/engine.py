"""One sync run of one account, under the account's lock.

Phases, each its own short transaction (no transaction is held open across a bank call):

1. claim: lock the run and account rows, check the account/connection state and the entitlement, plan
   the window, mark the run ``running``;
2. budget: without the user present, count the account's unattended reads of the endpoint in the last
   24 h (and since Stockholm midnight) before reading, and record the read when reading; at the limit
   the run is ``deferred`` to when a read frees up. All under the account lock, so never exceeded;
3. fetch through the adapter (``PeriodTooLong`` shrinks the window to what the bank allows, once);
4. write (:func:`write_transactions`: idempotent batches, then pending replacement);
5. finish: counts, watermark (only now, after success), balance, next night, events, to-dos.

Errors: every adapter error ends the run as :data:`.failures.FAILURES` says (its one mapping from the
adapter error family to the run's error code and what happens next: a new login, a deferral to the bank's
``retry_at``, backoff retries, a paused account or a failed run with a ``sync_failed`` to-do).
The engine knows only the adapter contract's error family (``banks.adapters.base``), never a bank
family's own errors. The account lock and its backends are in :mod:`.lock`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink import metrics
from ledgerlink.banks.adapters.base import (
    AdapterError,
    Balance,
    BankAdapter,
    BankTransaction,
    Credentials,
    PeriodTooLong,
)
from ledgerlink.banks.repository import BankAccountRepository, BankConnectionRepository
from ledgerlink.banks.service import (
    build_adapter,
    connection_context,
    load_credentials,
    store_credentials,
)
from ledgerlink.clock import today_stockholm
from ledgerlink.companies.service import bank_import_entitlement, company
from ledgerlink.config import Settings, SyncSettings
from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit
from ledgerlink.inbox.repository import TodoRepository, TransactionRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    ConnectionStatus,
    SyncStatus,
    SyncTrigger,
)
from ledgerlink.models.inbox import TodoType
from ledgerlink.runtime import ServiceEnv
from ledgerlink.statements.service import record_bank_balance
from ledgerlink.sync.repository import SyncRunRepository, UnattendedReadRepository
from ledgerlink.sync.service.allowance import allowance_window_start
from ledgerlink.sync.service.common import (
    WriteResult,
    next_night_slot,
    plan_window,
    unattended_floor,
    write_transactions,
)
from ledgerlink.sync.service.failures import defer, end_run, give_up
from ledgerlink.sync.service.run import ClaimedRun, Deferred, Outcome, record_error, run_and_account

log = get_logger(__name__)


# --------------------------------------------------------------------------- the run


async def execute_run(ctx: ServiceEnv, run_id: uuid.UUID, *, psu_ip_address: str | None = None) -> Outcome:
    settings = ctx.settings
    plan_or_outcome = await _claim(ctx, run_id, psu_ip_address)
    if isinstance(plan_or_outcome, Outcome):
        return plan_or_outcome
    plan = plan_or_outcome
    outcome = await _read_and_write(ctx, plan, settings)
    if outcome.status != "done":
        metrics.sync_run_finished(plan.bank_id, _OUTCOME_LABELS.get(outcome.status, outcome.status))
    return outcome


#: :class:`Outcome` status → the ``outcome`` label of ``ledgerlink_sync_runs`` ("queued": backing off).
_OUTCOME_LABELS = {"queued": "retrying"}


async def _read_and_write(ctx: ServiceEnv, plan: ClaimedRun, settings: Settings) -> Outcome:
    run_id = plan.run_id
    try:
        transactions, window = await _fetch(ctx, plan)
        result = await write_transactions(
            ctx.sessionmaker,
            plan.company_id,
            plan.account_id,
            transactions,
            window=window,
            seen_at=ctx.clock(),
        )
        balance = await _balance(ctx, plan)
    except Deferred as deferred:
        message = (
            "The bank's daily allowance of unattended reads is used up; the sync continues when it frees up."
        )
        return await defer(ctx, plan, "allowance_spent", message, deferred.at)
    except AdapterError as exc:
        return await end_run(ctx, plan, exc)
    except Exception:
        log.exception("sync.run.crashed", run_id=str(run_id), account_id=str(plan.account_id))
        message = "The sync failed unexpectedly; we will try again tonight."
        return await give_up(ctx, plan, "internal_error", message, retryable=True)
    return await _succeed(ctx, plan, result, window, balance, settings)


async def _claim(ctx: ServiceEnv, run_id: uuid.UUID, psu_ip_address: str | None) -> ClaimedRun | Outcome:
    settings = ctx.settings
    at = ctx.clock()
    today = today_stockholm(at)
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(run_id)
        if run is None or run.status not in (SyncStatus.queued, SyncStatus.running, SyncStatus.deferred):
            return Outcome("done")
        account = await BankAccountRepository(session).get_for_update(run.account_id)
        connection = (
            await BankConnectionRepository(session).get_scoped(account.company_id, account.connection_id)
            if account
            else None
        )
        if account is None or connection is None:
            return Outcome("done")
        if account.status not in (AccountStatus.active, AccountStatus.pending_confirmation) or (
            connection.status != ConnectionStatus.active
        ):
            run.status, run.finished_at = SyncStatus.failed, at
            metrics.sync_run_finished(account.bank_id, "failed")
            record_error(
                run, "account_not_active", f"The account is {account.status.value}.", retryable=False
            )
            return Outcome("failed")
        entitlement = bank_import_entitlement(
            await company.plan_of(session, account.company_id), settings, today=today
        )
        if not entitlement.enabled and not run.user_present:
            await pause_for_plan(session, account, at, settings.sync)
            run.status, run.finished_at = SyncStatus.failed, at
            metrics.sync_run_finished(account.bank_id, "failed")
            record_error(
                run, "upgrade_required", "Automatic bank import needs the Business plan.", retryable=False
            )
            return Outcome("failed")
        window = plan_window(account, run, today, settings.sync.overlap_days)
        run.status, run.window_from, run.window_to = SyncStatus.running, window[0], window[1]
        run.started_at = run.started_at or at
        run.attempts += 1
        run.next_attempt_at = None
        run.modified_at = at
        # The user's address as the request that queued the run saw it (a job queued by an older version
        # passes it along instead); none for an unattended run, and none invented when it is unknown.
        ip = (run.psu_ip_address or psu_ip_address) if run.user_present else None
        return ClaimedRun(
            run_id=run.id,
            company_id=account.company_id,
            account_id=account.id,
            connection_id=connection.id,
            bank_id=account.bank_id,
            external_id=account.external_id,
            user_present=run.user_present,
            trigger=run.trigger,
            attempts=run.attempts,
            window=window,
            credentials=load_credentials(settings, connection),
            context=connection_context(settings, connection, psu_ip_address=ip),
        )


async def pause_for_plan(
    session: AsyncSession, account: BankAccount, at: dt.datetime, sync_settings: SyncSettings
) -> None:
    """No entitlement: the account pauses (nothing is deleted) and the company gets the to-do."""
    account.status = AccountStatus.paused
    account.last_sync_status = SyncStatus.failed
    account.next_sync_at = next_night_slot(account.id, sync_settings, at)
    await TodoRepository(session).upsert_open(
        account.company_id, TodoType.upgrade_required, "", {"reason": "upgrade_required"}
    )


async def spend_read(ctx: ServiceEnv, plan: ClaimedRun, endpoint: str, *, defer: bool = True) -> bool:
    """Spend one unattended read of ``endpoint``. At the limit: raise :class:`Deferred` (or return False
    when ``defer`` is off).

    A read is free only when it carries the user's address (``PSU-IP-Address``): that header is what makes
    the bank count it as attended. A user-present run whose address is unknown (a job queued without it)
    reads unattended in the bank's eyes, so it spends the allowance like a nightly run."""
    if plan.context.user_present:
        return True
    settings = ctx.settings
    at = ctx.clock()
    since = allowance_window_start(at)
    async with session_scope(ctx.sessionmaker) as session:
        reads = UnattendedReadRepository(session)
        limit = settings.sync.unattended_reads_per_day
        if await reads.record_if_below(plan.account_id, endpoint, at, since, limit):
            return True  # counted and recorded in one statement
        metrics.UNATTENDED_REFUSED.labels(plan.bank_id, endpoint).inc()
        if not defer:
            return False
        oldest = await reads.oldest_since(plan.account_id, endpoint, since) or at
        raise Deferred(max(at, oldest) + dt.timedelta(hours=24, minutes=1))


async def _fetch(
    ctx: ServiceEnv, plan: ClaimedRun
) -> tuple[Sequence[BankTransaction], tuple[dt.date, dt.date]]:
    settings = ctx.settings
    adapter = build_adapter(settings, plan.bank_id, ctx.transports, ctx.kept_alive)
    window = plan.window
    try:
        credentials = await _fresh_credentials(ctx, plan, adapter)
        await spend_read(ctx, plan, "transactions")
        try:
            transactions = await adapter.fetch_transactions(
                plan.context, credentials, plan.external_id, *window
            )
        except PeriodTooLong as exc:
            floor = unattended_floor(today_stockholm(ctx.clock()), exc.max_days)
            if window[0] >= floor:
                raise
            window = (floor, window[1])
            await _record_window(ctx, plan, window)
            await spend_read(ctx, plan, "transactions")
            transactions = await adapter.fetch_transactions(
                plan.context, credentials, plan.external_id, *window
            )
    finally:
        await adapter.aclose()
    return transactions, window


#: Refresh OAuth tokens that expire within this margin before reading.
TOKEN_REFRESH_MARGIN = dt.timedelta(minutes=2)


def _token_expiring(credentials: Credentials, at: dt.datetime) -> bool:
    expires = credentials.token_expires_at
    if expires is None:
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return expires <= at + TOKEN_REFRESH_MARGIN


async def _fresh_credentials(ctx: ServiceEnv, plan: ClaimedRun, adapter: BankAdapter) -> Credentials:
    """The plan's credentials, refreshed first when the access token is near or past its expiry.

    The refresh and :func:`store_credentials` are one unit of work under the connection's row lock:
    refresh tokens are often single-use, so two runs on accounts of one connection must not both spend
    the same one (the second re-reads the rotated tokens and uses them). This is the one bank call made
    inside a transaction, and it is a single short token request. ``ReauthRequired`` (the bank refused
    the refresh token) rolls back and flips the connection like any consent error."""
    at = ctx.clock()
    if not _token_expiring(plan.credentials, at):
        return plan.credentials
    settings = ctx.settings
    async with session_scope(ctx.sessionmaker) as session:
        connection = await BankConnectionRepository(session).get_for_update(
            plan.company_id, plan.connection_id
        )
        if connection is None:
            return plan.credentials
        current = load_credentials(settings, connection)
        if _token_expiring(current, at):
            current = await adapter.refresh_credentials(plan.context, current)
            store_credentials(settings, connection, current)
            log.info("sync.credentials.refreshed", connection_id=str(connection.id), bank_id=plan.bank_id)
    plan.credentials = current  # the balance read after the fetch uses them too
    return current


async def _record_window(ctx: ServiceEnv, plan: ClaimedRun, window: tuple[dt.date, dt.date]) -> None:
    async with session_scope(ctx.sessionmaker) as session:
        await SyncRunRepository(session).record_window(plan.run_id, window)


async def _balance(ctx: ServiceEnv, plan: ClaimedRun) -> Balance | None:
    """The balance after a successful fetch, only within the allowance when unattended; best effort."""
    if not await spend_read(ctx, plan, "balances", defer=False):
        return None
    adapter = build_adapter(ctx.settings, plan.bank_id, ctx.transports, ctx.kept_alive)
    try:
        return await adapter.fetch_balance(plan.context, plan.credentials, plan.external_id)
    except AdapterError as exc:
        log.info("sync.balance.skipped", account_id=str(plan.account_id), error=type(exc).__name__)
        return None
    finally:
        await adapter.aclose()


# --------------------------------------------------------------------------- success


async def _succeed(
    ctx: ServiceEnv,
    plan: ClaimedRun,
    result: WriteResult,
    window: tuple[dt.date, dt.date],
    balance: Balance | None,
    settings: Settings,
) -> Outcome:
    at = ctx.clock()
    async with run_and_account(ctx, plan) as locked:
        if locked is None:
            return Outcome("done")
        session, run, account = locked
        run.status, run.finished_at, run.next_attempt_at = SyncStatus.succeeded, at, None
        run.window_from, run.window_to = window
        run.fetched, run.inserted = result.fetched, result.inserted
        run.updated, run.removed = result.updated, result.removed
        run.error_code = run.error_message = None
        run.error_retryable = None
        run.modified_at = at
        account.last_synced_at = at
        account.last_sync_status = SyncStatus.succeeded
        account.set_last_error(None)
        account.next_sync_at = next_night_slot(account.id, settings.sync, at)
        if result.newest_booked is not None and (
            account.booked_watermark is None or result.newest_booked > account.booked_watermark
        ):
            account.booked_watermark = result.newest_booked
        if plan.trigger == SyncTrigger.backfill:
            account.backfill_from = None
        if balance is not None:
            account.balance_amount = balance.amount
            account.balance_currency = balance.currency
            account.balance_as_of = balance.as_of or today_stockholm(at)
            await record_bank_balance(  # the balance check (statements feature)
                session,
                account,
                amount=balance.amount,
                currency=balance.currency,
                as_of=account.balance_as_of,
                at=at,
                writes_from=(
                    account.booked_watermark - dt.timedelta(days=settings.sync.overlap_days)
                    if account.booked_watermark is not None
                    else None
                ),
            )
        await TodoRepository(session).resolve(account.company_id, TodoType.sync_failed, str(account.id))
        unbooked = await TransactionRepository(session).unbooked_count(account.id)
        payload = {
            "bank_account_id": str(account.id),
            "sync_run_id": str(run.id),
            "trigger": run.trigger.value,
            "window_from": window[0].isoformat(),
            "window_to": window[1].isoformat(),
            "counts": {
                "fetched": result.fetched,
                "inserted": result.inserted,
                "updated": result.updated,
                "removed": result.removed,
            },
            "unbooked_count": unbooked,
        }
        await emit(session, account.company_id, "bank_account.synced", payload, at=at)
        if result.inserted:
            await emit(
                session,
                account.company_id,
                "transactions.available",
                {
                    "bank_account_id": str(account.id),
                    "sync_run_id": str(run.id),
                    "new": result.inserted,
                    "unbooked_count": unbooked,
                },
                at=at,
            )
    metrics.rows_ingested(plan.bank_id, inserted=result.inserted, updated=result.updated)
    log.info("sync.run.succeeded", run_id=str(plan.run_id), fetched=result.fetched, inserted=result.inserted)
    return Outcome("succeeded")
