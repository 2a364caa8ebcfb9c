"""The sync engine speaks only the adapter contract: a family's own errors reach it as the contract's
``AccountVanished`` / ``PeriodTooLong``, and the unattended window comes from the bank's catalogue entry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from ledgerlink.banks.adapters import registry
from ledgerlink.banks.adapters.base import (
    AccountVanished,
    BankAdapter,
    BankTransaction,
    ConnectionContext,
    Credentials,
    InvalidResponse,
    PeriodTooLong,
)
from ledgerlink.banks.adapters.berlingroup import PeriodInvalid, ResourceUnknown
from ledgerlink.db.session import session_scope
from ledgerlink.models import AccountStatus, BankAccount, SyncRun, SyncStatus, SyncTrigger, Todo
from ledgerlink.sync.service import engine, plan_window, schedule_sync
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)


def test_berlin_group_errors_are_the_contracts_errors() -> None:
    period = PeriodInvalid("seb", "PERIOD_INVALID on /v1/accounts/x/transactions")
    assert isinstance(period, PeriodTooLong) and isinstance(period, InvalidResponse)
    assert period.max_days == 89 and period.field == "dateFrom"
    gone = ResourceUnknown("n26", "RESOURCE_UNKNOWN on /v1/accounts/x", "account_id")
    assert isinstance(gone, AccountVanished) and isinstance(gone, InvalidResponse)


class VanishingAdapter:
    """Another family's adapter (not Berlin Group) whose bank says the account is gone."""

    def __init__(self, inner: BankAdapter) -> None:
        self.inner = inner
        self.bank_id = inner.bank_id

    async def fetch_transactions(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str, date_from: Any, date_to: Any
    ) -> Sequence[BankTransaction]:
        raise AccountVanished(self.bank_id, "account not found (HTTP 404)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_non_berlin_group_account_vanished_pauses_the_account_with_a_todo(
    settings: Any,
    sessionmaker: Any,
    transports: Any,
    clock: SimClock,
    job_ctx: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.set_local(DAY, 14)
    transports["sandbox"] = sandbox_transport(clock)
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id)
    account = await make_account(
        sessionmaker, settings, transports["sandbox"], company_id, sync_from=DAY - dt.timedelta(days=20)
    )
    real_build = engine.build_adapter
    monkeypatch.setattr(engine, "build_adapter", lambda *a, **kw: VanishingAdapter(real_build(*a, **kw)))
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False)
    outcome = await engine.execute_run(service_env(job_ctx), run.id)
    assert outcome.status == "failed" and outcome.retry_in is None
    async with sessionmaker() as s:
        stored_run = await s.get(SyncRun, run.id)
        stored_account = await s.get(BankAccount, account.id)
        todo = (
            await s.execute(select(Todo).where(Todo.company_id == company_id, Todo.resolved_at.is_(None)))
        ).scalar_one()
    assert stored_run is not None and stored_account is not None
    assert (stored_run.status, stored_run.error_code) == (SyncStatus.failed, "account_vanished")
    assert (stored_account.status, stored_account.next_sync_at) == (AccountStatus.paused, None)
    assert (todo.type, todo.data["code"]) == ("sync_failed", "account_vanished")


def test_the_unattended_floor_comes_from_the_banks_catalogue_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    account = BankAccount(bank_id="sandbox", sync_from=DAY - dt.timedelta(days=200), booked_watermark=None)
    run = SyncRun(trigger=SyncTrigger.scheduled, user_present=False, window_from=None, window_to=None)
    assert plan_window(account, run, DAY, overlap_days=7) == (DAY - dt.timedelta(days=89), DAY)
    shorter = dataclasses.replace(registry.BANKS["sandbox"], unattended_max_days=30)
    monkeypatch.setitem(registry.BANKS, "sandbox", shorter)
    assert plan_window(account, run, DAY, overlap_days=7) == (DAY - dt.timedelta(days=30), DAY)
    present = SyncRun(trigger=SyncTrigger.manual, user_present=True, window_from=None, window_to=None)
    assert plan_window(account, present, DAY, overlap_days=7) == (account.sync_from, DAY)
