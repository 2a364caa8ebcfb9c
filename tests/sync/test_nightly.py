"""A nightly cycle over several simulated days for 20 accounts against the sandbox bank's ground truth."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select

from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.db.session import session_scope
from ledgerlink.models import BankAccount, ImportedTransaction, OutboxEvent, SyncRun, SyncStatus, SyncTrigger
from ledgerlink.sandbox.bank_data import sandbox_transactions
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.cron import schedule_due_accounts
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

N_ACCOUNTS = 20


async def stored(sessionmaker: Any, account_id: uuid.UUID) -> list[ImportedTransaction]:
    async with sessionmaker() as s:
        rows = await s.execute(
            select(ImportedTransaction).where(ImportedTransaction.account_id == account_id)
        )
        return list(rows.scalars())


def assert_matches_bank(rows: list[ImportedTransaction], account: BankAccount, today: dt.date) -> None:
    truth = sandbox_transactions(account.external_id, account.sync_from, today, today)
    booked = {t.provider_id: t.amount for t in truth if t.booking_status is BookingStatus.booked}
    pending = {t.provider_id for t in truth if t.booking_status is BookingStatus.pending}
    assert {r.provider_id: r.amount for r in rows if r.booking_status == "booked"} == booked
    assert {r.provider_id for r in rows if r.booking_status == "pending"} == pending


async def test_nightly_cycle_matches_ground_truth_and_rerun_inserts_nothing(
    settings: Any, sessionmaker: Any, transports: dict[str, Any], clock: SimClock, job_ctx: Any, run_jobs: Any
) -> None:
    day0 = dt.date(2026, 3, 2)
    clock.set_local(day0, 14)
    transports["sandbox"] = sandbox_transport(clock)
    accounts = []
    for i in range(N_ACCOUNTS):
        company_id = uuid.uuid4()
        await make_company(sessionmaker, company_id)
        accounts.append(
            await make_account(
                sessionmaker,
                settings,
                transports["sandbox"],
                company_id,
                psu=f"co{i}",
                sync_from=day0 - dt.timedelta(days=30),
                clock=clock,
            )
        )
    async with session_scope(sessionmaker) as s:
        for account in accounts:
            await schedule_sync(s, account, trigger=SyncTrigger.initial, user_present=True, clock=clock)
    await run_jobs()
    for account in accounts:
        assert_matches_bank(await stored(sessionmaker, account.id), account, day0)

    for night in range(1, 4):
        day = day0 + dt.timedelta(days=night)
        clock.set_local(day, 5, 30)  # after every account's slot in the 01:00-05:00 window
        assert await schedule_due_accounts(service_env(job_ctx)) == N_ACCOUNTS
        await run_jobs()
        for account in accounts:
            assert_matches_bank(await stored(sessionmaker, account.id), account, day)
        async with sessionmaker() as s:
            runs = (
                (await s.execute(select(SyncRun).where(SyncRun.trigger == SyncTrigger.scheduled)))
                .scalars()
                .all()
            )
            assert len(runs) == N_ACCOUNTS * night
            assert all(r.status == SyncStatus.succeeded for r in runs)
            refreshed = (await s.execute(select(BankAccount))).scalars().all()
            assert all(a.next_sync_at is not None and a.next_sync_at > clock.at for a in refreshed)
            assert all(a.booked_watermark is not None for a in refreshed)

    # a re-run the same day (user present) fetches everything again and changes nothing
    async with session_scope(sessionmaker) as s:
        again = await schedule_sync(
            s, accounts[0], trigger=SyncTrigger.manual, user_present=True, clock=clock
        )
    await run_jobs()
    async with sessionmaker() as s:
        run = await s.get(SyncRun, again.id)
        assert run is not None and run.status == SyncStatus.succeeded
        assert run.fetched > 0
        assert (run.inserted, run.updated, run.removed) == (0, 0, 0)
        events = (await s.execute(select(OutboxEvent.type))).scalars().all()
        assert events.count("bank_account.synced") == N_ACCOUNTS * 4 + 1
