"""The sync engine: the account lock outliving its TTL while the run lives, the ``PeriodInvalid`` shrink,
the database guard against two active runs, and OAuth token refresh before a fetch."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ledgerlink.db.session import session_scope
from ledgerlink.models import BankAccount, SyncRun, SyncStatus, SyncTrigger
from ledgerlink.sync.errors import SyncInProgress
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.cron import SLOT_SECONDS, recover_stale_runs, schedule_due_accounts
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.sync.service.lock import lock_key, release_lock, take_lock
from ledgerlink.sync.tasks import sync_account
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)


async def _account(
    settings: Any,
    sessionmaker: Any,
    transports: dict[str, Any],
    clock: SimClock,
    *,
    psu: str = "anna",
    sync_from: dt.date | None = None,
    **bank: Any,
) -> BankAccount:
    clock.set_local(DAY, 14)
    transports.setdefault("sandbox", sandbox_transport(clock, **bank))
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id)
    return await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        psu=psu,
        sync_from=sync_from or DAY - dt.timedelta(days=20),
        clock=clock,
    )


async def _schedule(
    sessionmaker: Any, clock: SimClock, account: BankAccount, *, user_present: bool = False
) -> uuid.UUID:
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(
            s,
            account,
            trigger=SyncTrigger.manual if user_present else SyncTrigger.scheduled,
            user_present=user_present,
            clock=clock,
        )
    return run.id


async def _run(sessionmaker: Any, run_id: uuid.UUID) -> SyncRun:
    async with sessionmaker() as s:
        run: SyncRun | None = await s.get(SyncRun, run_id)
    assert run is not None
    return run


# ------------------------------------------------------------------------------------ the lock


async def test_a_live_run_keeps_its_lock_past_the_ttl_and_is_not_taken_over(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, arq_redis: Any
) -> None:
    settings.sync.lock_ttl_seconds = 1
    account = await _account(settings, sessionmaker, transports, clock, psu="slow", slow_seconds=1.5)
    run_id = await _schedule(sessionmaker, clock, account, user_present=True)

    async def the_job() -> Any:
        return await sync_account({**job_ctx, "job_id": "t", "job_try": 1}, str(run_id))

    job = asyncio.create_task(the_job())
    for _ in range(200):
        if (await _run(sessionmaker, run_id)).status == SyncStatus.running:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.2)  # more than two TTLs: without renewal the key would be gone
    assert not job.done()
    holder = await arq_redis.get(lock_key(account.id))
    assert holder is not None

    # Another worker cannot take it, and the stale-run sweep (the run looks old by then) leaves it alone.
    other = await take_lock(service_env(job_ctx), run_id)
    assert other is not None and other.token is None
    clock.at += dt.timedelta(minutes=30)
    assert await recover_stale_runs(service_env(job_ctx)) == 0
    assert (await _run(sessionmaker, run_id)).status == SyncStatus.running

    assert await job == "succeeded"
    assert await arq_redis.get(lock_key(account.id)) is None  # released
    mine = await take_lock(service_env(job_ctx), run_id)
    assert mine is not None and mine.token is not None
    await release_lock(service_env(job_ctx), mine)


async def test_a_dead_workers_lock_lapses_and_its_run_is_recovered(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, arq_redis: Any
) -> None:
    account = await _account(settings, sessionmaker, transports, clock)
    run_id = await _schedule(sessionmaker, clock, account)
    async with session_scope(sessionmaker) as s:
        run = await s.get(SyncRun, run_id)
        assert run is not None
        run.status, run.modified_at = SyncStatus.running, clock.at
    await arq_redis.set(lock_key(account.id), "a-worker-that-died", px=50)
    for _ in range(200):
        if not await arq_redis.exists(lock_key(account.id)):
            break
        await asyncio.sleep(0.02)
    clock.at += dt.timedelta(seconds=settings.sync.lock_ttl_seconds + 60)
    assert await recover_stale_runs(service_env(job_ctx)) == 1
    recovered = await _run(sessionmaker, run_id)
    assert (recovered.status, recovered.error_code) == (SyncStatus.failed, "worker_lost")


async def test_a_paced_run_whose_worker_died_before_its_claim_is_resent_under_a_simulated_clock(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, arq_redis: Any
) -> None:
    """The fan-out paces a bank's accounts in wall-clock slots (the arq job's deferral) and the run keeps
    its slot on the service clock. When the worker that took the job dies before the claim (the run stays
    queued; arq keeps the job "in progress" for an hour), the stale-run sweep re-sends the run once its
    slot is a lock TTL past, also while the service clock is a simulated night far from the wall clock
    (the fault soak's runs that never finished after its worker kill)."""
    settings.sync.per_bank_concurrency = 1  # the bank's second account waits for the next slot
    accounts = [
        await _account(settings, sessionmaker, transports, clock, psu=psu) for psu in ("anna", "bertil")
    ]
    async with session_scope(sessionmaker) as s:
        for account in accounts:
            row = await s.get(BankAccount, account.id)
            assert row is not None
            row.next_sync_at = clock.at
    env = service_env(job_ctx)
    assert await schedule_due_accounts(env) == 2
    async with sessionmaker() as s:
        runs = (await s.execute(select(SyncRun).where(SyncRun.status == SyncStatus.queued))).scalars().all()
    paced = [run for run in runs if run.next_attempt_at is not None]
    assert len(runs) == 2 and len(paced) == 1
    slot = paced[0].next_attempt_at
    assert slot is not None and clock.at < slot <= clock.at + dt.timedelta(seconds=SLOT_SECONDS)

    # No job ran (their worker died before claiming) and no lock is held: both runs are lost, both re-sent.
    clock.at += dt.timedelta(seconds=SLOT_SECONDS + settings.sync.lock_ttl_seconds + 1)
    assert await recover_stale_runs(env) == 2
    for run in runs:
        resent = f"sync.account:{run.id}:resent:{int(clock.at.timestamp())}"
        assert await arq_redis.zscore(settings.queue_name, resent) is not None


# ------------------------------------------------------------------------------ PeriodInvalid


class PeriodInvalidOnce(httpx.AsyncBaseTransport):
    """The sandbox bank, except that transactions reaching further back than ``max_days`` answer
    400 PERIOD_INVALID (a bank stricter than the sandbox); counts the transactions calls."""

    def __init__(self, inner: httpx.AsyncBaseTransport, today: dt.date, max_days: int | None) -> None:
        self.inner, self.today, self.max_days = inner, today, max_days
        self.windows: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/transactions") and "dateFrom" in request.url.params:
            date_from = dt.date.fromisoformat(request.url.params["dateFrom"])
            if request.url.params.get("pageIndex", "0") == "0":  # a window's first page, not a follow-up
                self.windows.append(request.url.params["dateFrom"])
            if self.max_days is None or date_from < self.today - dt.timedelta(days=self.max_days):
                body = {
                    "tppMessages": [{"category": "ERROR", "code": "PERIOD_INVALID", "text": "too far back"}]
                }
                return httpx.Response(
                    400, json=body, headers={"X-Request-ID": request.headers["X-Request-ID"]}
                )
        return await self.inner.handle_async_request(request)


async def test_period_invalid_shrinks_the_window_once_to_what_the_bank_serves(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    clock.set_local(DAY, 14)
    inner = sandbox_transport(clock)
    strict = PeriodInvalidOnce(inner, DAY, max_days=89)
    transports["sandbox"] = strict
    account = await _account(
        settings, sessionmaker, transports, clock, sync_from=DAY - dt.timedelta(days=200)
    )
    run_id = await _schedule(sessionmaker, clock, account, user_present=True)  # user present: no 89-day clamp
    assert (await execute_run(service_env(job_ctx), run_id)).status == "succeeded"
    run = await _run(sessionmaker, run_id)
    floor = DAY - dt.timedelta(days=89)
    assert strict.windows == [(DAY - dt.timedelta(days=200)).isoformat(), floor.isoformat()]
    assert (run.window_from, run.window_to) == (floor, DAY)
    assert run.fetched > 0 and run.inserted == run.fetched


async def test_period_invalid_within_the_floor_fails_without_a_retry_loop(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    clock.set_local(DAY, 14)
    always = PeriodInvalidOnce(sandbox_transport(clock), DAY, max_days=None)
    transports["sandbox"] = always
    account = await _account(settings, sessionmaker, transports, clock)
    run_id = await _schedule(sessionmaker, clock, account)
    outcome = await execute_run(service_env(job_ctx), run_id)
    assert outcome.status == "failed" and outcome.retry_in is None
    run = await _run(sessionmaker, run_id)
    assert (run.status, run.error_code, run.error_retryable) == (SyncStatus.failed, "invalid_response", False)
    assert len(always.windows) == 1


async def _count_runs(sessionmaker: Any, account_id: uuid.UUID) -> int:
    async with sessionmaker() as s:
        return len(list((await s.execute(select(SyncRun.id).where(SyncRun.account_id == account_id))).all()))


# ------------------------------------------------------------------- one active run per account


async def test_the_database_refuses_a_second_queued_or_running_run(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock
) -> None:
    account = await _account(settings, sessionmaker, transports, clock)

    def run(status: SyncStatus) -> SyncRun:
        return SyncRun(
            company_id=account.company_id,
            account_id=account.id,
            trigger=SyncTrigger.scheduled,
            user_present=False,
            status=status,
        )

    async with sessionmaker() as s:
        s.add_all([run(SyncStatus.running), run(SyncStatus.deferred), run(SyncStatus.succeeded)])
        s.add_all([run(SyncStatus.failed), run(SyncStatus.failed)])
        await s.commit()
    for second in (SyncStatus.queued, SyncStatus.running):
        async with sessionmaker() as s:
            s.add(run(second))
            with pytest.raises(IntegrityError):
                await s.commit()
    assert await _count_runs(sessionmaker, account.id) == 5


async def test_schedule_sync_racing_an_uncommitted_run_answers_409_naming_it(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, engine: Any
) -> None:
    """A writer that queued a run without taking the account's row lock (still uncommitted): our check
    cannot see it, the index can. We wait for it, then answer 409 with its id instead of a duplicate."""
    account = await _account(settings, sessionmaker, transports, clock)
    other_id = uuid.uuid4()
    async with sessionmaker() as other:
        other.add(
            SyncRun(
                id=other_id,
                company_id=account.company_id,
                account_id=account.id,
                trigger=SyncTrigger.scheduled,
                user_present=False,
                status=SyncStatus.queued,
            )
        )
        await other.flush()  # inserted, not committed

        async def ours() -> uuid.UUID:
            return await _schedule(sessionmaker, clock, account, user_present=True)

        racing = asyncio.create_task(ours())
        async with engine.connect() as watcher:
            for _ in range(400):  # until our insert waits on the other transaction's index entry
                waiting = (
                    await watcher.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
                ).scalar_one()
                if waiting or racing.done():
                    break
                await asyncio.sleep(0.01)
        assert not racing.done()
        await other.commit()
    with pytest.raises(SyncInProgress) as refused:
        await racing
    assert refused.value.extra == {"run_id": str(other_id)}
    assert await _count_runs(sessionmaker, account.id) == 1
