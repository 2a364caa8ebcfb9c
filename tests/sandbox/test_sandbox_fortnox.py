from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sie import read_document

YEAR_END = dt.date(2025, 12, 31)


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=3, vouchers=160), enforce_rate_limit=False
    )


@pytest.fixture
def state(app: FastAPI) -> SandboxFortnox:
    sandbox: SandboxFortnox = app.state.fortnox
    return sandbox


@pytest.fixture
async def api(app: FastAPI, state: SandboxFortnox) -> AsyncIterator[httpx.AsyncClient]:
    token = state.issue_tokens()["access_token"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fortnox.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:  # fmt: skip
        yield client


def test_generation_is_deterministic_and_balanced() -> None:
    first, second = SandboxCompany.generate(seed=11), SandboxCompany.generate(seed=11)
    assert [(v.series, v.number, v.date, v.rows) for v in first.vouchers] == [
        (v.series, v.number, v.date, v.rows) for v in second.vouchers
    ]
    assert all(sum(r.amount for r in v.rows) == 0 for v in first.vouchers)
    current = [v for v in first.vouchers if v.year_id == 2]
    assert 180 <= len(current) <= 230  # about the requested 200
    assert {v.series for v in current} >= {"A", "B", "C", "D", "E", "I", "M"}
    _, ub, res = first.balances(2)
    assert sum(ub.values()) + sum(res.values()) == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_receivables_and_payables_tie_to_open_invoices(seed: int) -> None:
    company = SandboxCompany.generate(seed=seed, vouchers=120)
    for year_end in (dt.date(2024, 12, 31), YEAR_END):
        for invoices, account, sign in ((company.invoices, 1510, 1), (company.supplier_invoices, 2440, -1)):
            open_total = Decimal(0)
            for inv in invoices:
                final = company.final_pay_date(inv)
                if (
                    inv.booked
                    and not inv.cancelled
                    and inv.invoice_date <= year_end
                    and (final is None or final > year_end)
                ):
                    paid = sum(p.amount for p in company.payments_of(inv) if p.payment_date <= year_end)
                    open_total += inv.total - paid
            assert open_total != 0
            assert company.ledger_balance(account, year_end) == sign * open_total


async def test_api_requires_a_valid_bearer_token(app: FastAPI, state: SandboxFortnox) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as anonymous:
        response = await anonymous.get("/3/companyinformation")
        assert response.status_code == 401
        assert response.json() == {"message": "unauthorized"}
        token = state.issue_tokens()["access_token"]
        state.expire_access_tokens()
        expired = await anonymous.get("/3/companyinformation", headers={"Authorization": f"Bearer {token}"})
        assert expired.status_code == 401


async def test_paging_meta_information(api: httpx.AsyncClient, state: SandboxFortnox) -> None:
    total = sum(1 for v in state.company.vouchers if v.year_id == 2)
    first = (await api.get("/3/vouchers", params={"financialyear": 2, "limit": 50})).json()
    assert first["MetaInformation"] == {
        "@TotalResources": total, "@TotalPages": (total + 49) // 50, "@CurrentPage": 1,
    }  # fmt: skip
    assert len(first["Vouchers"]) == 50 and "VoucherRows" not in first["Vouchers"][0]
    empty = (await api.get("/3/financialyears", params={"date": "2030-01-01"})).json()
    assert empty["MetaInformation"]["@TotalPages"] == 0 and empty["FinancialYears"] == []
    bad = await api.get("/3/vouchers", params={"limit": 501})
    assert bad.status_code == 400
    assert bad.json()["ErrorInformation"]["code"] == 2000588


async def test_invoice_filters(api: httpx.AsyncClient, state: SandboxFortnox) -> None:
    unpaid = (await api.get("/3/invoices", params={"filter": "unpaid", "limit": 500})).json()["Invoices"]
    assert unpaid and all(Decimal(str(i["Balance"])) != 0 and not i["Cancelled"] for i in unpaid)
    paid_after = (
        await api.get(
            "/3/invoices", params={"fromfinalpaydate": "2026-01-01", "todate": "2025-12-31", "limit": 500}
        )
    ).json()["Invoices"]
    assert paid_after and all(
        i["FinalPayDate"] >= "2026-01-01" and i["InvoiceDate"] <= "2025-12-31" for i in paid_after
    )
    cancelled = (await api.get("/3/invoices", params={"filter": "cancelled"})).json()["Invoices"]
    assert [i["Cancelled"] for i in cancelled] == [True]
    wrong = await api.get("/3/invoices", params={"filter": "nonsense"})
    assert wrong.json()["ErrorInformation"]["code"] == 2000587
    supplier = (await api.get("/3/supplierinvoices", params={"limit": 500})).json()["SupplierInvoices"]
    assert all(isinstance(s["Total"], str) for s in supplier)  # as Fortnox types them


async def test_voucher_numbering_continues_per_series(api: httpx.AsyncClient, state: SandboxFortnox) -> None:
    expected = state.company.next_number(2, "A")
    body = {"Voucher": {"VoucherSeries": "A", "TransactionDate": "2025-12-31", "Description": "Test",
                        "VoucherRows": [{"Account": 6110, "Debit": 10.00, "Credit": 0},
                                        {"Account": 1930, "Debit": 0, "Credit": 10.00}]}}  # fmt: skip
    first = await api.post("/3/vouchers", json=body)
    second = await api.post("/3/vouchers", json=body)
    assert first.status_code == second.status_code == 201
    assert [first.json()["Voucher"]["VoucherNumber"], second.json()["Voucher"]["VoucherNumber"]] == [
        expected,
        expected + 1,
    ]
    assert state.counters.created_vouchers == 2
    bad_json = await api.post(
        "/3/vouchers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.json()["ErrorInformation"]["code"] == 2002115


async def test_sie_export_is_cp437_4e_with_balances(api: httpx.AsyncClient, state: SandboxFortnox) -> None:
    response = await api.get("/3/sie/4", params={"financialyear": 2})
    assert response.status_code == 200
    assert "Årets resultat".encode("cp437") in response.content
    document = read_document(response.content)
    assert document.variant == "4E"
    assert len(document.vouchers) == sum(1 for v in state.company.vouchers if v.year_id == 2)
    _, ub, _ = state.company.balances(2)
    closing = {b.account: b.amount for b in document.closing_balances if b.year == 0}
    assert closing["1510"] == ub[1510] and closing["2440"] == ub[2440]
    assert document.diagnostics.unbalanced_vouchers == []


async def test_rate_limit_answers_429_past_25_in_5_seconds() -> None:
    app = create_sandbox_fortnox_app(company=SandboxCompany.generate(seed=1, vouchers=120))
    state: SandboxFortnox = app.state.fortnox
    token = state.issue_tokens()["access_token"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        statuses = [
            (
                await client.get("/3/settings/lockedperiod", headers={"Authorization": f"Bearer {token}"})
            ).status_code
            for _ in range(27)
        ]
    assert statuses.count(200) == 25 and statuses[25:] == [429, 429]
    assert state.counters.rate_limited == 2


async def test_works_mounted_under_a_prefix(state: SandboxFortnox) -> None:
    """The dev app mounts the sandbox at /sandbox/fortnox: links and redirects stay inside it."""
    sandbox_app = create_sandbox_fortnox_app(company=SandboxCompany.generate(seed=2, vouchers=120))
    parent = FastAPI()
    parent.mount("/sandbox/fortnox", sandbox_app)
    inner: SandboxFortnox = sandbox_app.state.fortnox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=parent), base_url="http://127.0.0.1:8000"
    ) as c:
        page = await c.get("/sandbox/fortnox/oauth-v1/auth", params={
            "client_id": "sandbox-client", "redirect_uri": "http://localhost:3000/callback", "state": "s",
            "response_type": "code", "scope": "bookkeeping",
        })  # fmt: skip
        assert page.status_code == 200 and 'action="auth"' in page.text
        token = inner.issue_tokens()["access_token"]
        info = await c.get(
            "/sandbox/fortnox/3/companyinformation", headers={"Authorization": f"Bearer {token}"}
        )
        assert info.json()["CompanyInformation"]["CompanyName"] == inner.company.name
    assert inner.counters.by_path["GET /3/companyinformation"] == 1
