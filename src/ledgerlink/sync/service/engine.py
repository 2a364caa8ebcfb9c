"""One sync run of one account, under the account's lock.

Phases, each its own short transaction (no transaction is held open across a bank call):

1. claim: lock the run and account rows, check the account/connection state and the entitlement, plan
   the window, mark the run ``running``;
2. budget: without the user present, count the account's unattended reads of the endpoint in the last
   24 h (and since Stockholm midnight) before reading, and record the read when reading; at the limit
   the run is ``deferred`` to when a read frees up. All under the account lock, so never exceeded;
3. fetch through the adapter (``PeriodInvalid`` shrinks the window to what the bank allows, once);
4. write (:func:`write_transactions`: idempotent batches, then pending replacement);
5. finish: counts, watermark (only now, after success), balance, next night, events, to-dos.

Errors: ``ReauthRequired``/``ConsentExpired`` → :func:`mark_reauth_required`; ``RateLimited`` → run
``deferred`` until ``retry_at``; ``TemporaryFailure``/``BankUnavailable`` → retried with jittered
exponential backoff up to ``settings.sync.max_attempts``, then failed with a ``sync_failed`` to-do;
``ResourceUnknown`` (the account vanished at the bank) → run failed, account ``paused`` without a next
sync and a ``sync_failed`` to-do naming it; any other ``InvalidResponse`` → failed, not retried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from ledgerlink.banks.adapters.base import (
    STOCKHOLM,
    AdapterError,
    BankTransaction,
    BankUnavailable,
    ConnectionContext,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
)
from ledgerlink.banks.adapters.berlingroup.errors import PeriodInvalid, ResourceUnknown
from ledgerlink.banks.service import (
    SYNC_FAILED_TODO,
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
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
    SyncTrigger,
)
from ledgerlink.runtime import ServiceEnv
from ledgerlink.statements.service import record_bank_balance
from ledgerlink.sync.repository import SyncRunRepository, TransactionWriteRepository, UnattendedReadRepository
from ledgerlink.sync.service.common import (
    next_night_slot,
    plan_window,
    unattended_floor,
    write_transactions,
)
from ledgerlink.worker.backoff import compute_backoff

log = get_logger(__name__)

#: Sent as PSU-IP-Address for a user-present run whose request IP was not passed along.
USER_PRESENT_FALLBACK_IP = "127.0.0.1"
UPGRADE_TODO = "upgrade_required"
_LOCAL_LOCKS: dict[uuid.UUID, asyncio.Lock] = {}
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"


def service_instant(ctx: ServiceEnv, wall: dt.datetime) -> dt.datetime:
    """An adapter's instant (``RateLimited.retry_at``: the wall clock plus the bank's Retry-After) on the
    service clock: the same delay from ``ctx.clock()``. Identical under the wall clock; under an injected
    clock (simulated nights) the run is deferred by the bank's delay instead of to a wall-clock instant
    the simulation never reaches (nor one it passed long ago)."""
    return ctx.clock() + max(wall - utcnow(), dt.timedelta(0))


# --------------------------------------------------------------------------- the account lock


@dataclass
class Lock:
    account_id: uuid.UUID
    token: str | None
    handle: Any = None
    keeper: asyncio.Task[None] | None = None


def lock_key(account_id: uuid.UUID) -> str:
    return f"ledgerlink:lock:sync:{account_id}"


async def take_lock(ctx: ServiceEnv, run_id: uuid.UUID) -> Lock | None:
    """The lock of the run's account (None when the run no longer exists; ``token`` None when busy).

    Redis: ``SET key token NX PX ttl``, renewed (compare-and-pexpire) every third of the TTL while the
    run lives, so a run longer than the TTL (the job may take up to its 30-minute timeout) keeps its
    lock, and a dead worker's lock lapses after one TTL; released by compare-and-delete. Embedded default (no Redis):
    a PostgreSQL session advisory lock on a dedicated connection, or a process-local lock on SQLite
    (the embedded default is one process)."""
    async with ctx.sessionmaker() as session:
        # One read: in autocommit, so it costs no BEGIN/ROLLBACK round trips.
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        run = await session.get(SyncRun, run_id)
        if run is None:
            return None
        account_id = run.account_id
    redis = ctx.redis
    ttl_ms = ctx.settings.sync.lock_ttl_seconds * 1000
    token = secrets.token_hex(16)
    if redis is not None:
        ok = await redis.set(lock_key(account_id), token, nx=True, px=ttl_ms)
        if not ok:
            return Lock(account_id, None)
        return Lock(
            account_id, token, keeper=asyncio.create_task(_keep_lock(redis, account_id, token, ttl_ms))
        )
    if ctx.settings.uses_sqlite:
        lock = _LOCAL_LOCKS.setdefault(account_id, asyncio.Lock())
        if lock.locked():
            return Lock(account_id, None)
        await lock.acquire()
        return Lock(account_id, token, lock)
    conn = await ctx.sessionmaker().connection()
    key = advisory_key(account_id)
    got = (await conn.execute(text("SELECT pg_try_advisory_lock(42, :k)"), {"k": key})).scalar_one()
    if not got:
        await conn.close()
        return Lock(account_id, None)
    return Lock(account_id, token, (conn, key))


def advisory_key(account_id: uuid.UUID) -> int:
    """The second key of the account's PostgreSQL advisory lock: a signed int4, as the function takes."""
    return zlib.crc32(account_id.bytes) - 2**31


async def _keep_lock(redis: Any, account_id: uuid.UUID, token: str, ttl_ms: int) -> None:
    """Extend the lock's TTL while the run is alive; stop (and say so) if someone else holds it now."""
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            renewed = await redis.eval(_RENEW, 1, lock_key(account_id), token, ttl_ms)
        except Exception:  # a Redis hiccup: the next beat tries again while the TTL still runs
            log.warning("sync.lock.renew_failed", account_id=str(account_id))
            continue
        if not renewed:
            log.warning("sync.lock.lost", account_id=str(account_id))
            return


def lock_is_held(account_id: uuid.UUID) -> bool:
    """Whether this process's embedded-default (SQLite) lock of the account is held by a live run."""
    lock = _LOCAL_LOCKS.get(account_id)
    return lock is not None and lock.locked()


async def release_lock(ctx: ServiceEnv, lock: Lock) -> None:
    redis = ctx.redis
    if lock.keeper is not None:
        lock.keeper.cancel()
        await asyncio.gather(lock.keeper, return_exceptions=True)
    if lock.token is None:
        return
    if redis is not None:
        await redis.eval(_RELEASE, 1, lock_key(lock.account_id), lock.token)
    elif isinstance(lock.handle, asyncio.Lock):
        lock.handle.release()
    elif lock.handle is not None:
        conn, key = lock.handle
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(42, :k)"), {"k": key})
        finally:
            await conn.close()


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
        return await _fail(
            ctx,
            plan,
            run_id,
            "allowance_spent",
            "The bank's daily allowance of unattended reads is used up; the sync continues when it frees up.",
            retryable=True,
            defer_to=deferred.at,
        )
    except RateLimited as exc:
        retry_at = service_instant(ctx, exc.retry_at)
        return await _fail(
            ctx,
            plan,
            run_id,
            "rate_limited",
            f"The bank asked us to wait until {retry_at.isoformat()}.",
            retryable=True,
            defer_to=retry_at,
        )
    except ReauthRequired as exc:
        return await _fail(
            ctx,
            plan,
            run_id,
            "reauth_required",
            "The bank needs you to log in again to keep importing transactions.",
            retryable=False,
            reauth=exc.message,
        )
    except ResourceUnknown:
        return await _fail(
            ctx,
            plan,
            run_id,
            "account_vanished",
            "The bank no longer knows this account (closed, or removed from the consent). Syncing is paused.",
            retryable=False,
            vanished=True,
        )
    except (TemporaryFailure, BankUnavailable) as exc:
        code = "bank_unavailable" if isinstance(exc, BankUnavailable) else "temporary_failure"
        return await _fail(
            ctx, plan, run_id, code, "The bank could not be reached.", retryable=True, backoff=True
        )
    except InvalidResponse as exc:
        return await _fail(
            ctx,
            plan,
            run_id,
            "invalid_response",
            f"The bank sent data we could not read ({exc.message}).",
            retryable=False,
        )
    except AdapterError as exc:
        return await _fail(ctx, plan, run_id, "bank_error", exc.message, retryable=False)
    except Exception:
        log.exception("sync.run.crashed", run_id=str(run_id), account_id=str(plan.account_id))
        return await _fail(
            ctx,
            plan,
            run_id,
            "internal_error",
            "The sync failed unexpectedly; we will try again tonight.",
            retryable=True,
        )
    return await _succeed(ctx, plan, run_id, result, window, balance, settings)


async def _claim(ctx: ServiceEnv, run_id: uuid.UUID, psu_ip_address: str | None) -> ClaimedRun | Outcome:
    settings = ctx.settings
    at = ctx.clock()
    today = today_stockholm(at)
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(run_id)
        if run is None or run.status not in (SyncStatus.queued, SyncStatus.running, SyncStatus.deferred):
            return Outcome("done")
        account = await session.get(BankAccount, run.account_id, with_for_update=True)
        connection = await session.get(BankConnection, account.connection_id) if account else None
        if account is None or connection is None:
            return Outcome("done")
        if account.status not in (AccountStatus.active, AccountStatus.pending_confirmation) or (
            connection.status != ConnectionStatus.active
        ):
            run.status, run.finished_at = SyncStatus.failed, at
            _error(run, "account_not_active", f"The account is {account.status.value}.", retryable=False)
            return Outcome("failed")
        entitlement = bank_import_entitlement(
            await company.plan_of(session, account.company_id), settings, today=today
        )
        if not entitlement.enabled and not run.user_present:
            await pause_for_plan(session, account, at, settings.sync)
            run.status, run.finished_at = SyncStatus.failed, at
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
    session: Any, account: BankAccount, at: dt.datetime, sync_settings: SyncSettings
) -> None:
    """No entitlement: the account pauses (nothing is deleted) and the company gets the to-do."""
    account.status = AccountStatus.paused
    account.last_sync_status = SyncStatus.failed
    account.next_sync_at = next_night_slot(account.id, sync_settings, at)
    await TodoRepository(session).upsert_open(
        account.company_id, UPGRADE_TODO, "", {"reason": "upgrade_required"}
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
        except PeriodInvalid as exc:
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


async def _fresh_credentials(ctx: ServiceEnv, plan: ClaimedRun, adapter: Any) -> Credentials:
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
        connection = await session.get(
            BankConnection, plan.connection_id, with_for_update=True, populate_existing=True
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
        run = await session.get(SyncRun, plan.run_id)
        if run is not None:
            run.window_from, run.window_to = window


async def _balance(ctx: ServiceEnv, plan: ClaimedRun) -> Any:
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


async def _fail(
    ctx: ServiceEnv,
    plan: ClaimedRun,
    run_id: uuid.UUID,
    code: str,
    message: str,
    *,
    retryable: bool,
    defer_to: dt.datetime | None = None,
    backoff: bool = False,
    reauth: str | None = None,
    vanished: bool = False,
) -> Outcome:
    """Record a run that did not succeed: deferred, queued for a backoff retry, or failed (with the
    account's state, to-dos and events that go with it)."""
    settings = ctx.settings
    at = ctx.clock()
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(run_id)
        account = await session.get(BankAccount, plan.account_id, with_for_update=True)
        if run is None or account is None:
            return Outcome("done")
        _error(run, code, message, retryable=retryable)
        run.modified_at = at
        if defer_to is not None:
            run.status, run.next_attempt_at = SyncStatus.deferred, defer_to
            account.last_sync_status = SyncStatus.deferred
            log.info("sync.run.deferred", run_id=str(run_id), error_code=code, until=defer_to.isoformat())
            return Outcome("deferred", retry_in=max(1.0, (defer_to - at).total_seconds()))
        if backoff and run.attempts < settings.sync.max_attempts:
            delay = compute_backoff(
                run.attempts, base=settings.sync.backoff_base_seconds, cap=settings.sync.backoff_max_seconds
            )
            run.status, run.next_attempt_at = SyncStatus.queued, at + dt.timedelta(seconds=delay)
            log.info(
                "sync.run.retry",
                run_id=str(run_id),
                error_code=code,
                attempt=run.attempts,
                delay=round(delay),
            )
            return Outcome("queued", retry_in=delay)
        if backoff:
            run.error_message = f"{message} We tried {run.attempts} times and will try again tonight."
        run.status, run.finished_at, run.next_attempt_at = SyncStatus.failed, at, None
        account.last_sync_status = SyncStatus.failed
        account.next_sync_at = next_night_slot(account.id, settings.sync, at)
        todos = TodoRepository(session)
        if reauth is not None:
            connection = await session.get(BankConnection, plan.connection_id, with_for_update=True)
            if connection is not None:
                await mark_reauth_required(session, connection, reason=reauth)
        else:
            if vanished:
                account.status, account.next_sync_at = AccountStatus.paused, None
            await todos.upsert_open(
                account.company_id,
                SYNC_FAILED_TODO,
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
        log.info("sync.run.failed", run_id=str(run_id), error_code=code)
        return Outcome("failed")


async def _succeed(
    ctx: ServiceEnv,
    plan: ClaimedRun,
    run_id: uuid.UUID,
    result: Any,
    window: tuple[dt.date, dt.date],
    balance: Any,
    settings: Settings,
) -> Outcome:
    at = ctx.clock()
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(run_id)
        account = await session.get(BankAccount, plan.account_id, with_for_update=True)
        if run is None or account is None:
            return Outcome("done")
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
        await TodoRepository(session).resolve(account.company_id, SYNC_FAILED_TODO, str(account.id))
        unbooked = await TransactionWriteRepository(session).unbooked_count(account.id)
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
    log.info("sync.run.succeeded", run_id=str(run_id), fetched=result.fetched, inserted=result.inserted)
    return Outcome("succeeded")
