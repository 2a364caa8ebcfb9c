"""A Python client generated from the committed ``openapi.yaml`` walks the bank journey and the Fortnox
journey against the app, with no hand-written request: every call below goes through the generated
package (only the user's browser at the sandbox login pages is plain HTTP).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.config import Settings
from ledgerlink.models import Company, OutboxEvent, Plan
from ledgerlink.openapi.document import WEBHOOK_PAYLOADS
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sie import read_document
from tests.conftest import make_token
from tests.contract.conftest import Generated

REDIRECT = "https://app.example.test/callback"  # on the test settings' allow-list
STOCKHOLM_TODAY = dt.datetime.now(ZoneInfo("Europe/Stockholm")).date()


@pytest.fixture
def fortnox_app() -> FastAPI:
    return create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=5, vouchers=150, year=2025), enforce_rate_limit=False
    )


@pytest.fixture
def bank_transport() -> httpx.ASGITransport:
    bank = create_sandbox_bank_app(slow_seconds=0.0)
    return httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)]))


@pytest.fixture
def fortnox_transport(fortnox_app: FastAPI) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=fortnox_app, root_path="/sandbox/fortnox")


@pytest.fixture
def transports(
    bank_transport: httpx.ASGITransport, fortnox_transport: httpx.ASGITransport
) -> dict[str, httpx.AsyncBaseTransport]:
    return {"sandbox": bank_transport, "fortnox": fortnox_transport}


@pytest.fixture
async def api(
    generated_client: Generated,
    app: Any,
    settings: Settings,
    company_id: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Any]:
    """The generated ``AuthenticatedClient`` over the app (ASGI), for a Business company."""
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Kaffekoppen AB", plan=Plan.business))
        await s.commit()
    token = make_token(settings, company_id)
    client_module = generated_client.module("client")
    api = client_module.AuthenticatedClient(base_url="http://testserver", token=token)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
    ) as http:
        api.set_async_httpx_client(http)
        yield api


def _parsed(response: Any, status: int, model: str, generated: Generated) -> Any:
    """The parsed body of a generated ``Response``: the declared status and the declared model (and,
    for a 201/202, the ``Location`` the spec declares)."""
    assert response.status_code == status, response.content
    if status in (201, 202):
        assert response.headers["location"].startswith("/v1/"), response.headers
    expected = getattr(generated.module("models"), model)
    assert isinstance(response.parsed, expected), (type(response.parsed), response.content)
    return response.parsed


async def _events_match_the_declared_webhooks(
    sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID, expected: set[str]
) -> None:
    """Every event the journey emitted validates against the payload the spec declares for its type."""
    async with sessionmaker() as s:
        events = (await s.execute(select(OutboxEvent).where(OutboxEvent.company_id == company_id))).scalars()
        seen = set()
        for event in events:
            WEBHOOK_PAYLOADS[event.type].model_validate(event.payload)
            seen.add(event.type)
    assert expected <= seen


async def _browser_approves(transport: httpx.ASGITransport, url: str) -> dict[str, str]:
    """The user clicks approve on the sandbox login page; the 302 carries ``code`` and ``state``."""
    async with httpx.AsyncClient(transport=transport) as browser:
        page = await browser.get(url + ("&" if "?" in url else "?") + "approve=1")
    assert page.status_code == 302, page.text
    return {k: v[0] for k, v in parse_qs(urlsplit(page.headers["location"]).query).items()}


def test_the_committed_spec_generates_a_client_without_warnings(generated_client: Generated) -> None:
    assert "Warning" not in generated_client.output, generated_client.output
    assert "Unable to parse" not in generated_client.output, generated_client.output


async def test_the_bank_journey_through_the_generated_client(
    generated_client: Generated,
    api: Any,
    bank_transport: httpx.ASGITransport,
    run_jobs: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    g = generated_client
    m = g.module("models")
    banks = _parsed(await g.module("api.banks.list_banks").asyncio_detailed(client=api), 200, "BankList", g)
    assert "sandbox" in [b.id for b in banks.items]

    created = _parsed(
        await g.module("api.banks.create_bank_connection").asyncio_detailed(
            client=api,
            body=m.ConnectionCreate(
                bank_id="sandbox",
                account_type=m.ConnectionCreateAccountType.BUSINESS,
                redirect_uri=REDIRECT,
                psu_id="anna",
            ),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        "ConnectionCreated",
        g,
    )
    assert isinstance(created.authorization, m.RedirectAuthorization)
    back = await _browser_approves(bank_transport, created.authorization.url)
    connection = _parsed(
        await g.module("api.banks.complete_bank_authorization").asyncio_detailed(
            created.id, client=api, body=m.AuthorizationComplete(code=back["code"], state=back["state"])
        ),
        200,
        "ConnectionRead",
        g,
    )
    assert connection.status.value == "active"

    available = _parsed(
        await g.module("api.banks.list_available_accounts").asyncio_detailed(connection.id, client=api),
        200,
        "AvailableAccountList",
        g,
    )
    business = next(a for a in available.items if a.external_id.startswith("ftg"))
    account = _parsed(
        await g.module("api.banks.create_bank_account").asyncio_detailed(
            client=api,
            body=m.BankAccountCreate(
                connection_id=connection.id,
                external_id=business.external_id,
                sync_from=STOCKHOLM_TODAY - dt.timedelta(days=30),
                ledger_account="1930",
            ),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        "BankAccountRead",
        g,
    )
    assert account.status.value == "pending_confirmation"

    run = _parsed(
        await g.module("api.banks.confirm_bank_account").asyncio_detailed(account.id, client=api),
        202,
        "BankAccountSyncRun",
        g,
    )
    assert run.trigger.value == "initial"
    await run_jobs()

    page = _parsed(
        await g.module("api.inbox.list_transactions").asyncio_detailed(
            client=api, bank_account_id=account.id, limit=500
        ),
        200,
        "PageTransactionRead",
        g,
    )
    assert page.items, "the initial import brought no transactions"
    assert {t.bank_account_id for t in page.items} == {account.id}
    assert all(isinstance(Decimal(t.amount), Decimal) for t in page.items)
    await _events_match_the_declared_webhooks(
        sessionmaker, company_id, {"bank_account.synced", "transactions.available"}
    )

    # unbooked_count is one number: the account, the to-do and the list of bookable rows agree, and
    # the pending rows the list shows are not in it
    statuses = [t.booking_status for t in page.items]
    assert "pending" in statuses, "the sandbox account has no pending row: the check below proves nothing"
    bookable = sum(1 for t in page.items if t.booking_status == "booked" and t.status == "unbooked")
    shown = _parsed(
        await g.module("api.banks.get_bank_account").asyncio_detailed(account.id, client=api),
        200,
        "BankAccountRead",
        g,
    )
    todos = _parsed(await g.module("api.inbox.list_todos").asyncio_detailed(client=api), 200, "TodoList", g)
    to_book = [t for t in todos.items if isinstance(t, m.TransactionsToBookTodo)]
    assert [t.bank_account_id for t in to_book] == [account.id]
    assert shown.unbooked_count == to_book[0].count == bookable > 0


async def test_the_fortnox_journey_through_the_generated_client(
    generated_client: Generated,
    api: Any,
    fortnox_transport: httpx.ASGITransport,
    run_jobs: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    g = generated_client
    m = g.module("models")
    fortnox = "api.fortnox."
    started = await g.module(fortnox + "start_authorization").asyncio_detailed(
        client=api, body=m.FortnoxAuthorizationRequest(redirect_uri=REDIRECT)
    )
    assert started.status_code == 200, started.content
    back = await _browser_approves(fortnox_transport, started.parsed.authorization_url)
    connected = _parsed(
        await g.module(fortnox + "complete_authorization").asyncio_detailed(
            client=api,
            body=m.FortnoxAuthorizationCallback(code=back["code"], state=back["state"]),
            idempotency_key=str(uuid.uuid4()),
        ),
        200,
        "FortnoxConnectionRead",
        g,
    )
    assert connected.status.value == "active"
    read = _parsed(
        await g.module(fortnox + "get_connection").asyncio_detailed(client=api),
        200,
        "FortnoxConnectionRead",
        g,
    )
    assert read.status.value == "active" and read.fortnox_company_name

    years = _parsed(
        await g.module(fortnox + "list_financial_years").asyncio_detailed(client=api),
        200,
        "FinancialYearList",
        g,
    )
    year = max(years.items, key=lambda y: y.from_date)
    closing = _parsed(
        await g.module("api.closings.create_closing").asyncio_detailed(
            client=api,
            body=m.ClosingCreate(
                financial_year_start=year.from_date,
                financial_year_end=year.to_date,
                data_source=m.DataSource.FORTNOX,
            ),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        "ClosingOut",
        g,
    )
    job = _parsed(
        await g.module("api.closings.start_import").asyncio_detailed(closing.id, client=api),
        202,
        "ImportOut",
        g,
    )
    await run_jobs()
    imported = _parsed(
        await g.module("api.closings.get_import").asyncio_detailed(closing.id, job.id, client=api),
        200,
        "ImportOut",
        g,
    )
    assert imported.status.value == "succeeded", imported.to_dict()

    specifications = await g.module("api.closings.specifications").asyncio_detailed(closing.id, client=api)
    assert specifications.status_code == 200, specifications.content
    accounts = [s.account for s in _parsed(specifications, 200, "SpecificationList", g).items]
    assert accounts == ["1510", "2440"]

    adjustment = _parsed(
        await g.module("api.closings.create_adjustment").asyncio_detailed(
            closing.id,
            client=api,
            body=m.AdjustmentCreate(
                date=year.to_date,
                description="Periodisering",
                rows=[
                    m.AdjustmentRowIn(account="6570", debit="1250.00", description="Kostnad"),
                    m.AdjustmentRowIn(account="1930", credit="1250.00"),
                ],
            ),
            idempotency_key=str(uuid.uuid4()),
        ),
        201,
        "AdjustmentOut",
        g,
    )
    series = _parsed(
        await g.module(fortnox + "list_voucher_series").asyncio_detailed(
            client=api, financial_year_id=year.id
        ),
        200,
        "VoucherSeriesList",
        g,
    )
    manual = next(s.code for s in series.items if s.manual)
    export = _parsed(
        await g.module("api.closings.start_export").asyncio_detailed(
            closing.id,
            client=api,
            body=m.ExportCreate(target="fortnox", voucher_series=manual, adjustment_ids=[adjustment.id]),
            idempotency_key=str(uuid.uuid4()),
        ),
        202,
        "ExportOut",
        g,
    )
    await run_jobs()
    exported = _parsed(
        await g.module("api.closings.get_export").asyncio_detailed(closing.id, export.id, client=api),
        200,
        "ExportOut",
        g,
    )
    assert exported.status.value == "succeeded", exported.to_dict()
    assert [i.adjustment_id for i in exported.items] == [adjustment.id]
    assert exported.items[0].fortnox_voucher.series == manual

    sie = await g.module("api.closings.adjustments_sie").asyncio_detailed(closing.id, client=api)
    assert sie.status_code == 200, sie.content
    assert isinstance(sie.parsed, g.module("types").File)
    document = read_document(sie.parsed.payload.read())
    assert len(document.vouchers) == 1
    assert {row.account for row in document.vouchers[0].rows} == {"6570", "1930"}
    await _events_match_the_declared_webhooks(
        sessionmaker, company_id, {"fortnox.import.completed", "fortnox.export.completed"}
    )
