"""Skandia over respx: OAuth, kebab-case parameters, zoned timestamps converted to Stockholm dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    AdapterError,
    BookingStatus,
    ConnectionContext,
    Credentials,
    RateLimited,
    ReauthRequired,
)
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.banks.adapters.skandia import SkandiaAdapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "skandia"
BASE = "https://apis.skandia.se/open-banking/core-bank"
CTX = ConnectionContext(account_type="private", psu_ip_address="198.51.100.9")
CREDS = Credentials(access_token="sk-access-anon")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[SkandiaAdapter]:
    settings = BankEndpointSettings(base_url=BASE, client_id="tpp", client_secret=SecretStr("x"))
    a = create_adapter("skandia", settings)
    assert isinstance(a, SkandiaAdapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank()


async def test_oauth_redirect_and_exchange(adapter: SkandiaAdapter, bank: respx.MockRouter) -> None:
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="st")
    assert start.url is not None
    assert start.url.startswith("https://fsts.skandia.se/as/authorization.oauth2")
    assert parse_qs(urlsplit(start.url).query)["state"] == ["st"]
    bank.post("https://fsts.skandia.se/as/token.oauth2").respond(200, json=load("token.json"))
    creds = await adapter.complete_authorization(
        CTX, start.credentials, code="c", redirect_uri="https://app.example/cb"
    )
    assert creds.access_token == "sk-access-anon"
    assert creds.token_expires_at is not None


async def test_accounts_and_balance(adapter: SkandiaAdapter, bank: respx.MockRouter) -> None:
    bank.get(f"{BASE}/ais/v2/accounts").respond(200, json=load("accounts.json"))
    bank.get(f"{BASE}/ais/v2/accounts/SK-1/balances").respond(200, json=load("balances.json"))
    assert [a.external_id for a in await adapter.list_accounts(CTX, CREDS)] == ["SK-1"]
    assert (await adapter.fetch_balance(CTX, CREDS, "SK-1")).amount == Decimal("22010.00")


async def test_transactions_kebab_params_zoned_dates_and_paging(
    adapter: SkandiaAdapter, bank: respx.MockRouter
) -> None:
    route = bank.get(f"{BASE}/ais/v2/accounts/SK-1/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_page1.json")),
        httpx.Response(200, json=load("transactions_page2.json")),
    ]
    txs = await adapter.fetch_transactions(CTX, CREDS, "SK-1", dt.date(2026, 3, 1), dt.date(2026, 3, 18))
    assert dict(route.calls[0].request.url.params) == {
        "date-from": "2026-03-01",
        "date-to": "2026-03-18",
        "booking-status": "both",
    }
    assert route.calls[1].request.url.params["page-key"] == "abc"
    spotify, swish, pending = txs
    assert spotify.booking_date == dt.date(2026, 3, 17)  # 23:30Z is 00:30 the next day in Stockholm
    assert spotify.description == "Spotify P0123"
    assert spotify.reference == "SK-E2E-1"
    assert swish.booking_date == dt.date(2026, 3, 17)
    assert pending.booking_status is BookingStatus.pending
    assert pending.booking_date == dt.date(2026, 3, 18)


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [(401, "error_consent_invalid.json", ReauthRequired), (429, "error_access_exceeded.json", RateLimited)],
)
async def test_errors(
    adapter: SkandiaAdapter, bank: respx.MockRouter, status: int, fixture: str, expected: type[AdapterError]
) -> None:
    bank.get(f"{BASE}/ais/v2/accounts").respond(status, json=load(fixture))
    with pytest.raises(expected):
        await adapter.list_accounts(CTX, CREDS)
