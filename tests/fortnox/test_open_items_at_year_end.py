"""The client's year-end open items on a company whose payments span several listing pages: the same
items as the reconstruction from every invoice and every payment, without reading every page."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi import FastAPI

from ledgerlink.fortnox.client import PAGE_LIMIT, FortnoxClient, open_items_at, total_open
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sie import read_document

YEAR_END = dt.date(2025, 12, 31)


@pytest.fixture
def sandbox_app() -> FastAPI:
    return create_sandbox_fortnox_app(company=SandboxCompany.generate(seed=3, vouchers=20_000, year=2025))


@pytest.mark.parametrize("supplier", [False, True])
async def test_open_items_read_only_the_pages_they_need(
    client: FortnoxClient, sandbox: SandboxFortnox, supplier: bool
) -> None:
    company = sandbox.company
    payments = company.supplier_payments if supplier else company.invoice_payments
    pages = -(-len(payments) // PAGE_LIMIT)
    assert pages >= 3  # the listing has pages the year end does not need

    listing = "/3/supplierinvoicepayments" if supplier else "/3/invoicepayments"
    before = sandbox.counters.by_path[f"GET {listing}"]
    if supplier:
        found = await client.supplier_open_items_at(YEAR_END)
    else:
        found = await client.customer_open_items_at(YEAR_END)
    payment_calls = sandbox.counters.by_path[f"GET {listing}"] - before

    if supplier:
        everything = open_items_at(
            await client.supplier_invoices(), await client.supplier_invoice_payments(), YEAR_END
        )
    else:
        everything = open_items_at(await client.invoices(), await client.invoice_payments(), YEAR_END)
    assert found == everything
    assert payment_calls < pages

    ub = {(b.year, b.account): b.amount for b in read_document(await client.sie_export(2)).closing_balances}
    assert total_open(found) == (-ub[(0, "2440")] if supplier else ub[(0, "1510")])
