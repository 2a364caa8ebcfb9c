"""What the sync services share: scheduling a run (:func:`schedule_sync`), the window of a run, and
the write path (:func:`write_transactions`).

Time comes from the clock passed in (``ServiceEnv.clock``, or ``clock=`` of :func:`schedule_sync`), so
simulated nights move every service the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.banks.adapters.base import (
    STOCKHOLM,
    BankTransaction,
    BookingStatus,
    InvalidResponse,
    transaction_identities,
)
from ledgerlink.banks.adapters.registry import unattended_max_days
from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.clock import Clock, on_service_clock, system_clock
from ledgerlink.config import SyncSettings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.inbox.repository import TransactionRepository, TransactionRow
from ledgerlink.models.bank import AccountStatus, BankAccount, SyncRun, SyncStatus, SyncTrigger
from ledgerlink.money import round_to_ore
from ledgerlink.statements.service import adopt_statement_rows, clear_balance_checkpoint
from ledgerlink.sync.errors import AccountNotSyncable, SyncInProgress
from ledgerlink.sync.repository import SyncRunRepository
from ledgerlink.worker.enqueue import enqueue

WRITE_BATCH = 5000


def _in_progress(active: SyncRun) -> SyncInProgress:
    return SyncInProgress(
        f"sync run {active.id} is already {active.status.value} for this account",
        extra={"run_id": str(active.id)},
    )


def job_id_for(run: SyncRun) -> str:
    return f"sync.account:{run.id}"


async def schedule_sync(
    session: AsyncSession,
    account: BankAccount,
    *,
    trigger: SyncTrigger,
    user_present: bool,
    window_from: dt.date | None = None,
    window_to: dt.date | None = None,
    psu_ip_address: str | None = None,
    defer_until: dt.datetime | None = None,
    clock: Clock = system_clock,
) -> SyncRun:
    """Create a queued run for ``account`` and enqueue ``sync.account`` (sent after the commit).

    The account row is locked first, so two concurrent requests cannot both queue a run; whatever path
    skips that lock, the partial unique index ``uq_sync_run_active_account`` refuses a second active
    run. A run already queued or running raises :class:`SyncInProgress` (409) naming it. ``psu_ip_address``
    (the user's address, from :func:`ledgerlink.client_address.client_address`) is kept on a user-present
    run until it ends, so a retry or a re-sent job still carries it; an unattended run never has one. A
    ``deferred`` run (waiting for a
    bank's rate limit) is superseded: the new run covers it. ``clock`` dates the run (the service clock).
    ``defer_until`` (the fan-out's pacing) is a wall-clock instant for the job; the run's
    ``next_attempt_at`` records the same delay on the service clock, the clock the stale-run sweep
    compares it with (a wall-clock instant there would hide a run whose job died with its worker).
    """
    accounts = BankAccountRepository(session)
    locked = await accounts.get_for_update(account.id)
    if locked is not None:
        account = locked
    if account.status not in (AccountStatus.active, AccountStatus.pending_confirmation):
        raise AccountNotSyncable(
            f"the bank account is {account.status.value}; only active accounts can be synced",
            extra={"account_status": account.status.value},
        )
    runs = SyncRunRepository(session)
    active = await runs.active_run(account.id)
    if active is not None:
        raise _in_progress(active)
    at = clock()
    for deferred in await runs.deferred_runs(account.id):
        deferred.status = SyncStatus.failed
        deferred.finished_at = at
        deferred.error_code = "superseded"
        deferred.error_message = "replaced by a newer sync of the same account"
        deferred.error_retryable = False
        deferred.next_attempt_at = None
    await session.flush()
    run_id = uuid.uuid4()
    paced_until = on_service_clock(defer_until, at) if defer_until is not None else at
    values: dict[str, Any] = {
        "id": run_id,
        "company_id": account.company_id,
        "account_id": account.id,
        "trigger": trigger,
        "user_present": user_present,
        "psu_ip_address": psu_ip_address if user_present else None,
        "status": SyncStatus.queued,
        "window_from": window_from,
        "window_to": window_to,
        "fetched": 0,
        "inserted": 0,
        "updated": 0,
        "removed": 0,
        "attempts": 0,
        "created_at": at,
        "modified_at": at,
        "next_attempt_at": paced_until if paced_until > at else None,
    }
    if not await runs.insert_unless_active(values):
        # Another writer queued one between our check and our insert (the database guard saw it).
        winner = await runs.active_run(account.id)
        raise (
            _in_progress(winner)
            if winner is not None
            else SyncInProgress("a sync run is already queued or running for this account")
        )
    run = await runs.get(run_id)
    assert run is not None
    enqueue("sync.account", job_id=job_id_for(run), defer_until=defer_until, run_id=str(run.id))
    return run


# --------------------------------------------------------------------------- windows and the night


def next_night_slot(account_id: uuid.UUID, settings: SyncSettings, at: dt.datetime) -> dt.datetime:
    """The account's slot in the next night window (Stockholm), spread evenly by a hash of its id, so
    thousands of accounts do not all become due at the window's start."""
    local = at.astimezone(STOCKHOLM)
    day = local.date()
    start = dt.datetime.combine(day, settings.night_window_start, STOCKHOLM)
    end = dt.datetime.combine(day, settings.night_window_end, STOCKHOLM)
    if end <= start:
        end += dt.timedelta(days=1)
    span = max(60.0, (end - start).total_seconds())
    offset = int.from_bytes(hashlib.sha256(account_id.bytes).digest()[:8], "big") % int(span)
    slot = start + dt.timedelta(seconds=offset)
    while slot <= local:
        slot += dt.timedelta(days=1)
    return slot.astimezone(dt.UTC)


def unattended_floor(today: dt.date, max_days: int) -> dt.date:
    """The earliest day a bank serving ``max_days`` days without the user present will answer for."""
    return today - dt.timedelta(days=max_days)


def plan_window(
    account: BankAccount, run: SyncRun, today: dt.date, overlap_days: int
) -> tuple[dt.date, dt.date]:
    """The run's window: explicit bounds if given; initial/backfill from ``sync_from`` (user present,
    deep history); otherwise the booked watermark minus the overlap, never before ``sync_from`` and,
    without the user present, never more than the bank serves unattended (its catalogue entry's
    ``unattended_max_days``, 89 days by default).

    Only a manual or backfill run keeps the end it was given. A scheduled or initial run always reaches
    today: it may be retried on a later day (deferred by the bank's rate limit, or re-sent after a lost
    worker) and must not then report the account synced while missing the days since its first claim."""
    if run.trigger in (SyncTrigger.manual, SyncTrigger.backfill):
        window_to = min(run.window_to or today, today)
    else:
        window_to = today
    if run.window_from is not None:
        window_from = run.window_from
    elif run.trigger == SyncTrigger.backfill:
        window_from = account.backfill_from or account.sync_from
    elif run.trigger == SyncTrigger.initial or account.booked_watermark is None:
        window_from = account.sync_from
    else:
        window_from = account.booked_watermark - dt.timedelta(days=overlap_days)
    window_from = max(window_from, account.sync_from)
    if not run.user_present:
        window_from = max(window_from, unattended_floor(today, unattended_max_days(account.bank_id)))
    return min(window_from, window_to), window_to


def to_write_rows(transactions: Sequence[BankTransaction]) -> list[TransactionRow]:
    """Normalise the adapter's transactions into stored rows with their per-account identity (rule 4).

    ``transactions`` must be everything the bank returned for the window, in the bank's order (the
    occurrence index of identical rows depends on it). A row without any date gets today's date."""
    identities = transaction_identities(transactions)
    rows: list[TransactionRow] = []
    for tx, identity in zip(transactions, identities, strict=True):
        booking_date = tx.booking_date or tx.value_date
        if booking_date is None:
            raise InvalidResponse("sync", "a transaction has neither booking nor value date", "bookingDate")
        rows.append(
            TransactionRow(
                identity=identity[:120],
                provider_id=(tx.provider_id or None) and tx.provider_id[:200],
                booking_status=tx.booking_status.value,
                booking_date=booking_date,
                value_date=tx.value_date,
                amount=round_to_ore(tx.amount),
                currency=tx.currency.upper()[:3],
                counterparty=tx.counterparty,
                description=tx.description,
                reference=tx.reference[:140] if tx.reference else None,
                raw=tx.raw or None,
            )
        )
    return rows


@dataclass
class WriteResult:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    newest_booked: dt.date | None = None


async def write_transactions(
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    account_id: uuid.UUID,
    transactions: Sequence[BankTransaction],
    *,
    window: tuple[dt.date, dt.date] | None = None,
    batch_size: int = WRITE_BATCH,
    seen_at: dt.datetime | None = None,
) -> WriteResult:
    """THE write path (also what the benchmark times): upsert ``transactions`` of one account in
    batches of ``batch_size``, each batch one statement committed on its own (idempotent, so a worker
    killed between batches loses nothing: the next run rewrites the same keys). Pending replacement
    (``window`` given) runs only after every batch is written: in the last batch's transaction (one
    transaction for the usual nightly run of one batch; the replacement still never precedes a write,
    and it commits with the last batch or not at all)."""
    rows = to_write_rows(transactions)
    result = WriteResult(fetched=len(rows))
    at = seen_at or utcnow()
    starts = list(range(0, len(rows), batch_size)) or [0]
    for start in starts:
        async with session_scope(sessionmaker) as session:
            repo = TransactionRepository(session)
            # a row a statement brought in takes the feed's identity: one row, two sources
            await adopt_statement_rows(session, account_id, rows[start : start + batch_size])
            # rows dated back to the balance check's checkpoint make the next check a full one
            await clear_balance_checkpoint(session, account_id, rows[start : start + batch_size])
            inserted, updated = await repo.upsert(
                company_id, account_id, rows[start : start + batch_size], at
            )
            if window is not None and start == starts[-1]:
                pending = [r.identity for r in rows if r.booking_status == BookingStatus.pending.value]
                result.removed = await repo.remove_pending_not_in(account_id, window[0], window[1], pending)
        result.inserted += inserted
        result.updated += updated
    booked_dates = [r.booking_date for r in rows if r.booking_status == BookingStatus.booked.value]
    result.newest_booked = max(booked_dates) if booked_dates else None
    return result
