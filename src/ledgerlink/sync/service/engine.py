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

Errors: ``ReauthRequired``/``ConsentExpired`` → :func:`mark_reauth_required`; ``RateLimited`` → run
``deferred`` until ``retry_at``; ``TemporaryFailure``/``BankUnavailable`` → retried with jittered
exponential backoff up to ``settings.sync.max_attempts``, then failed with a ``sync_failed`` to-do;
``AccountVanished`` (the account vanished at the bank) → run failed, account ``paused`` without a next
sync and a ``sync_failed`` to-do naming it; any other ``InvalidResponse`` → failed, not retried.
The engine knows only the adapter contract's error family (``banks.adapters.base``), never a bank
family's own errors. The account lock and its backends are in :mod:`.lock`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink import metrics
from ledgerlink.banks.adapters.base import (
    STOCKHOLM,
    AccountVanished,
    AdapterError,
    Balance,
    BankAdapter,
    BankTransaction,
    BankUnavailable,
    ConnectionContext,
    Credentials,
    InvalidResponse,
    PeriodTooLong,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
)
from ledgerlink.banks.repository import BankAccountRepository, BankConnectionRepository
from ledgerlink.banks.service import (
    build_adapter,
    connection_context,
    load_credentials,
    mark_reauth_required,
    store_credentials,
)
from ledgerlink.clock import today_stockholm
from ledgerlink.companies.service import bank_import_entitlement, company
from ledgerlink.config import Settings, SyncSettings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit
from ledgerlink.inbox.repository import TodoRepository, TransactionRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from ledgerlink.models.inbox import TodoType
from ledgerlink.runtime import ServiceEnv
from ledgerlink.statements.service import record_bank_balance
from ledgerlink.sync.repository import SyncRunRepository, UnattendedReadRepository
from ledgerlink.sync.service.common import (
    WriteResult,
    next_night_slot,
    plan_window,
    unattended_floor,
    write_transactions,
)
from ledgerlink.worker.backoff import compute_backoff

log = get_logger(__name__)

#: Sent as PSU-IP-Address for a user-present run whose request IP was not passed along.
USER_PRESENT_FALLBACK_IP = "127.0.0.1"


def service_instant(ctx: ServiceEnv, wall: dt.datetime) -> dt.datetime:
    """An adapter's instant (``RateLimited.retry_at``: the wall clock plus the bank's Retry-After) on the
    service clock: the same delay from ``ctx.clock()``. Identical under the wall clock; under an injected
    clock (simulated nights) the run is deferred by the bank's delay instead of to a wall-clock instant
    the simulation never reaches (nor one it passed long ago)."""
    return ctx.clock() + max(wall - utcnow(), dt.timedelta(0))


# --------------------------------------------------------------------------- the run


@dataclass
class Outcome:
    status: str
    retry_in: float | None = None


@dataclass
class ClaimedRun:
    """A run claimed for reading: its account and connection, window and credentials (the run's plan)."""

    run_id: uuid.UUID
    company_id: uuid.UUID
    account_id: uuid.UUID
    connection_id: uuid.UUID
    bank_id: str
    external_id: str
    user_present: bool
    trigger: SyncTrigger
    attempts: int
    window: tuple[dt.date, dt.date]
    credentials: Credentials
    context: ConnectionContext


class Deferred(Exception):
    """The allowance is spent: try again at ``at``."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at.isoformat())
        self.at = at


def _error(run: SyncRun, code: str, message: str, *, retryable: bool) -> None:
    run.error_code, run.error_message, run.error_retryable = code, message[:1000], retryable


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
        return await _defer(ctx, plan, "allowance_spent", message, deferred.at)
    except RateLimited as exc:
        retry_at = service_instant(ctx, exc.retry_at)
        message = f"The bank asked us to wait until {retry_at.isoformat()}."
        return await _defer(ctx, plan, "rate_limited", message, retry_at)
    except ReauthRequired as exc:
        return await _needs_login(ctx, plan, exc.message)
    except AccountVanished:
        return await _account_vanished(ctx, plan)
    except (TemporaryFailure, BankUnavailable) as exc:
        code = "bank_unavailable" if isinstance(exc, BankUnavailable) else "temporary_failure"
        return await _retry_with_backoff(ctx, plan, code, "The bank could not be reached.")
    except InvalidResponse as exc:
        message = f"The bank sent data we could not read ({exc.message})."
        return await _give_up(ctx, plan, "invalid_response", message, retryable=False)
    except AdapterError as exc:
        return await _give_up(ctx, plan, "bank_error", exc.message, retryable=False)
    except Exception:
        log.exception("sync.run.crashed", run_id=str(run_id), account_id=str(plan.account_id))
        message = "The sync failed unexpectedly; we will try again tonight."
        return await _give_up(ctx, plan, "internal_error", message, retryable=True)
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
            _error(run, "account_not_active", f"The account is {account.status.value}.", retryable=False)
            return Outcome("failed")
        entitlement = bank_import_entitlement(
            await company.plan_of(session, account.company_id), settings, today=today
        )
        if not entitlement.enabled and not run.user_present:
            await pause_for_plan(session, account, at, settings.sync)
            run.status, run.finished_at = SyncStatus.failed, at
            metrics.sync_run_finished(account.bank_id, "failed")
            _error(run, "upgrade_required", "Automatic bank import needs the Business plan.", retryable=False)
            return Outcome("failed")
        window = plan_window(account, run, today, settings.sync.overlap_days)
        run.status, run.window_from, run.window_to = SyncStatus.running, window[0], window[1]
        run.started_at = run.started_at or at
        run.attempts += 1
        run.next_attempt_at = None
        run.modified_at = at
        ip = (psu_ip_address or USER_PRESENT_FALLBACK_IP) if run.user_present else None
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
    """Spend one unattended read of ``endpoint`` (free with the user present). At the limit: raise
    :class:`Deferred` (or return False when ``defer`` is off)."""
    if plan.user_present:
        return True
    settings = ctx.settings
    at = ctx.clock()
    midnight = dt.datetime.combine(today_stockholm(at), dt.time(0), STOCKHOLM).astimezone(dt.UTC)
    since = min(at - dt.timedelta(hours=24), midnight)
    async with session_scope(ctx.sessionmaker) as session:
        reads = UnattendedReadRepository(session)
        used = await reads.count_since(plan.account_id, endpoint, since)
        if used >= settings.sync.unattended_reads_per_day:
            metrics.UNATTENDED_REFUSED.labels(plan.bank_id, endpoint).inc()
            if not defer:
                return False
            oldest = await reads.oldest_since(plan.account_id, endpoint, since) or at
            raise Deferred(max(at, oldest) + dt.timedelta(hours=24, minutes=1))
        await reads.record(plan.account_id, endpoint, at)
    return True


async def _fetch(
    ctx: ServiceEnv, plan: ClaimedRun
) -> tuple[Sequence[BankTransaction], tuple[dt.date, dt.date]]:
    settings = ctx.settings
    adapter = build_adapter(settings, plan.bank_id, ctx.transports)
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
    adapter = build_adapter(ctx.settings, plan.bank_id, ctx.transports)
    try:
        return await adapter.fetch_balance(plan.context, plan.credentials, plan.external_id)
    except AdapterError as exc:
        log.info("sync.balance.skipped", account_id=str(plan.account_id), error=type(exc).__name__)
        return None
    finally:
        await adapter.aclose()


# --------------------------------------------------------------------------- runs that did not succeed


@asynccontextmanager
async def _run_and_account(
    ctx: ServiceEnv, plan: ClaimedRun
) -> AsyncIterator[tuple[AsyncSession, SyncRun, BankAccount] | None]:
    """One unit of work with the run and its account locked (None when either is gone)."""
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(plan.run_id)
        account = await BankAccountRepository(session).get_for_update(plan.account_id)
        yield (session, run, account) if run is not None and account is not None else None


@dataclass
class _Failing:
    """A run that did not succeed, locked with its account, its error already recorded."""

    session: AsyncSession
    run: SyncRun
    account: BankAccount
    at: dt.datetime


@asynccontextmanager
async def _failing_run(
    ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, *, retryable: bool
) -> AsyncIterator[_Failing | None]:
    """:func:`_run_and_account` with the run's error recorded (None when the run or account is gone)."""
    at = ctx.clock()
    async with _run_and_account(ctx, plan) as locked:
        if locked is None:
            yield None
            return
        session, run, account = locked
        _error(run, code, message, retryable=retryable)
        run.modified_at = at
        yield _Failing(session, run, account, at)


def _finish_failed(failing: _Failing, sync: SyncSettings) -> None:
    """The run failed for good: the account tries again at its next night slot."""
    run, account, at = failing.run, failing.account, failing.at
    run.status, run.finished_at, run.next_attempt_at = SyncStatus.failed, at, None
    account.last_sync_status = SyncStatus.failed
    account.next_sync_at = next_night_slot(account.id, sync, at)


async def _open_sync_failed_todo(failing: _Failing, code: str, *, retryable: bool) -> None:
    run, account = failing.run, failing.account
    await TodoRepository(failing.session).upsert_open(
        account.company_id,
        TodoType.sync_failed,
        str(account.id),
        {
            "bank_account_id": str(account.id),
            "account_name": account.display_name or account.name or account.iban,
            "run_id": str(run.id),
            "code": code,
            "message": run.error_message,
            "retryable": retryable,
        },
    )


def _failed(plan: ClaimedRun, code: str) -> Outcome:
    log.info("sync.run.failed", run_id=str(plan.run_id), error_code=code)
    return Outcome("failed")


async def _defer(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, until: dt.datetime) -> Outcome:
    """The bank (or the allowance) says not now: the run waits, deferred, until ``until``."""
    async with _failing_run(ctx, plan, code, message, retryable=True) as failing:
        if failing is None:
            return Outcome("done")
        failing.run.status, failing.run.next_attempt_at = SyncStatus.deferred, until
        failing.account.last_sync_status = SyncStatus.deferred
        retry_in = max(1.0, (until - failing.at).total_seconds())
    log.info("sync.run.deferred", run_id=str(plan.run_id), error_code=code, until=until.isoformat())
    return Outcome("deferred", retry_in=retry_in)


async def _retry_with_backoff(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str) -> Outcome:
    """A transient failure: queued again after a jittered exponential backoff; after
    ``settings.sync.max_attempts`` attempts the run fails with a ``sync_failed`` to-do."""
    sync = ctx.settings.sync
    async with _failing_run(ctx, plan, code, message, retryable=True) as failing:
        if failing is None:
            return Outcome("done")
        run = failing.run
        if run.attempts < sync.max_attempts:
            delay = compute_backoff(
                run.attempts, base=sync.backoff_base_seconds, cap=sync.backoff_max_seconds
            )
            run.status, run.next_attempt_at = SyncStatus.queued, failing.at + dt.timedelta(seconds=delay)
            log.info(
                "sync.run.retry",
                run_id=str(run.id),
                error_code=code,
                attempt=run.attempts,
                delay=round(delay),
            )
            return Outcome("queued", retry_in=delay)
        run.error_message = f"{message} We tried {run.attempts} times and will try again tonight."
        _finish_failed(failing, sync)
        await _open_sync_failed_todo(failing, code, retryable=True)
    return _failed(plan, code)


async def _give_up(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, *, retryable: bool) -> Outcome:
    """The run fails now (no retry before the next night) with a ``sync_failed`` to-do."""
    async with _failing_run(ctx, plan, code, message, retryable=retryable) as failing:
        if failing is None:
            return Outcome("done")
        _finish_failed(failing, ctx.settings.sync)
        await _open_sync_failed_todo(failing, code, retryable=retryable)
    return _failed(plan, code)


async def _account_vanished(ctx: ServiceEnv, plan: ClaimedRun) -> Outcome:
    """The bank no longer knows the account: the run fails and the account pauses without a next sync,
    with a ``sync_failed`` to-do naming it."""
    code = "account_vanished"
    message = (
        "The bank no longer knows this account (closed, or removed from the consent). Syncing is paused."
    )
    async with _failing_run(ctx, plan, code, message, retryable=False) as failing:
        if failing is None:
            return Outcome("done")
        _finish_failed(failing, ctx.settings.sync)
        failing.account.status, failing.account.next_sync_at = AccountStatus.paused, None
        await _open_sync_failed_todo(failing, code, retryable=False)
    return _failed(plan, code)


async def _needs_login(ctx: ServiceEnv, plan: ClaimedRun, reason: str) -> Outcome:
    """The bank refused the consent or token: the run fails and the connection (with its accounts)
    needs a new login (:func:`mark_reauth_required`: its to-do and event)."""
    code = "reauth_required"
    message = "The bank needs you to log in again to keep importing transactions."
    async with _failing_run(ctx, plan, code, message, retryable=False) as failing:
        if failing is None:
            return Outcome("done")
        _finish_failed(failing, ctx.settings.sync)
        connections = BankConnectionRepository(failing.session)
        connection = await connections.get_for_update(plan.company_id, plan.connection_id)
        if connection is not None:
            await mark_reauth_required(failing.session, connection, reason=reason)
    return _failed(plan, code)


async def _succeed(
    ctx: ServiceEnv,
    plan: ClaimedRun,
    result: WriteResult,
    window: tuple[dt.date, dt.date],
    balance: Balance | None,
    settings: Settings,
) -> Outcome:
    at = ctx.clock()
    async with _run_and_account(ctx, plan) as locked:
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
