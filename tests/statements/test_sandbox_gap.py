"""The journey of issue 18 against the sandbox bank: the ``dropped`` PSU's feed leaves out a row, the
sync's balance check shows the gap on its day with its amount, and the statement downloaded from the
sandbox bank (camt.053 or Swedbank CSV) imports that row only and closes the gap."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.db.session import session_scope
from ledgerlink.models import ImportedTransaction, SyncTrigger, Todo
from ledgerlink.sandbox.bank_data import sandbox_rows
from ledgerlink.sandbox.statements import dropped_idents
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env
from tests.conftest import make_token
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)
SYNC_FROM = DAY - dt.timedelta(days=30)


async def sync(sessionmaker: Any, clock: SimClock, job_ctx: Any, account: Any) -> None:
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.manual, user_present=True, clock=clock)
    outcome = await execute_run(service_env(job_ctx), run.id, psu_ip_address="192.0.2.10")
    assert outcome.status == "succeeded"


async def held(sessionmaker: Any, account_id: uuid.UUID) -> int:
    async with sessionmaker() as s:
        stmt = select(func.count()).where(
            ImportedTransaction.account_id == account_id, ImportedTransaction.booking_status == "booked"
        )
        return int((await s.execute(stmt)).scalar_one())


@pytest.mark.parametrize("fmt", ["camt053", "csv_swedbank"])
async def test_dropped_row_shows_as_gap_and_the_sandbox_statement_closes_it(
    fmt: str,
    settings: Any,
    sessionmaker: Any,
    transports: dict[str, Any],
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
) -> None:
    clock.set_local(DAY, 14)
    transports["sandbox"] = sandbox_transport(clock)
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id)
    account = await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        psu="dropped",
        sync_from=SYNC_FROM,
        clock=clock,
    )
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking')}"}
    await sync(sessionmaker, clock, job_ctx, account)

    truth = [
        r for r in sandbox_rows(account.external_id, SYNC_FROM, DAY, DAY) if r.status is BookingStatus.booked
    ]
    left_out = dropped_idents(account.external_id, SYNC_FROM, DAY, DAY)
    dropped = [r.event for r in truth if r.event.ident(BookingStatus.booked) in left_out]
    assert len(dropped) == 1  # the feed left out February's row
    row = dropped[0]
    assert await held(sessionmaker, account.id) == len(truth) - 1

    check = (await client.get(f"/v1/bank-accounts/{account.id}", headers=headers)).json()["reconciliation"]
    assert check["status"] == "gap"
    assert Decimal(check["gap"]) == row.amount
    earlier_days = [r.event.booking_date for r in truth if r.event.booking_date < row.booking_date]
    assert max(earlier_days) < dt.date.fromisoformat(check["gap_since"]) <= row.booking_date
    async with sessionmaker() as s:
        todo = (
            await s.execute(select(Todo).where(Todo.type == "balance_gap", Todo.resolved_at.is_(None)))
        ).scalar_one()
        assert todo.data["amount"] == format(row.amount, "f")

    async with httpx.AsyncClient(
        transport=transports["sandbox"], base_url="http://sandbox.example.invalid"
    ) as bank:
        download = await bank.get(
            f"/sandbox/bank/statements/{account.external_id}",
            params={"dateFrom": SYNC_FROM.isoformat(), "dateTo": DAY.isoformat(), "format": fmt},
        )
    assert download.status_code == 200
    preview = await client.post(
        f"/v1/bank-accounts/{account.id}/statement-imports",
        headers=headers,
        files={"file": ("statement", download.content, "application/octet-stream")},
    )
    assert preview.status_code == 201, preview.text
    body = preview.json()
    assert body["format"] == fmt
    assert body["counts"] == {"rows": len(truth), "new": 1, "duplicate": len(truth) - 1, "conflicting": 0}
    committed = await client.post(
        f"/v1/bank-accounts/{account.id}/statement-imports/{body['id']}/commit", headers=headers
    )
    assert committed.json()["counts"] == {"inserted": 1}
    assert await held(sessionmaker, account.id) == len(truth)

    check = (await client.get(f"/v1/bank-accounts/{account.id}", headers=headers)).json()["reconciliation"]
    assert check["status"] == "ok"
    async with sessionmaker() as s:
        assert (
            await s.execute(select(Todo).where(Todo.type == "balance_gap", Todo.resolved_at.is_(None)))
        ).all() == []

    clock.at += dt.timedelta(
        days=1
    )  # the next sync neither duplicates the statement's row nor reopens the gap
    await sync(sessionmaker, clock, job_ctx, account)
    truth_next = [
        r
        for r in sandbox_rows(account.external_id, SYNC_FROM, clock.bank_today(), clock.bank_today())
        if r.status is BookingStatus.booked
    ]
    assert await held(sessionmaker, account.id) == len(truth_next)
