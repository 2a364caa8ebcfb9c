"""Import from the sandbox Fortnox: trial balance, vouchers, specifications, re-import, call counts."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.models.closing import ClosingVoucher, ClosingVoucherRow
from ledgerlink.models.events import OutboxEvent
from ledgerlink.models.fortnox import FortnoxConnection
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany, SandboxRow
from tests.closing.conftest import (
    SANDBOX_ROOT,
    YEAR_END,
    RunJobs,
    all_pages,
    connect_fortnox,
    create_closing,
    import_from_fortnox,
)


def _sie_of(sandbox: SandboxFortnox) -> Any:
    year = next(y for y in sandbox.company.years if y.from_date.year == 2025)
    return sandbox.company.to_sie(year.id)


async def test_import_gives_a_trial_balance_equal_to_the_sie_closing_balances(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    closing = await create_closing(client, auth_headers)

    job = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"]
    document = _sie_of(sandbox)
    rows = await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)
    by_number = {r["number"]: r for r in rows}
    ub = {b.account: b.amount for b in document.closing_balances if b.year == 0}
    res = {b.account: b.amount for b in document.results if b.year == 0}
    ib = {b.account: b.amount for b in document.opening_balances if b.year == 0}
    assert ub and res
    for number, amount in {**ub, **res}.items():
        assert Decimal(by_number[number]["closing_balance"]) == amount, number
    for number, amount in ib.items():
        assert Decimal(by_number[number]["opening_balance"]) == amount, number
    for row in rows:
        change = Decimal(row["closing_balance"]) - Decimal(row["opening_balance"])
        assert Decimal(row["period_change"]) == change
    assert set(by_number) == set(document.accounts)
    assert by_number["1510"]["name"] == "Kundfordringar"


async def test_imported_vouchers_and_rows_are_those_of_the_sie_export(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    closing = await create_closing(client, auth_headers)

    job = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    document = _sie_of(sandbox)
    vouchers = await all_pages(client, f"/v1/closings/{closing['id']}/vouchers", auth_headers)
    assert job["counts"]["vouchers"] == len(document.vouchers) == len(vouchers)
    assert job["counts"]["transactions"] == sum(len(v.rows) for v in document.vouchers)
    first, got = document.vouchers[0], vouchers[0]
    assert (got["series"], got["number"], got["date"]) == (first.series, first.number, first.date.isoformat())
    assert [(r["account"], Decimal(r["amount"])) for r in got["rows"]] == [
        (r.account, r.amount) for r in first.rows
    ]
    for voucher in vouchers:
        assert sum(Decimal(r["debit"]) for r in voucher["rows"]) == sum(
            Decimal(r["credit"]) for r in voucher["rows"]
        )


async def test_vouchers_filtered_by_account_are_those_with_a_row_on_it(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    closing = await create_closing(client, auth_headers)
    await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    found = await all_pages(
        client, f"/v1/closings/{closing['id']}/vouchers", auth_headers, limit=7, account="1510"
    )

    expected = [v for v in _sie_of(sandbox).vouchers if any(r.account == "1510" for r in v.rows)]
    assert [(v["series"], v["number"]) for v in found] == [(v.series, v.number) for v in expected]
    assert expected


async def test_specifications_tie_to_the_open_invoices_at_year_end(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    closing = await create_closing(client, auth_headers)
    await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    response = await client.get(f"/v1/closings/{closing['id']}/specifications", headers=auth_headers)

    assert response.status_code == 200
    specs = {s["account"]: s for s in response.json()["items"]}
    assert list(specs) == ["1510", "2440"]
    company = sandbox.company
    receivables = specs["1510"]
    assert Decimal(receivables["ledger_balance"]) == company.ledger_balance(1510, YEAR_END)
    assert Decimal(receivables["items_total"]) == sum(Decimal(i["open_amount"]) for i in receivables["items"])
    assert Decimal(receivables["difference"]) == 0
    assert receivables["items"]
    payables = specs["2440"]
    # 2440 is a credit balance (negative in SIE), shown positive like the open supplier invoices
    assert Decimal(payables["ledger_balance"]) == -company.ledger_balance(2440, YEAR_END) > 0
    assert Decimal(payables["items_total"]) == Decimal(payables["ledger_balance"])
    assert Decimal(payables["difference"]) == 0
    # invoices that were open at the year end only: nothing paid by then, nothing cancelled
    open_numbers = {i["document_number"] for i in receivables["items"]}
    cancelled = {inv.number for inv in company.invoices if inv.cancelled or not inv.booked}
    assert not open_numbers & cancelled


async def test_import_renews_fortnox_and_emits_the_completed_event(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    async with sessionmaker() as session:
        before = (await session.execute(select(FortnoxConnection.last_used_at))).scalar_one()
    closing = await create_closing(client, auth_headers)

    job = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    async with sessionmaker() as session:
        after = (await session.execute(select(FortnoxConnection.last_used_at))).scalar_one()
        events = (
            (await session.execute(select(OutboxEvent).where(OutboxEvent.type == "fortnox.import.completed")))
            .scalars()
            .all()
        )
    assert after > before
    assert [(e.company_id, e.payload["import_id"]) for e in events] == [(company_id, job["id"])]


async def test_no_matching_financial_year_fails_the_import_with_a_clear_message(
    client: httpx.AsyncClient, auth_headers: dict[str, str], connected: None, run_jobs: RunJobs
) -> None:
    closing = await create_closing(client, auth_headers, start=dt.date(2025, 7, 1), end=dt.date(2026, 6, 30))

    job = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    assert job["status"] == "failed"
    assert job["error"]["code"] == "financial_year_not_found"
    assert "2025-07-01 – 2026-06-30" in job["error"]["message"]
    assert job["error"]["retryable"] is False
    accounts = await client.get(f"/v1/closings/{closing['id']}/accounts", headers=auth_headers)
    assert accounts.status_code == 409


async def test_import_without_a_fortnox_connection_fails_the_job(
    client: httpx.AsyncClient, auth_headers: dict[str, str], run_jobs: RunJobs
) -> None:
    closing = await create_closing(client, auth_headers)

    job = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    assert job["status"] == "failed"
    assert job["error"]["code"] == "fortnox_not_connected"


async def test_fortnox_import_of_a_sie_closing_is_409(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    closing = await create_closing(client, auth_headers, source="sie")

    response = await client.post(f"/v1/closings/{closing['id']}/imports", headers=auth_headers)

    assert response.status_code == 409
    assert response.json()["code"] == "data_source_mismatch"


async def _row_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessionmaker() as session:
        counts: dict[str, int] = defaultdict(int)
        for model in (ClosingVoucher, ClosingVoucherRow):
            for import_id, n in (
                await session.execute(select(model.import_id, func.count()).group_by(model.import_id))
            ).all():
                counts[str(import_id)] += n
        return dict(counts)


async def test_a_reimport_replaces_the_previous_data(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    closing = await create_closing(client, auth_headers)
    first = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])
    # a voucher booked in Fortnox after the first import
    sandbox.company.add_voucher(
        "A",
        dt.date(2025, 12, 30),
        "Sen korrigering",
        [SandboxRow(6570, debit=Decimal(99)), SandboxRow(1930, credit=Decimal(99))],
    )

    second = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    assert second["status"] == "succeeded"
    assert second["counts"]["vouchers"] == first["counts"]["vouchers"] + 1
    counts = await _row_counts(sessionmaker)
    assert list(counts) == [second["id"]]
    current = (await client.get(f"/v1/closings/{closing['id']}", headers=auth_headers)).json()
    assert current["current_import_id"] == second["id"]
    bank = [
        r
        for r in await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)
        if r["number"] == "6570"
    ]
    assert Decimal(bank[0]["closing_balance"]) == sandbox.company.balances(2)[2][6570]


async def test_a_failed_reimport_leaves_the_closing_as_it_was(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    closing = await create_closing(client, auth_headers)
    first = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])
    before = await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers)
    sandbox.faults.fail_next("/3/sie", count=10, status=503)

    second = await import_from_fortnox(client, auth_headers, run_jobs, closing["id"])

    assert second["status"] == "failed"
    assert second["error"]["retryable"] is True
    current = (await client.get(f"/v1/closings/{closing['id']}", headers=auth_headers)).json()
    assert current["current_import_id"] == first["id"]
    assert await all_pages(client, f"/v1/closings/{closing['id']}/accounts", auth_headers) == before


async def _calls_for_import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    run_jobs: RunJobs,
    transports: dict[str, Any],
    vouchers: int,
) -> tuple[int, int]:
    app = create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=9, vouchers=vouchers, year=2025), enforce_rate_limit=False
    )
    transport = httpx.ASGITransport(app=app, root_path=SANDBOX_ROOT)
    transports["fortnox"] = transport
    await connect_fortnox(client, headers, transport)
    state: SandboxFortnox = app.state.fortnox
    closing = await create_closing(client, headers)
    before = state.counters.api_requests
    job = await import_from_fortnox(client, headers, run_jobs, closing["id"])
    assert job["status"] == "succeeded"
    return state.counters.api_requests - before, job["counts"]["vouchers"]


async def test_the_number_of_fortnox_calls_does_not_grow_with_the_vouchers(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    run_jobs: RunJobs,
    transports: dict[str, Any],
    app: Any,
) -> None:
    app.state.transports = transports  # the app copied the map at creation; the jobs read `transports`
    small_calls, small_vouchers = await _calls_for_import(client, auth_headers, run_jobs, transports, 150)
    large_calls, large_vouchers = await _calls_for_import(client, auth_headers, run_jobs, transports, 900)

    assert large_vouchers >= 5 * small_vouchers
    assert large_calls == small_calls
