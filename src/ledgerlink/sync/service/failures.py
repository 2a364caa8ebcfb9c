"""How a sync run that did not succeed ends.

:data:`FAILURES` is the one mapping from the adapter error family (``banks.adapters.base``) to the
run's error ``code`` and what happens next; the first entry whose class the error is an instance of
wins, so a subclass comes before its parent. The code is the run's ``error.code``, the account's
``last_error.code`` and the ``sync_failed`` to-do's ``code`` (``reauth_required`` carries it too):

======================  =======================  ======================================================
adapter error           code                     next
======================  =======================  ======================================================
``ConsentExpired``      ``consent_expired``      the connection needs a new login
``ReauthRequired``      ``reauth_required``      the connection needs a new login
``RateLimited``         ``rate_limited``         deferred to the bank's ``retry_at``
``BankUnavailable``     ``bank_unavailable``     backoff, then failed with a ``sync_failed`` to-do
``TemporaryFailure``    ``bank_unavailable``     backoff, then failed with a ``sync_failed`` to-do
``AccountVanished``     ``account_vanished``     account paused, ``sync_failed`` to-do
``InvalidResponse``     ``invalid_response``     failed now (no blind retry), ``sync_failed`` to-do
``CertificateInvalid``  ``certificate_invalid``  failed now (our QWAC refused), ``sync_failed`` to-do
``SignatureInvalid``    ``signature_invalid``    failed now (our QSealC refused), ``sync_failed`` to-do
``AdapterError``        ``bank_error``           failed now, ``sync_failed`` to-do
======================  =======================  ======================================================

A login error for a consent that was replaced while the run read with the old one (an early
re-authorization completed meanwhile) is not the new consent's fault: the run is queued again and reads
with the new consent; the connection is not flipped.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.banks.adapters.base import (
    AccountVanished,
    AdapterError,
    BankUnavailable,
    CertificateInvalid,
    ConsentExpired,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    SignatureInvalid,
    TemporaryFailure,
)
from ledgerlink.banks.repository import BankConnectionRepository
from ledgerlink.banks.service import load_credentials, mark_reauth_required
from ledgerlink.clock import on_service_clock
from ledgerlink.config import SyncSettings
from ledgerlink.inbox.repository import TodoRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import AccountStatus, BankAccount, LastError, SyncRun, SyncStatus
from ledgerlink.models.inbox import TodoType
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.service.common import next_night_slot
from ledgerlink.sync.service.run import ClaimedRun, Outcome, record_error, run_and_account
from ledgerlink.worker.backoff import compute_backoff

log = get_logger(__name__)


class Next(enum.Enum):
    """What happens to a run after its error."""

    login = "login"  # failed; the connection and its accounts need a new login (reauth_required)
    defer = "defer"  # deferred until the bank allows reading again
    retry = "retry"  # queued again after a backoff; failed with a sync_failed to-do after max_attempts
    pause = "pause"  # failed; the account pauses without a next sync, sync_failed to-do
    fail = "fail"  # failed now, no retry before the next night; sync_failed to-do


@dataclass(frozen=True, slots=True)
class Failure:
    """How a run ends for one kind of adapter error. ``message`` is shown to people; ``{detail}`` is the
    adapter's message (bank id, path, bank code: never a secret), ``{retry_at}`` the deferral's end."""

    code: str
    next: Next
    message: str


CONSENT_EXPIRED = "consent_expired"
CONSENT_REPLACED = "consent_replaced"
UNREADABLE = "The bank sent data we could not read ({detail})."
UNREACHABLE = "The bank could not be reached."
REFUSED_CREDENTIALS = (
    "The bank refused our eIDAS certificate or signature ({detail}); an administrator must fix the "
    "bank's certificate settings. Nothing is retried until then."
)

#: Adapter error class → how the run ends. First match wins: subclasses before their parents.
FAILURES: tuple[tuple[type[AdapterError], Failure], ...] = (
    (
        ConsentExpired,
        Failure(
            CONSENT_EXPIRED,
            Next.login,
            "The bank consent has expired: log in at the bank again to keep importing transactions.",
        ),
    ),
    (
        ReauthRequired,
        Failure(
            "reauth_required",
            Next.login,
            "The bank needs you to log in again to keep importing transactions.",
        ),
    ),
    (RateLimited, Failure("rate_limited", Next.defer, "The bank asked us to wait until {retry_at}.")),
    (BankUnavailable, Failure("bank_unavailable", Next.retry, UNREACHABLE)),
    (TemporaryFailure, Failure("bank_unavailable", Next.retry, UNREACHABLE)),
    (
        AccountVanished,
        Failure(
            "account_vanished",
            Next.pause,
            "The bank no longer knows this account (closed, or removed from the consent). Syncing is paused.",
        ),
    ),
    (InvalidResponse, Failure("invalid_response", Next.fail, UNREADABLE)),
    (CertificateInvalid, Failure("certificate_invalid", Next.fail, REFUSED_CREDENTIALS)),
    (SignatureInvalid, Failure("signature_invalid", Next.fail, REFUSED_CREDENTIALS)),
    (AdapterError, Failure("bank_error", Next.fail, "{detail}")),
)


def classify(exc: AdapterError) -> Failure:
    """The :data:`FAILURES` entry of ``exc``."""
    return next(failure for kind, failure in FAILURES if isinstance(exc, kind))


def service_instant(ctx: ServiceEnv, wall: dt.datetime) -> dt.datetime:
    """An adapter's instant (``RateLimited.retry_at``: the wall clock plus the bank's Retry-After) on the
    service clock (:func:`ledgerlink.clock.on_service_clock`): the run is deferred by the bank's delay."""
    return on_service_clock(wall, ctx.clock())


async def end_run(ctx: ServiceEnv, plan: ClaimedRun, exc: AdapterError) -> Outcome:
    """End (or re-queue) the run after the adapter raised ``exc``, as :data:`FAILURES` says."""
    failure = classify(exc)
    if failure.next is Next.defer:
        until = service_instant(ctx, exc.retry_at) if isinstance(exc, RateLimited) else ctx.clock()
        message = failure.message.format(detail=exc.message, retry_at=until.isoformat())
        return await defer(ctx, plan, failure.code, message, until)
    message = failure.message.format(detail=exc.message, retry_at="")
    if failure.next is Next.login:
        return await _needs_login(ctx, plan, failure.code, message, reason=exc.message)
    if failure.next is Next.retry:
        return await _retry_with_backoff(ctx, plan, failure.code, message)
    if failure.next is Next.pause:
        return await _pause(ctx, plan, failure.code, message)
    return await give_up(ctx, plan, failure.code, message, retryable=False)


# --------------------------------------------------------------------------- the units of work


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
    """One unit of work with the run and its account locked and the run's error recorded (None when
    either is gone)."""
    at = ctx.clock()
    async with run_and_account(ctx, plan) as locked:
        if locked is None:
            yield None
            return
        session, run, account = locked
        record_error(run, code, message, retryable=retryable)
        run.modified_at = at
        yield _Failing(session, run, account, at)


def _finish_failed(failing: _Failing, sync: SyncSettings) -> None:
    """The run failed for good: the account keeps its error and tries again at its next night slot."""
    run, account, at = failing.run, failing.account, failing.at
    run.status, run.finished_at, run.next_attempt_at = SyncStatus.failed, at, None
    account.last_sync_status = SyncStatus.failed
    account.next_sync_at = next_night_slot(account.id, sync, at)
    account.set_last_error(LastError(run.error_code or "", run.error_message or "", at))


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
        at=failing.at,
    )


def _failed(plan: ClaimedRun, code: str) -> Outcome:
    log.info("sync.run.failed", run_id=str(plan.run_id), error_code=code)
    return Outcome("failed")


async def defer(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, until: dt.datetime) -> Outcome:
    """The bank (or the allowance) says not now: the run waits, deferred, until ``until``."""
    async with _failing_run(ctx, plan, code, message, retryable=True) as failing:
        if failing is None:
            return Outcome("done")
        failing.run.status, failing.run.next_attempt_at = SyncStatus.deferred, until
        failing.account.last_sync_status = SyncStatus.deferred
        failing.account.set_last_error(LastError(code, message, failing.at))
        retry_in = max(1.0, (until - failing.at).total_seconds())
    log.info("sync.run.deferred", run_id=str(plan.run_id), error_code=code, until=until.isoformat())
    return Outcome("deferred", retry_in=retry_in)


def _queue_again(failing: _Failing, delay: float, code: str) -> Outcome:
    run = failing.run
    run.status, run.next_attempt_at = SyncStatus.queued, failing.at + dt.timedelta(seconds=delay)
    log.info("sync.run.retry", run_id=str(run.id), error_code=code, attempt=run.attempts, delay=round(delay))
    return Outcome("queued", retry_in=delay)


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
            return _queue_again(failing, delay, code)
        run.error_message = f"{message} We tried {run.attempts} times and will try again tonight."
        _finish_failed(failing, sync)
        await _open_sync_failed_todo(failing, code, retryable=True)
    return _failed(plan, code)


async def give_up(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, *, retryable: bool) -> Outcome:
    """The run fails now (no retry before the next night) with a ``sync_failed`` to-do."""
    async with _failing_run(ctx, plan, code, message, retryable=retryable) as failing:
        if failing is None:
            return Outcome("done")
        _finish_failed(failing, ctx.settings.sync)
        await _open_sync_failed_todo(failing, code, retryable=retryable)
    return _failed(plan, code)


async def _pause(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str) -> Outcome:
    """The bank no longer knows the account: the run fails and the account pauses without a next sync,
    with a ``sync_failed`` to-do naming it."""
    async with _failing_run(ctx, plan, code, message, retryable=False) as failing:
        if failing is None:
            return Outcome("done")
        _finish_failed(failing, ctx.settings.sync)
        failing.account.status, failing.account.next_sync_at = AccountStatus.paused, None
        await _open_sync_failed_todo(failing, code, retryable=False)
    return _failed(plan, code)


def _same_consent(stored: Credentials, used: Credentials) -> bool:
    """Whether the connection still holds the consent (or token) the run read with."""
    return (stored.consent_id, stored.access_token) == (used.consent_id, used.access_token)


#: A run whose consent was replaced meanwhile reads again this soon, with the new consent.
REPLACED_CONSENT_RETRY_SECONDS = 1.0


async def _needs_login(ctx: ServiceEnv, plan: ClaimedRun, code: str, message: str, *, reason: str) -> Outcome:
    """The bank refused the consent or token: the run fails and the connection (with its accounts)
    needs a new login (:func:`mark_reauth_required`: its to-do and event). Unless the connection was
    re-authorised while this run read with the old consent: then the run reads again with the new one."""
    async with _failing_run(ctx, plan, code, message, retryable=False) as failing:
        if failing is None:
            return Outcome("done")
        connection = await BankConnectionRepository(failing.session).get_for_update(
            plan.company_id, plan.connection_id
        )
        stored = load_credentials(ctx.settings, connection) if connection is not None else None
        if stored is not None and not _same_consent(stored, plan.credentials):
            replaced = (
                "The connection was re-authorised during the sync; it reads again with the new consent."
            )
            record_error(failing.run, CONSENT_REPLACED, replaced, retryable=True)
            return _queue_again(failing, REPLACED_CONSENT_RETRY_SECONDS, CONSENT_REPLACED)
        _finish_failed(failing, ctx.settings.sync)
        if connection is not None:
            await mark_reauth_required(failing.session, connection, reason=reason, code=code, at=failing.at)
    return _failed(plan, code)
