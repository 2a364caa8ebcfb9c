"""Statement imports through the API against real PostgreSQL: preview, commit, deduplication against
the feed, one row for two sources, refusals with nothing written, tenant scoping, the balance check."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.banks.adapters.base import BankTransaction as FeedRow
from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    Company,
    ConnectionStatus,
    ImportedTransaction,
    Plan,
    StatementImport,
    Todo,
)
from ledgerlink.models.events import OutboxEvent
from ledgerlink.statements.service import reconcile, record_bank_balance
from ledgerlink.sync.service.common import write_transactions
from tests.conftest import make_token
from tests.statements import files

D = dt.date
IBAN = "SE4550000000058398257466"


async def make_account(sm: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> uuid.UUID:
    async with sm() as s:
        if await s.get(Company, company_id) is None:
            s.add(Company(id=company_id, name="Kaffekoppen AB", plan=Plan.business))
        conn = BankConnection(
            company_id=company_id, bank_id="sandbox", account_type="business", status=ConnectionStatus.active
        )
        s.add(conn)
        await s.flush()
        account = BankAccount(
            company_id=company_id,
            connection_id=conn.id,
            bank_id="sandbox",
            external_id=f"ftg-{uuid.uuid4().hex[:6]}",
            identity_key=f"{IBAN}-{uuid.uuid4().hex[:6]}",
            iban=IBAN,
            currency="SEK",
            sync_from=D(2026, 1, 1),
            status=AccountStatus.active,
        )
        s.add(account)
        await s.commit()
        return account.id


def feed(day: dt.date, amount: str, text: str, pid: str | None = None, after: str | None = None) -> FeedRow:
    raw: dict[str, Any] = {}
    if after is not None:
        raw["balanceAfterTransaction"] = {"balanceAmount": {"amount": after, "currency": "SEK"}}
    return FeedRow(
        booking_status=BookingStatus.booked,
        amount=Decimal(amount),
        currency="SEK",
        booking_date=day,
        provider_id=pid,
        description=text,
        raw=raw,
    )


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: uuid.UUID, data: bytes, **form: str
) -> httpx.Response:
    return await client.post(
        f"/v1/bank-accounts/{account_id}/statement-imports",
        headers=headers,
        files={"file": ("statement.dat", data, "application/octet-stream")},
        data=form,
    )


async def commit(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: uuid.UUID, import_id: str
) -> Any:
    answer = await client.post(
        f"/v1/bank-accounts/{account_id}/statement-imports/{import_id}/commit", headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def count_rows(sm: async_sessionmaker[AsyncSession], account_id: uuid.UUID) -> int:
    async with sm() as s:
        return int(
            (
                await s.execute(select(func.count()).where(ImportedTransaction.account_id == account_id))
            ).scalar_one()
        )


FEED = [
    feed(D(2026, 1, 5), "-1234.50", "KORTKÖP ICA KVANTUM", "F1"),
    feed(D(2026, 1, 7), "25000.00", "INBETALNING ÅKESSON AB", "F2"),
]
STATEMENT = [
    (D(2026, 1, 5), Decimal("-1234.50"), "Kortköp ICA Kvantum", Decimal("8765.50")),
    (D(2026, 1, 6), Decimal("-320.00"), "Telia faktura", Decimal("8445.50")),
    (D(2026, 1, 7), Decimal("25000.00"), "Inbetalning Åkesson AB", Decimal("33445.50")),
]


async def test_statement_overlapping_the_feed_inserts_only_what_the_feed_lacks(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    await write_transactions(sessionmaker, company_id, account_id, FEED)
    answer = await upload(client, auth_headers, account_id, files.nordea_csv(STATEMENT))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "preview" and body["format"] == "csv_nordea"
    assert body["counts"] == {"rows": 3, "new": 1, "duplicate": 2, "conflicting": 0}
    assert body["period"] == {"from": "2026-01-05", "to": "2026-01-07"}
    assert await count_rows(sessionmaker, account_id) == 2  # a preview writes no transaction

    rows = await client.get(
        f"/v1/bank-accounts/{account_id}/statement-imports/{body['id']}",
        params={"include": "rows"},
        headers=auth_headers,
    )
    verdicts = [(r["amount"], r["verdict"], r["transaction_id"] is not None) for r in rows.json()["rows"]]
    assert verdicts == [
        ("-1234.50", "duplicate", True),
        ("-320.00", "new", False),
        ("25000.00", "duplicate", True),
    ]

    result = await commit(client, auth_headers, account_id, body["id"])
    assert result["status"] == "committed" and result["counts"] == {"inserted": 1}
    assert await count_rows(sessionmaker, account_id) == 3
    again = await commit(client, auth_headers, account_id, body["id"])
    assert again["counts"] == {"inserted": 1} and await count_rows(sessionmaker, account_id) == 3


@pytest.mark.parametrize(
    "maker",
    [
        lambda rows: files.camt053(
            [{"amount": str(a), "date": d.isoformat(), "text": t} for d, a, t, _ in rows], opening=None
        ),
        files.nordea_csv,
        files.seb_csv,
        files.swedbank_csv,
        files.handelsbanken_xls,
    ],
    ids=["camt053", "nordea", "seb", "swedbank", "handelsbanken"],
)
async def test_the_same_file_twice_inserts_nothing(
    maker: Any,
    client: httpx.AsyncClient,
    sessionmaker: Any,
    company_id: uuid.UUID,
    auth_headers: dict[str, str],
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    data = maker(STATEMENT)
    first = (await upload(client, auth_headers, account_id, data)).json()
    assert first["counts"]["new"] == 3
    second = (
        await upload(client, auth_headers, account_id, data)
    ).json()  # previewed before the first commit
    assert (await commit(client, auth_headers, account_id, first["id"]))["counts"] == {"inserted": 3}
    assert (await commit(client, auth_headers, account_id, second["id"]))["counts"] == {"inserted": 0}
    third = (await upload(client, auth_headers, account_id, data)).json()
    assert third["counts"] == {"rows": 3, "new": 0, "duplicate": 3, "conflicting": 0}
    assert await count_rows(sessionmaker, account_id) == 3


async def test_identical_purchases_stay_two(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    await write_transactions(
        sessionmaker, company_id, account_id, [feed(D(2026, 1, 5), "-45.00", "PRESSBYRAN")]
    )
    rows = [
        (D(2026, 1, 5), Decimal("-45.00"), "Pressbyrån", Decimal("955.00")),
        (D(2026, 1, 5), Decimal("-45.00"), "Pressbyrån", Decimal("910.00")),
    ]
    body = (await upload(client, auth_headers, account_id, files.seb_csv(rows))).json()
    assert body["counts"]["new"] == 1 and body["counts"]["duplicate"] == 1
    await commit(client, auth_headers, account_id, body["id"])
    assert await count_rows(sessionmaker, account_id) == 2


async def test_a_row_from_a_statement_later_delivered_by_the_feed_stays_one_row(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    body = (await upload(client, auth_headers, account_id, files.nordea_csv(STATEMENT))).json()
    await commit(client, auth_headers, account_id, body["id"])
    result = await write_transactions(
        sessionmaker, company_id, account_id, [*FEED, feed(D(2026, 1, 8), "-99.00", "AVGIFT", "F3")]
    )
    assert result.inserted == 1  # only the fee; the two feed rows took over the statement's rows
    assert await count_rows(sessionmaker, account_id) == 4
    again = await write_transactions(sessionmaker, company_id, account_id, FEED)
    assert again.inserted == 0 and await count_rows(sessionmaker, account_id) == 4


async def test_refused_files_are_422_and_write_nothing(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><Document>&b;</Document>'
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document>&x;</Document>'
    )
    broken_csv = files.swedbank_csv(STATEMENT).replace(b'"-320.00"', b'"tre hundra"')
    cases = [
        (bomb, "statement_refused", None),
        (xxe, "statement_refused", None),
        (broken_csv, "statement_unreadable", "line 4"),
    ]
    for data, code, where in cases:
        answer = await upload(client, auth_headers, account_id, data)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == code
        if where:
            assert where in answer.json()["detail"]
    wrong = await upload(client, auth_headers, account_id, files.nordea_csv(STATEMENT), format="csv_seb")
    assert wrong.status_code == 422 and wrong.json()["code"] == "statement_format_unknown"
    other_iban = files.camt053([{"amount": "1.00", "date": "2026-01-05"}], iban="SE3550000000054910000003")
    assert (await upload(client, auth_headers, account_id, other_iban)).json()[
        "code"
    ] == "statement_account_mismatch"
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(StatementImport))).scalar_one() == 0
    assert await count_rows(sessionmaker, account_id) == 0


async def test_another_companys_account_and_import_are_404(
    client: httpx.AsyncClient,
    settings: Any,
    sessionmaker: Any,
    company_id: uuid.UUID,
    auth_headers: dict[str, str],
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    body = (await upload(client, auth_headers, account_id, files.nordea_csv(STATEMENT))).json()
    other = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4(), 'banking')}"}
    assert (await upload(client, other, account_id, files.nordea_csv(STATEMENT))).status_code == 404
    url = f"/v1/bank-accounts/{account_id}/statement-imports/{body['id']}"
    assert (await client.get(url, headers=other)).status_code == 404
    assert (await client.post(url + "/commit", headers=other)).status_code == 404
    assert await count_rows(sessionmaker, account_id) == 0
    closing_only = {"Authorization": f"Bearer {make_token(settings, company_id, 'closing')}"}
    assert (await client.get(url, headers=closing_only)).status_code == 403


async def test_a_dropped_row_is_a_gap_on_its_day_and_a_statement_closes_it(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    # the bank's rows with their balances after; the feed drops the 6 January row
    full = [
        feed(D(2026, 1, 5), "-1234.50", "KORTKÖP ICA", "F1", "8765.50"),
        feed(D(2026, 1, 6), "-320.00", "TELIA", "F9", "8445.50"),
        feed(D(2026, 1, 7), "25000.00", "ÅKESSON AB", "F2", "33445.50"),
    ]
    await write_transactions(sessionmaker, company_id, account_id, [full[0], full[2]])
    at = dt.datetime(2026, 1, 8, 6, tzinfo=dt.UTC)
    async with sessionmaker() as s:
        account = await s.get(BankAccount, account_id)
        assert account is not None
        await record_bank_balance(
            s, account, amount=Decimal("33445.50"), currency="SEK", as_of=D(2026, 1, 8), at=at
        )
        await s.commit()
    read = (await client.get(f"/v1/bank-accounts/{account_id}", headers=auth_headers)).json()
    assert read["reconciliation"]["status"] == "gap"
    assert read["reconciliation"]["gap"] == "-320.00"
    assert read["reconciliation"]["gap_since"] == "2026-01-06"
    assert read["reconciliation"]["bank_balance"] == {"amount": "33445.50", "as_of": "2026-01-08"}
    async with sessionmaker() as s:
        todo = (
            await s.execute(select(Todo).where(Todo.type == "balance_gap", Todo.resolved_at.is_(None)))
        ).scalar_one()
        assert todo.data == {"bank_account_id": str(account_id), "amount": "-320.00", "since": "2026-01-06"}
        events = (
            (await s.execute(select(OutboxEvent).where(OutboxEvent.type == "bank_account.balance_gap")))
            .scalars()
            .all()
        )
        assert len(events) == 1

    statement = [
        (d, a, t, Decimal(str(r.raw["balanceAfterTransaction"]["balanceAmount"]["amount"])))
        for d, a, t, r in [(x.booking_date, x.amount, x.description or "", x) for x in full]
    ]
    body = (await upload(client, auth_headers, account_id, files.swedbank_csv(statement))).json()  # type: ignore[arg-type]
    assert body["counts"]["new"] == 1
    assert (await commit(client, auth_headers, account_id, body["id"]))["counts"] == {"inserted": 1}
    read = (await client.get(f"/v1/bank-accounts/{account_id}", headers=auth_headers)).json()
    assert read["reconciliation"]["status"] == "ok" and read["reconciliation"]["gap"] == "0.00"
    async with sessionmaker() as s:
        open_todos = (
            await s.execute(select(Todo).where(Todo.type == "balance_gap", Todo.resolved_at.is_(None)))
        ).all()
        assert open_todos == []


async def test_pending_rows_are_no_gap(sessionmaker: Any, company_id: uuid.UUID) -> None:
    account_id = await make_account(sessionmaker, company_id)
    pending = FeedRow(
        booking_status=BookingStatus.pending,
        amount=Decimal("-500.00"),
        currency="SEK",
        booking_date=D(2026, 1, 9),
    )
    await write_transactions(sessionmaker, company_id, account_id, [*FEED, pending])
    async with sessionmaker() as s:
        account = await s.get(BankAccount, account_id)
        assert account is not None
        await record_bank_balance(
            s,
            account,
            amount=Decimal("1000.00"),
            currency="SEK",
            as_of=D(2026, 1, 8),
            at=dt.datetime(2026, 1, 9, tzinfo=dt.UTC),
        )
        await record_bank_balance(
            s,
            account,
            amount=Decimal("1000.00"),
            currency="SEK",
            as_of=D(2026, 1, 20),
            at=dt.datetime(2026, 1, 21, tzinfo=dt.UTC),
        )
        saved = await reconcile(s, account, at=dt.datetime(2026, 1, 21, tzinfo=dt.UTC))
        assert saved.status == "ok"


async def test_an_upload_repeated_with_its_idempotency_key_is_one_import(
    client: httpx.AsyncClient, sessionmaker: Any, company_id: uuid.UUID, auth_headers: dict[str, str]
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    headers = {**auth_headers, "Idempotency-Key": "statement-upload-1"}
    first = await upload(client, headers, account_id, files.nordea_csv(STATEMENT))
    second = await upload(client, headers, account_id, files.nordea_csv(STATEMENT))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(StatementImport))).scalar_one() == 1
