"""Every scenario of the sandbox bank ends in the documented state; the allowance is never exceeded;
an interrupted write followed by a new run leaves exactly the right rows."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.banks.service import build_adapter, connection_context, load_credentials
from ledgerlink.db.session import session_scope
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    ImportedTransaction,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    Todo,
    UnattendedRead,
)
from ledgerlink.sandbox.bank_data import sandbox_transactions
from ledgerlink.sync.service import engine, schedule_sync
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)


async def setup(
    settings: Any, sessionmaker: Any, transports: dict[str, Any], clock: SimClock, psu: str, kind: str = "ftg"
) -> BankAccount:
    clock.set_local(DAY, 14)
    transports.setdefault("sandbox", sandbox_transport(clock))
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id)
    return await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        psu=psu,
        kind=kind,
        sync_from=DAY - dt.timedelta(days=20),
        clock=clock,
    )


async def start(
    sessionmaker: Any, clock: SimClock, account: BankAccount, *, user_present: bool = False
) -> uuid.UUID:
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(
            s,
            account,
            trigger=SyncTrigger.manual if user_present else SyncTrigger.scheduled,
            user_present=user_present,
            psu_ip_address="192.0.2.10",  # the user's address, as "sync now" passes it (kept if present)
            clock=clock,
        )
    return run.id


async def load(sessionmaker: Any, model: Any, id: Any) -> Any:
    async with sessionmaker() as s:
        return await s.get(model, id)


async def todos(sessionmaker: Any, type: str) -> list[Todo]:
    async with sessionmaker() as s:
        return list(
            (await s.execute(select(Todo).where(Todo.type == type, Todo.resolved_at.is_(None)))).scalars()
        )


async def test_expired_consent_flips_connection_to_reauth_required(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    clock.at += dt.timedelta(days=91)  # past the consent's validUntil at the bank
    run_id = await start(sessionmaker, clock, account)
    outcome = await execute_run(service_env(job_ctx), run_id)
    assert outcome.status == "failed" and outcome.retry_in is None
    run = await load(sessionmaker, SyncRun, run_id)
    # the consent reached its end: told apart from other login errors (API: consent_expired)
    assert (run.status, run.error_code, run.error_retryable) == (SyncStatus.failed, "consent_expired", False)
    assert (
        await load(sessionmaker, BankConnection, account.connection_id)
    ).status == ConnectionStatus.reauth_required
    assert (await load(sessionmaker, BankAccount, account.id)).status == AccountStatus.reauth_required
    assert len(await todos(sessionmaker, "reauth_required")) == 1


async def test_rate_limited_defers_to_retry_at(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "ratelimited")
    run_id = await start(sessionmaker, clock, account)
    outcome = await execute_run(service_env(job_ctx), run_id)
    assert outcome.status == "deferred" and outcome.retry_in is not None and outcome.retry_in > 0
    run = await load(sessionmaker, SyncRun, run_id)
    assert run.status == SyncStatus.deferred and run.error_code == "rate_limited"
    assert run.next_attempt_at is not None and run.next_attempt_at > clock.at
    assert (await load(sessionmaker, BankAccount, account.id)).booked_watermark is None  # not "no new data"


async def test_flapping_5xx_retries_with_backoff_then_succeeds(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "flaky", kind="spar")
    # one AIS call first, so that the sync's transactions read is the bank's even (failing) call
    async with sessionmaker() as s:
        connection = await s.get(BankConnection, account.connection_id)
    adapter = build_adapter(settings, "sandbox", transports)
    ctx = connection_context(settings, connection, psu_ip_address="192.0.2.10")
    await adapter.list_accounts(ctx, load_credentials(settings, connection))
    await adapter.aclose()
    run_id = await start(sessionmaker, clock, account, user_present=True)
    statuses = []
    for _ in range(4):
        outcome = await execute_run(service_env(job_ctx), run_id, psu_ip_address="192.0.2.10")
        statuses.append(outcome.status)
        if outcome.retry_in is None:
            break
    assert "queued" in statuses and statuses[-1] == "succeeded"
    run = await load(sessionmaker, SyncRun, run_id)
    assert run.status == SyncStatus.succeeded and run.attempts == len(statuses)


async def test_temporary_failures_exhaust_attempts_then_fail_with_todo(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    settings.sync.max_attempts = 2
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    transports["sandbox"] = sandbox_transport(clock, fault_rate=1.0)
    run_id = await start(sessionmaker, clock, account, user_present=True)
    first = await execute_run(service_env(job_ctx), run_id)
    second = await execute_run(service_env(job_ctx), run_id)
    assert first.status == "queued" and second.status == "failed"
    run = await load(sessionmaker, SyncRun, run_id)
    assert run.error_retryable is True and "tried 2 times" in run.error_message
    assert [t.data["code"] for t in await todos(sessionmaker, "sync_failed")] == [run.error_code]


async def test_malformed_page_fails_without_blind_retry(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "malformed")
    run_id = await start(sessionmaker, clock, account, user_present=True)
    outcome = await execute_run(service_env(job_ctx), run_id)
    assert outcome.status == "failed" and outcome.retry_in is None
    run = await load(sessionmaker, SyncRun, run_id)
    assert (run.error_code, run.error_retryable) == ("invalid_response", False)
    assert len(await todos(sessionmaker, "sync_failed")) == 1


async def test_vanished_account_is_paused_with_a_todo_naming_it(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "vanishing", kind="gone")
    run_id = await start(sessionmaker, clock, account, user_present=True)
    assert (await execute_run(service_env(job_ctx), run_id)).status == "failed"
    stored = await load(sessionmaker, BankAccount, account.id)
    assert stored.status == AccountStatus.paused and stored.next_sync_at is None
    [todo] = await todos(sessionmaker, "sync_failed")
    assert todo.data["bank_account_id"] == str(account.id) and todo.data["code"] == "account_vanished"


async def test_slow_bank_still_syncs(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    clock.set_local(DAY, 14)
    transports["sandbox"] = sandbox_transport(clock, slow_seconds=0.2)
    account = await setup(settings, sessionmaker, transports, clock, "slow")
    run_id = await start(sessionmaker, clock, account, user_present=True)
    assert (await execute_run(service_env(job_ctx), run_id)).status == "succeeded"


async def test_noids_rows_keep_genuine_duplicates_and_resync_is_stable(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "noids")
    first = await start(sessionmaker, clock, account, user_present=True)
    await execute_run(service_env(job_ctx), first)
    second = await start(sessionmaker, clock, account, user_present=True)
    await execute_run(service_env(job_ctx), second)
    run = await load(sessionmaker, SyncRun, second)
    truth = sandbox_transactions(account.external_id, account.sync_from, DAY, DAY, with_ids=False)
    async with sessionmaker() as s:
        count = (
            await s.execute(select(func.count()).where(ImportedTransaction.account_id == account.id))
        ).scalar_one()
    assert count == len(truth)
    assert run.fetched > 0
    assert (run.inserted, run.updated, run.removed) == (0, 0, 0)


async def test_allowance_never_exceeded_with_concurrent_sync_now_and_cron(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    outcomes = []
    for _ in range(6):  # 6 unattended runs in one day: 4 read, the rest defer
        run_id = await start(sessionmaker, clock, account)
        outcomes.append((await execute_run(service_env(job_ctx), run_id)).status)
        # a user-present "sync now" in between never spends the allowance
        manual = await start(sessionmaker, clock, account, user_present=True)
        assert (await execute_run(service_env(job_ctx), manual)).status == "succeeded"
    assert outcomes == ["succeeded"] * 4 + ["deferred"] * 2
    async with sessionmaker() as s:
        reads = (
            await s.execute(
                select(func.count()).where(
                    UnattendedRead.account_id == account.id, UnattendedRead.endpoint == "transactions"
                )
            )
        ).scalar_one()
    assert reads == settings.sync.unattended_reads_per_day


async def test_a_user_present_run_without_the_users_address_spends_the_allowance(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    """Without ``PSU-IP-Address`` the bank counts a read as unattended, whoever queued the run: such a run
    spends the allowance and defers at the limit instead of being refused by the bank."""
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    per_day = settings.sync.unattended_reads_per_day
    outcomes = []
    for _ in range(per_day + 1):
        async with session_scope(sessionmaker) as s:
            run = await schedule_sync(s, account, trigger=SyncTrigger.manual, user_present=True, clock=clock)
        outcomes.append((await execute_run(service_env(job_ctx), run.id)).status)
    assert outcomes == ["succeeded"] * per_day + ["deferred"]
    last = await load(sessionmaker, SyncRun, run.id)
    assert last.error_code != "rate_limited"  # our ledger said no before the bank had to
    assert last.next_attempt_at is not None and last.next_attempt_at > clock.at + dt.timedelta(hours=23)
    async with sessionmaker() as s:
        reads = (
            await s.execute(
                select(func.count()).where(
                    UnattendedRead.account_id == account.id, UnattendedRead.endpoint == "transactions"
                )
            )
        ).scalar_one()
    assert reads == per_day


async def test_interrupted_write_then_new_run_leaves_exactly_the_right_rows(
    settings: Any,
    sessionmaker: Any,
    transports: Any,
    clock: SimClock,
    job_ctx: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    real = engine.write_transactions
    calls = {"n": 0}

    async def dying_write(*args: Any, **kwargs: Any) -> Any:
        # the first batch commits, then the worker "dies" mid-run
        calls["n"] += 1
        kwargs["batch_size"] = 7
        from ledgerlink.inbox.repository import TransactionRepository as TransactionWriteRepository

        original = TransactionWriteRepository.upsert
        state = {"batches": 0}

        async def upsert(self: Any, *a: Any, **k: Any) -> Any:
            state["batches"] += 1
            if state["batches"] == 3:
                raise KeyboardInterrupt  # a BaseException, like a cancelled task
            return await original(self, *a, **k)

        monkeypatch.setattr(TransactionWriteRepository, "upsert", upsert)
        try:
            return await real(*args, **kwargs)
        finally:
            monkeypatch.setattr(TransactionWriteRepository, "upsert", original)

    monkeypatch.setattr(engine, "write_transactions", dying_write)
    run_id = await start(sessionmaker, clock, account, user_present=True)
    with pytest.raises(KeyboardInterrupt):
        await execute_run(service_env(job_ctx), run_id)
    assert (await load(sessionmaker, SyncRun, run_id)).status == SyncStatus.running
    partial = await load_rows(sessionmaker, account.id)
    assert len(partial) == 14
    monkeypatch.setattr(engine, "write_transactions", real)
    # the next scheduling pass takes over the dead run (stale after the lock TTL)
    clock.at += dt.timedelta(seconds=settings.sync.lock_ttl_seconds + 1)
    from ledgerlink.sync.service.cron import recover_stale_runs

    assert await recover_stale_runs(service_env(job_ctx)) == 1
    assert (await load(sessionmaker, SyncRun, run_id)).error_code == "worker_lost"
    again = await start(sessionmaker, clock, account, user_present=True)
    assert (await execute_run(service_env(job_ctx), again)).status == "succeeded"
    rows = await load_rows(sessionmaker, account.id)
    truth = sandbox_transactions(account.external_id, account.sync_from, DAY, DAY)
    assert sorted(r.provider_id for r in rows) == sorted(t.provider_id for t in truth)
    run = await load(sessionmaker, SyncRun, again)
    assert run.inserted == len(truth) - 14 and run.updated == 0


async def load_rows(sessionmaker: Any, account_id: uuid.UUID) -> list[ImportedTransaction]:
    async with sessionmaker() as s:
        return list(
            (
                await s.execute(
                    select(ImportedTransaction).where(ImportedTransaction.account_id == account_id)
                )
            ).scalars()
        )


async def test_pending_rows_book_and_ignored_rows_stay_ignored(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    account = await setup(settings, sessionmaker, transports, clock, "anna")
    first = await start(sessionmaker, clock, account, user_present=True)
    await execute_run(service_env(job_ctx), first)
    rows = await load_rows(sessionmaker, account.id)
    pending_before = {r.provider_id for r in rows if r.booking_status == "pending"}
    ignored = next(r for r in rows if r.booking_status == "booked")
    async with session_scope(sessionmaker) as s:
        row = await s.get(ImportedTransaction, ignored.id)
        row.status = "ignored"
    clock.set_local(DAY + dt.timedelta(days=3), 14)
    second = await start(sessionmaker, clock, account, user_present=True)
    await execute_run(service_env(job_ctx), second)
    rows = await load_rows(sessionmaker, account.id)
    today = DAY + dt.timedelta(days=3)
    truth = sandbox_transactions(account.external_id, account.sync_from, today, today)
    assert {r.provider_id for r in rows if r.booking_status == "pending"} == {
        t.provider_id for t in truth if t.booking_status is BookingStatus.pending
    }
    assert not pending_before & {r.provider_id for r in rows}  # every old pending row was replaced
    run = await load(sessionmaker, SyncRun, second)
    assert run.removed == len(pending_before)
    assert (await load(sessionmaker, ImportedTransaction, ignored.id)).status == "ignored"


async def test_deleting_a_failed_account_resolves_its_sync_failed_todo_only(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, client: Any
) -> None:
    from tests.conftest import make_token

    failed = await setup(settings, sessionmaker, transports, clock, "malformed")
    other = await setup(settings, sessionmaker, transports, clock, "malformed")
    for account in (failed, other):
        assert (
            await execute_run(
                service_env(job_ctx), await start(sessionmaker, clock, account, user_present=True)
            )
        ).status == "failed"
    headers = {"Authorization": f"Bearer {make_token(settings, failed.company_id)}"}
    listed = (await client.get("/v1/todos", headers=headers)).json()["items"]
    assert [t["bank_account_id"] for t in listed if t["type"] == "sync_failed"] == [str(failed.id)]

    assert (await client.delete(f"/v1/bank-accounts/{failed.id}", headers=headers)).status_code == 204

    listed = (await client.get("/v1/todos", headers=headers)).json()["items"]
    assert [t for t in listed if t["type"] == "sync_failed"] == []
    assert [t.subject_key for t in await todos(sessionmaker, "sync_failed")] == [str(other.id)]


async def test_deleting_a_connection_resolves_the_todos_of_its_accounts(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, client: Any
) -> None:
    from tests.conftest import make_token

    account = await setup(settings, sessionmaker, transports, clock, "vanishing", kind="gone")
    assert (
        await execute_run(service_env(job_ctx), await start(sessionmaker, clock, account, user_present=True))
    ).status == "failed"
    assert len(await todos(sessionmaker, "sync_failed")) == 1
    headers = {"Authorization": f"Bearer {make_token(settings, account.company_id)}"}

    response = await client.delete(f"/v1/bank-connections/{account.connection_id}", headers=headers)

    assert response.status_code == 204, response.text
    assert await todos(sessionmaker, "sync_failed") == []
    assert (await load(sessionmaker, BankAccount, account.id)).status == AccountStatus.disconnected
