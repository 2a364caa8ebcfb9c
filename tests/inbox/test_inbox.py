"""Transactions to book: filters, keyset pagination, status rules; to-dos."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx

from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, ConnectionStatus
from ledgerlink.sync.service import write_transactions
from tests.conftest import make_token


async def seed(sessionmaker: Any, company_id: uuid.UUID) -> uuid.UUID:
    async with sessionmaker() as s:
        conn = BankConnection(
            id=uuid.uuid4(),
            company_id=company_id,
            bank_id="sandbox",
            account_type="business",
            status=ConnectionStatus.active,
        )
        s.add(conn)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(),
            company_id=company_id,
            connection_id=conn.id,
            bank_id="sandbox",
            external_id="ftg-x",
            identity_key="ftg-x",
            currency="SEK",
            ledger_account="1930",
            sync_from=dt.date(2026, 1, 1),
            status=AccountStatus.active,
        )
        s.add(account)
        await s.commit()
    txs = [
        BankTransaction(
            BookingStatus.booked,
            Decimal(f"-{i}.50"),
            "SEK",
            dt.date(2026, 1, 1) + dt.timedelta(days=i % 5),
            provider_id=f"T{i}",
            counterparty="ICA Supermarket" if i % 2 else "Telia Sverige AB",
            description=f"köp {i}",
        )
        for i in range(12)
    ] + [
        BankTransaction(
            BookingStatus.pending,
            Decimal("-9.00"),
            "SEK",
            dt.date(2026, 1, 6),
            provider_id="P1",
            counterparty="SJ AB",
        )
    ]
    await write_transactions(sessionmaker, company_id, account.id, txs)
    return account.id


async def test_list_filters_pages_and_bulk_rules(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    settings: Any,
) -> None:
    account_id = await seed(sessionmaker, company_id)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 5, "bank_account_id": str(account_id)} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/transactions", params=params, headers=auth_headers)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 13 and len({t["id"] for t in seen}) == 13
    keys = [(t["booking_date"], t["id"]) for t in seen]
    assert keys == sorted(keys, reverse=True)
    assert seen[0]["amount"] == "-9.00" and seen[0]["ledger_account"] == "1930"
    ica = (
        await client.get(
            "/v1/transactions", params={"q": "ica", "booking_status": "booked"}, headers=auth_headers
        )
    ).json()["items"]
    assert len(ica) == 6 and all("ICA" in t["counterparty"] for t in ica)
    ranged = (
        await client.get(
            "/v1/transactions", params={"from": "2026-01-02", "to": "2026-01-03"}, headers=auth_headers
        )
    ).json()["items"]
    assert {t["booking_date"] for t in ranged} == {"2026-01-02", "2026-01-03"}

    pending_id = next(t["id"] for t in seen if t["booking_status"] == "pending")
    booked_ids = [t["id"] for t in seen if t["booking_status"] == "booked"][:3]
    refused = await client.post(
        "/v1/transactions/bulk-status",
        json={"ids": [*booked_ids, pending_id], "status": "booked"},
        headers=auth_headers,
    )
    assert refused.status_code == 422 and pending_id in refused.json()["detail"]
    unknown = str(uuid.uuid4())
    missing = await client.post(
        "/v1/transactions/bulk-status",
        json={"ids": [*booked_ids, unknown], "status": "booked"},
        headers=auth_headers,
    )
    assert missing.status_code == 404 and unknown in missing.json()["detail"]
    unbooked = (
        await client.get("/v1/transactions", params={"status": "unbooked"}, headers=auth_headers)
    ).json()["items"]
    assert len(unbooked) == 13  # all or nothing: nothing changed
    done = await client.post(
        "/v1/transactions/bulk-status", json={"ids": booked_ids, "status": "booked"}, headers=auth_headers
    )
    assert done.status_code == 200 and done.json()["updated"] == 3
    patched = await client.patch(
        f"/v1/transactions/{pending_id}", json={"status": "ignored"}, headers=auth_headers
    )
    assert patched.json()["status"] == "ignored"

    todos = (await client.get("/v1/todos", headers=auth_headers)).json()["items"]
    [to_book] = [t for t in todos if t["type"] == "transactions_to_book"]
    assert to_book["count"] == 12 - 3 and to_book["bank_account_id"] == str(account_id)

    foreign = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}
    assert (
        await client.patch(f"/v1/transactions/{pending_id}", json={"status": "ignored"}, headers=foreign)
    ).status_code == 404


async def test_list_page_is_the_declared_model_as_the_orm_path_renders_it(
    client: httpx.AsyncClient, auth_headers: dict[str, str], company_id: uuid.UUID, sessionmaker: Any
) -> None:
    """The list is rendered from column rows without model validation: it must equal, item for item,
    what the ORM path (``_read``, used by PATCH and bulk) gives, and validate as Page[TransactionRead]."""
    from sqlalchemy import select

    from ledgerlink.inbox.schemas import TransactionRead
    from ledgerlink.inbox.service import _read
    from ledgerlink.models import ImportedTransaction as TxRow
    from ledgerlink.pagination import Page

    account_id = await seed(sessionmaker, company_id)
    response = await client.get("/v1/transactions", params={"limit": 500}, headers=auth_headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    Page[TransactionRead].model_validate(body)
    async with sessionmaker() as s:
        rows = {r.id: r for r in (await s.execute(select(TxRow))).scalars()}
    assert len(body["items"]) == len(rows) == 13
    for item in body["items"]:
        expected = _read(rows[uuid.UUID(item["id"])], {account_id: "1930"}).model_dump(mode="json")
        assert item == expected


_LIST_QUERIES: list[dict[str, Any]] = [
    {"limit": 5},
    {"limit": 4, "status": "unbooked"},
    {"q": "ica", "booking_status": "booked", "limit": 2},
    {"from": "2026-01-02", "to": "2026-01-03", "limit": 3},
    {"booking_status": "pending"},
    {"q": "100%_\\"},
]


async def _walk(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every page of one query, following next_cursor; checks the keyset order on the way."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await client.get(
            "/v1/transactions", params=params | ({"cursor": cursor} if cursor else {}), headers=headers
        )
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    keys = [(t["booking_date"], t["id"]) for t in seen]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)
    return seen


async def test_the_list_answers_the_same_on_sqlite_as_on_postgresql(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    """The page's prebuilt statement runs on asyncpg with PostgreSQL and through SQLAlchemy Core with
    SQLite (``make run``): the same rows for every filter shape and cursor (ids differ: each database
    got its own seed)."""
    import asyncio

    from ledgerlink.db.migrate import upgrade
    from ledgerlink.main import create_app

    def content(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted(tuple(v for k, v in t.items() if k not in ("id", "bank_account_id")) for t in items)

    await seed(sessionmaker, company_id)
    url = f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db"
    await asyncio.to_thread(upgrade, "head", url)
    lite = settings.model_copy(update={"database_url": url, "redis_url": None})
    app = create_app(lite, start_cron=False)
    async with app.router.lifespan_context(app):
        await seed(app.state.sessionmaker, company_id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as embedded:
            for params in _LIST_QUERIES:
                on_pg = await _walk(client, auth_headers, params)
                on_sqlite = await _walk(embedded, auth_headers, params)
                assert content(on_pg) == content(on_sqlite), params
                assert on_pg or params.get("q") == "100%_\\", params
