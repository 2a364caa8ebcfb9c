"""Ålandsbanken (Crosskey): OBIE base with Crosskey paths, OIDC host, API key and 90-day windows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from tests.banks.adapters.support import BANK_DATA, mock_bank

from ledgerlink.banks.adapters.alandsbanken import AlandsbankenAdapter
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, RateLimited
from ledgerlink.banks.adapters.registry import BANKS, create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "alandsbanken"
OBIE_DATA = DATA.parent / "obie"
API = "https://api.alandsbanken.se"
AUTH = "https://open.alandsbanken.se"
AIS = "/open-banking/v3.1/aisp"
ACCOUNT = "ab-se-4c1f2e"
PRESENT = ConnectionContext(account_type="private", psu_ip_address="192.0.2.77")
UNATTENDED = ConnectionContext(account_type="private")
CREDS = Credentials(consent_id="ck-consent-1", access_token="ck-user-token")


def load(name: str, base: Path = DATA) -> Any:
    return json.loads((base / name).read_text(encoding="utf-8"))


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(API)


@pytest.fixture
async def adapter() -> AsyncIterator[AlandsbankenAdapter]:
    alands = AlandsbankenAdapter(
        BANKS["alandsbanken"], BankEndpointSettings(client_id="ck-client", app_id="ck-api-key-123")
    )
    yield alands
    await alands.aclose()


def test_registry_builds_the_alandsbanken_adapter() -> None:
    assert isinstance(create_adapter("alandsbanken", BankEndpointSettings()), AlandsbankenAdapter)


async def test_consent_token_and_oidc_on_crosskey_paths(
    bank: respx.MockRouter, adapter: AlandsbankenAdapter
) -> None:
    token = bank.post(f"{AUTH}/oidc/v1.0/token").respond(
        200, json=load("token_client_credentials.json", OBIE_DATA)
    )
    consent = bank.post(f"{AIS}/account-access-consents").respond(
        201, json=load("consent_created.json", OBIE_DATA)
    )
    adapter.request_object_signer = lambda claims: "signed"

    start = await adapter.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")

    assert token.called
    headers = consent.calls.last.request.headers
    assert headers["X-API-Key"] == "ck-api-key-123"
    assert headers["x-fapi-customer-ip-address"] == "192.0.2.77"
    assert start.url is not None
    url = httpx.URL(start.url)
    assert f"{url.scheme}://{url.host}{url.path}" == f"{AUTH}/oidc/auth"
    assert url.params["scope"] == "openid accounts"


async def test_accounts_with_balance(bank: respx.MockRouter, adapter: AlandsbankenAdapter) -> None:
    bank.get(f"{AIS}/accounts").respond(200, json=load("accounts.json"))
    balances = bank.get(f"{AIS}/accounts/{ACCOUNT}/balances").respond(200, json=load("balances.json"))

    (account,) = await adapter.list_accounts(UNATTENDED, CREDS)

    assert account.iban == "SE2323000000000123456780"
    assert account.name == "Lönekonto"
    assert account.balance is not None
    assert account.balance.amount == Decimal("8120.75")
    assert account.balance.as_of == dt.date(2024, 3, 15)
    assert balances.calls.last.request.headers["X-API-Key"] == "ck-api-key-123"
    assert "x-fapi-customer-ip-address" not in balances.calls.last.request.headers


async def test_long_history_is_read_in_90_day_windows(
    bank: respx.MockRouter, adapter: AlandsbankenAdapter
) -> None:
    route = bank.get(f"{AIS}/accounts/{ACCOUNT}/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_window1.json")),
        httpx.Response(200, json=load("transactions_window2.json")),
        httpx.Response(200, json={"Data": {"Transaction": []}, "Links": {}, "Meta": {}}),
    ]

    txs = await adapter.fetch_transactions(PRESENT, CREDS, ACCOUNT, dt.date(2024, 1, 1), dt.date(2024, 7, 18))

    windows = [
        (call.request.url.params["fromBookingDateTime"], call.request.url.params["toBookingDateTime"])
        for call in route.calls
    ]
    assert windows == [
        ("2023-12-31T23:00:00", "2024-03-30T22:59:59"),  # 1 Jan – 30 Mar (90 days)
        ("2024-03-30T23:00:00", "2024-06-28T21:59:59"),  # 31 Mar – 28 Jun, across the DST change
        ("2024-06-28T22:00:00", "2024-07-18T21:59:59"),  # 29 Jun – 18 Jul
    ]
    groceries, swish = txs
    assert groceries.amount == Decimal("-312.40")
    assert groceries.booking_date == dt.date(2024, 1, 10)
    assert swish.amount == Decimal("150.00")
    assert swish.booking_date == dt.date(2024, 5, 1)  # 22:30Z on 30 April is 00:30 CEST


async def test_rate_limit_honours_retry_after(bank: respx.MockRouter, adapter: AlandsbankenAdapter) -> None:
    bank.get(f"{AIS}/accounts/{ACCOUNT}/transactions").respond(
        429, json=load("error_rate_limited.json"), headers={"Retry-After": "60"}
    )
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(RateLimited) as info:
        await adapter.fetch_transactions(
            UNATTENDED, CREDS, ACCOUNT, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
        )
    assert before + dt.timedelta(seconds=59) <= info.value.retry_at <= before + dt.timedelta(seconds=65)
