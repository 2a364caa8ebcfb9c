"""Values a client sends are checked at the edge: money is a bounded decimal string (never a JSON number,
an exponent, NaN or Infinity), account numbers are ASCII digits, a sync window lies inside the account's
window. Each refusal is a 422 naming the field, and nothing is written."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    Company,
    ConnectionStatus,
    Plan,
    SyncRun,
)
from ledgerlink.models.closing import Adjustment
from ledgerlink.schema_types import AccountNumberIn, MoneyIn
from tests.conftest import make_token


class Amount(BaseModel):
    amount: MoneyIn
    account: AccountNumberIn = "1930"


@pytest.mark.parametrize(
    "raw",
    [
        '{"amount": 0.1}',
        '{"amount": 100}',
        '{"amount": "1e999999999"}',
        '{"amount": "1E3"}',
        '{"amount": "NaN"}',
        '{"amount": "Infinity"}',
        '{"amount": "-Infinity"}',
        '{"amount": "1.234"}',
        '{"amount": "+1.00"}',
        '{"amount": "12345678901234567.00"}',
        '{"amount": "１２.５０"}',
        '{"amount": " 1.00"}',
        '{"amount": ""}',
        '{"amount": true}',
        '{"amount": "1.00", "account": "１９３０"}',
        '{"amount": "1.00", "account": "19x0"}',
    ],
)
def test_money_and_account_numbers_refuse_what_is_not_a_plain_decimal_string(raw: str) -> None:
    with pytest.raises(ValidationError):
        Amount.model_validate_json(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("125.50", "125.50"), ("-0.01", "-0.01"), ("7", "7"), ("9999999999999999.99", "9999999999999999.99")],
)
def test_money_accepts_decimal_strings(raw: str, expected: str) -> None:
    assert Amount.model_validate_json(f'{{"amount": "{raw}"}}').amount == Decimal(expected)


async def seed_account(sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> BankAccount:
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Värden AB", plan=Plan.business))
        connection = BankConnection(
            id=uuid.uuid4(), company_id=company_id, bank_id="sandbox", account_type="business",
            status=ConnectionStatus.active,
        )  # fmt: skip
        s.add(connection)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(), company_id=company_id, connection_id=connection.id, bank_id="sandbox",
            external_id="ftg-1", identity_key="ftg-1", currency="SEK", sync_from=dt.date(2026, 1, 1),
            status=AccountStatus.active, ledger_account="1930",
        )  # fmt: skip
        s.add(account)
        await s.commit()
        return account


def assert_422(response: httpx.Response, loc: list[Any], code: str | None = None) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(e["loc"][: len(loc)] == loc for e in body["errors"]), body
    if code is not None:
        assert body["code"] == code, body


async def test_a_ledger_account_in_full_width_digits_is_refused(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], client: httpx.AsyncClient
) -> None:
    company_id = uuid.uuid4()
    account = await seed_account(sessionmaker, company_id)
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking')}"}
    mapped = await client.put(
        f"/v1/account-mappings/{account.id}", json={"ledger_account": "１９４０"}, headers=headers
    )
    assert_422(mapped, ["body", "ledger_account"], "ledger_account_invalid")
    patched = await client.patch(
        f"/v1/bank-accounts/{account.id}", json={"ledger_account": "１９４０"}, headers=headers
    )
    assert_422(patched, ["body", "ledger_account"], "ledger_account_invalid")
    async with sessionmaker() as s:
        assert (await s.get(BankAccount, account.id)).ledger_account == "1930"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("window", "loc"),
    [
        ({"to": "0001-01-01"}, ["body", "to"]),
        ({"to": "2025-12-31"}, ["body", "to"]),  # before the account's sync_from
        ({"from": "2026-01-05", "to": "2026-01-02"}, ["body", "from"]),
        ({"from": "2999-01-01"}, ["body", "from"]),
        ({"to": "9999-12-31"}, ["body", "to"]),
    ],
)
async def test_a_sync_window_outside_the_accounts_window_is_refused(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    window: dict[str, str],
    loc: list[str],
) -> None:
    company_id = uuid.uuid4()
    account = await seed_account(sessionmaker, company_id)
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'banking')}"}
    response = await client.post(f"/v1/bank-accounts/{account.id}/syncs", json=window, headers=headers)
    assert_422(response, loc)
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(SyncRun)) == 0


@pytest.mark.parametrize(
    "debit",
    [0.1, 100, "1e999999999", "NaN", "Infinity", "1.001", "１００.００", "9" * 40],
)
async def test_money_in_an_adjustment_must_be_a_bounded_decimal_string(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    debit: Any,
) -> None:
    company_id = uuid.uuid4()
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Bokslut AB", plan=Plan.business))
        await s.commit()
    headers = {"Authorization": f"Bearer {make_token(settings, company_id, 'closing')}"}
    closing = await client.post(
        "/v1/closings",
        json={"financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"},
        headers=headers,
    )
    assert closing.status_code == 201, closing.text
    response = await client.post(
        f"/v1/closings/{closing.json()['id']}/adjustments",
        json={
            "date": "2025-12-31",
            "description": "Periodisering",
            "rows": [{"account": "1510", "debit": debit}, {"account": "2440", "credit": "100.00"}],
        },
        headers=headers,
    )
    assert_422(response, ["body", "rows", 0, "debit"])
    async with sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(Adjustment)) == 0
