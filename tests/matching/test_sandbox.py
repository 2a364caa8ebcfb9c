"""The sandbox walk: the sandbox bank's OCR payments and Bankgiro deposits against its open items."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

from ledgerlink.models import AccountStatus, BankAccount, BankConnection, ConnectionStatus
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.bank_data import sandbox_transactions
from ledgerlink.sandbox.open_items import push_open_items, sandbox_invoices
from ledgerlink.sync.service import write_transactions

FROM, TO, TODAY = dt.date(2026, 1, 1), dt.date(2026, 2, 28), dt.date(2026, 4, 1)


async def test_sandbox_payments_match_and_deposits_split(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    settings: Any,
) -> None:
    async with sessionmaker() as s:
        conn = BankConnection(id=uuid.uuid4(), company_id=company_id, bank_id="sandbox",
                              account_type="business", status=ConnectionStatus.active)  # fmt: skip
        s.add(conn)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(), company_id=company_id, connection_id=conn.id, bank_id="sandbox",
            external_id="ftg-anna", identity_key="ftg-anna", currency="SEK", ledger_account="1930",
            sync_from=FROM, status=AccountStatus.active,
        )  # fmt: skip
        s.add(account)
        await s.commit()
    await write_transactions(
        sessionmaker, company_id, account.id, sandbox_transactions("ftg-anna", FROM, TO, TODAY)
    )
    items, deposits = await push_open_items(settings, company_id, "anna", FROM, TO)
    invoices = sandbox_invoices("anna", FROM, TO, TODAY)
    assert items == len(invoices.open_items) > 0 and deposits == len(invoices.deposits) > 0
    bank = httpx.ASGITransport(create_sandbox_bank_app(clock=lambda: TODAY))
    async with httpx.AsyncClient(transport=bank, base_url="http://sandbox.invalid") as browser:
        bgmax = await browser.get(
            "/bgmax", params={"psu": "anna", "from": FROM.isoformat(), "to": TO.isoformat()}
        )
    assert bgmax.status_code == 200 and bgmax.content.startswith(b"01BGMAX")
    uploaded = await client.post(f"/v1/bank-accounts/{account.id}/bgmax", files={"file": ("bg.txt", bgmax.content)},
                                 headers=auth_headers)  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    assert all(d["transaction_id"] for d in uploaded.json()["deposits"])
    rows, cursor = [], None
    while True:
        params = {"include": "suggestion", "limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/transactions", params=params, headers=auth_headers)).json()
        rows += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    ocr_rows = [r for r in rows if (r["description"] or "").startswith(("BG inbet", "BG ", "PG "))]
    assert ocr_rows
    for r in ocr_rows:
        best = r["suggestion"]
        assert best is not None and best["kind"] == "invoice" and best["unambiguous"], r
        assert best["remainder"]["kind"] == "none"
    split = [r for r in rows if r["parts"]]
    assert len(split) == deposits
    for r in split:
        assert len(r["suggestion"]["allocations"]) == len(r["parts"])
