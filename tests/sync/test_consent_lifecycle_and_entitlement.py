"""Consent lifecycle cron, entitlement pause/resume, and the events both raise reaching webhooks.

``sync.consents_due`` (``consent_expiring`` 7 days ahead, an expired consent → ``reauth_required``),
pausing/resuming accounts with the Business entitlement, and ``bank_connection.reauth_required`` getting
webhook deliveries (it used to bypass ``emit``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select, update

from ledgerlink.db.session import session_scope
from ledgerlink.events.schemas import WebhookEndpointCreate
from ledgerlink.events.service import webhooks
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    Company,
    ConnectionStatus,
    ImportedTransaction,
    OutboxEvent,
    Plan,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    Todo,
    WebhookDelivery,
)
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.cron import schedule_due_accounts, sweep_consents
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.received.append(json.loads(request.content))
        return httpx.Response(200)


async def _account(
    settings: Any,
    sessionmaker: Any,
    transports: dict[str, Any],
    clock: SimClock,
    *,
    psu: str = "anna",
    consent_days: float = 89,
    plan: Plan = Plan.business,
) -> BankAccount:
    clock.set_local(DAY, 14)
    transports.setdefault("sandbox", sandbox_transport(clock))
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id, plan)
    return await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        psu=psu,
        sync_from=DAY - dt.timedelta(days=20),
        consent_expires_at=clock.at + dt.timedelta(days=consent_days),
        clock=clock,
    )


async def _subscribe(
    sessionmaker: Any, company_id: uuid.UUID, events: list[str], transports: dict[str, Any], settings: Any
) -> Receiver:
    settings.webhooks.allow_private_targets = True
    receiver = Receiver()
    transports["webhooks"] = httpx.MockTransport(receiver.handler)
    async with session_scope(sessionmaker) as s:
        await webhooks.create(
            s,
            company_id,
            WebhookEndpointCreate(url="http://hooks.internal.test/ledgerlink", events=events),
            settings,
        )
    return receiver


async def _open_todos(sessionmaker: Any, company_id: uuid.UUID, type: str) -> list[Todo]:
    async with sessionmaker() as s:
        stmt = select(Todo).where(
            Todo.company_id == company_id, Todo.type == type, Todo.resolved_at.is_(None)
        )
        return list((await s.execute(stmt)).scalars())


async def _events(sessionmaker: Any, company_id: uuid.UUID, type: str) -> list[OutboxEvent]:
    async with sessionmaker() as s:
        stmt = select(OutboxEvent).where(OutboxEvent.company_id == company_id, OutboxEvent.type == type)
        return list((await s.execute(stmt)).scalars())


async def _deliveries(sessionmaker: Any, company_id: uuid.UUID) -> list[WebhookDelivery]:
    async with sessionmaker() as s:
        stmt = select(WebhookDelivery).where(WebhookDelivery.company_id == company_id)
        return list((await s.execute(stmt)).scalars())


# ------------------------------------------------------------------------------- consent lifecycle


async def test_consent_expiring_todo_and_event_from_seven_days_ahead_once(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, run_jobs: Any
) -> None:
    settings.sync.consent_reminder_days = [7]  # one reminder, a week ahead (the default is 14 and 3)
    soon = await _account(settings, sessionmaker, transports, clock, psu="anna", consent_days=6.5)
    later = await _account(settings, sessionmaker, transports, clock, psu="bertil", consent_days=7.5)
    receiver = await _subscribe(
        sessionmaker, soon.company_id, ["bank_connection.consent_expiring"], transports, settings
    )

    await sweep_consents(service_env(job_ctx))
    await sweep_consents(service_env(job_ctx))  # the next hour's pass raises nothing new

    [todo] = await _open_todos(sessionmaker, soon.company_id, "consent_expiring")
    async with sessionmaker() as s:
        connection = await s.get(BankConnection, soon.connection_id)
    assert connection is not None and connection.consent_expires_at is not None
    assert todo.subject_key == str(soon.connection_id)
    assert dt.datetime.fromisoformat(todo.data["expires_at"]) == connection.consent_expires_at
    assert connection.status == ConnectionStatus.active  # still valid: only a warning
    [event] = await _events(sessionmaker, soon.company_id, "bank_connection.consent_expiring")
    assert event.payload["connection_id"] == str(soon.connection_id)
    assert await _open_todos(sessionmaker, later.company_id, "consent_expiring") == []
    assert await _events(sessionmaker, later.company_id, "bank_connection.consent_expiring") == []

    await run_jobs()
    assert [r["type"] for r in receiver.received] == ["bank_connection.consent_expiring"]

    # A day later the second consent enters the 7-day horizon.
    clock.at += dt.timedelta(days=1)
    await sweep_consents(service_env(job_ctx))
    assert len(await _open_todos(sessionmaker, later.company_id, "consent_expiring")) == 1


async def test_expired_consent_flips_to_reauth_required_and_the_event_reaches_webhooks(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, run_jobs: Any
) -> None:
    account = await _account(settings, sessionmaker, transports, clock, consent_days=3)
    receiver = await _subscribe(
        sessionmaker,
        account.company_id,
        ["bank_connection.reauth_required", "bank_connection.consent_expiring"],
        transports,
        settings,
    )
    await sweep_consents(service_env(job_ctx))
    assert len(await _open_todos(sessionmaker, account.company_id, "consent_expiring")) == 1

    clock.at += dt.timedelta(days=4)  # past the consent's end
    await sweep_consents(service_env(job_ctx))
    await sweep_consents(service_env(job_ctx))

    async with sessionmaker() as s:
        connection = await s.get(BankConnection, account.connection_id)
        linked = await s.get(BankAccount, account.id)
    assert connection is not None and connection.status == ConnectionStatus.reauth_required
    assert linked is not None and linked.status == AccountStatus.reauth_required
    assert await _open_todos(sessionmaker, account.company_id, "consent_expiring") == []
    assert len(await _open_todos(sessionmaker, account.company_id, "reauth_required")) == 1
    [event] = await _events(sessionmaker, account.company_id, "bank_connection.reauth_required")
    deliveries = await _deliveries(sessionmaker, account.company_id)
    assert sorted(d.event_id for d in deliveries if d.event_id == event.id) == [event.id]

    await run_jobs()
    assert sorted(r["type"] for r in receiver.received) == [
        "bank_connection.consent_expiring",
        "bank_connection.reauth_required",
    ]
    assert {d.status for d in await _deliveries(sessionmaker, account.company_id)} == {"delivered"}


async def test_consent_refused_during_a_sync_delivers_the_reauth_webhook(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any, run_jobs: Any
) -> None:
    account = await _account(settings, sessionmaker, transports, clock)
    receiver = await _subscribe(
        sessionmaker, account.company_id, ["bank_connection.reauth_required"], transports, settings
    )
    clock.at += dt.timedelta(days=91)  # past validUntil at the bank: 401 CONSENT_EXPIRED
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock)
    assert (await execute_run(service_env(job_ctx), run.id)).status == "failed"
    [delivery] = await _deliveries(sessionmaker, account.company_id)
    await run_jobs()
    assert [r["type"] for r in receiver.received] == ["bank_connection.reauth_required"]
    assert receiver.received[0]["data"]["connection_id"] == str(account.connection_id)
    async with sessionmaker() as s:
        assert (await s.get(WebhookDelivery, delivery.id)).status == "delivered"


# ------------------------------------------------------------------------------ entitlement


async def test_losing_business_after_the_trial_pauses_without_deleting_and_regaining_resumes(
    settings: Any, sessionmaker: Any, transports: Any, clock: SimClock, job_ctx: Any
) -> None:
    settings.bank_import_trial_until = DAY + dt.timedelta(days=1)
    account = await _account(settings, sessionmaker, transports, clock, plan=Plan.free)

    # In the trial: the free company syncs like a Business one.
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock)
    assert (await execute_run(service_env(job_ctx), run.id)).status == "succeeded"
    async with sessionmaker() as s:
        imported = (
            await s.execute(select(func.count()).where(ImportedTransaction.account_id == account.id))
        ).scalar_one()
    assert imported > 0

    # After the trial date the night's pass pauses it, with the to-do; nothing is deleted.
    clock.set_local(DAY + dt.timedelta(days=3), 2)
    async with sessionmaker() as s:
        await s.execute(update(BankAccount).where(BankAccount.id == account.id).values(next_sync_at=clock.at))
        await s.commit()
    assert await schedule_due_accounts(service_env(job_ctx)) == 0
    async with sessionmaker() as s:
        paused = await s.get(BankAccount, account.id)
        kept = (
            await s.execute(select(func.count()).where(ImportedTransaction.account_id == account.id))
        ).scalar_one()
        queued = (
            await s.execute(
                select(func.count()).where(
                    SyncRun.account_id == account.id, SyncRun.status == SyncStatus.queued
                )
            )
        ).scalar_one()
    assert paused is not None and paused.status == AccountStatus.paused
    assert kept == imported and queued == 0
    [todo] = await _open_todos(sessionmaker, account.company_id, "upgrade_required")
    assert todo.data["reason"] == "upgrade_required"

    # A scheduled run that was already queued when the plan lapsed does not read the bank either.
    async with sessionmaker() as s:
        await s.execute(
            update(BankAccount).where(BankAccount.id == account.id).values(status=AccountStatus.active)
        )
        await s.commit()
    async with session_scope(sessionmaker) as s:
        stale = await schedule_sync(
            s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock
        )
    assert (await execute_run(service_env(job_ctx), stale.id)).status == "failed"
    async with sessionmaker() as s:
        failed = await s.get(SyncRun, stale.id)
        again = await s.get(BankAccount, account.id)
    assert failed is not None and failed.error_code == "upgrade_required"
    assert again is not None and again.status == AccountStatus.paused

    # Billing moves the company to Business: the next pass resumes and schedules it, the to-do closes.
    async with sessionmaker() as s:
        await s.execute(update(Company).where(Company.id == account.company_id).values(plan=Plan.business))
        await s.commit()
    clock.at = (again.next_sync_at or clock.at) + dt.timedelta(minutes=1)
    assert await schedule_due_accounts(service_env(job_ctx)) == 1
    async with sessionmaker() as s:
        resumed = await s.get(BankAccount, account.id)
        runs = (
            await s.execute(
                select(SyncRun).where(SyncRun.account_id == account.id, SyncRun.status == SyncStatus.queued)
            )
        ).scalars()
        queued_runs = list(runs)
    assert resumed is not None and resumed.status == AccountStatus.active
    assert [r.trigger for r in queued_runs] == [SyncTrigger.scheduled]
    assert await _open_todos(sessionmaker, account.company_id, "upgrade_required") == []
    assert (await execute_run(service_env(job_ctx), queued_runs[0].id)).status == "succeeded"
