"""Bank Norwegian over respx: Request-ID/Region-ID headers, PKCE code exchange, numbered pages."""

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

from ledgerlink.banks.adapters.banknorwegian import TOKEN_URL, BankNorwegianAdapter
from ledgerlink.banks.adapters.base import (
    ConnectionContext,
    ConsentExpired,
    Credentials,
    transaction_identities,
)
from ledgerlink.banks.adapters.berlingroup import PeriodInvalid
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "banknorwegian"
BASE = "https://api.banknorwegian.com/openbanking"
CTX = ConnectionContext(account_type="private", psu_ip_address="198.51.100.9")
CREDS = Credentials(consent_id="bn-consent-0001", access_token="bn-access-anon")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[BankNorwegianAdapter]:
    settings = BankEndpointSettings(base_url=BASE, client_id="tpp-bn", client_secret=SecretStr("x"))
    a = create_adapter("banknorwegian", settings)
    assert isinstance(a, BankNorwegianAdapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank()


async def test_consent_then_pkce_redirect_and_exchange(
    adapter: BankNorwegianAdapter, bank: respx.MockRouter
) -> None:
    consent = bank.post(f"{BASE}/consents").respond(201, json=load("consent.json"))
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="st")
    headers = consent.calls.last.request.headers
    assert headers["Request-ID"]
    assert "X-Request-ID" not in headers
    assert headers["Region-ID"] == "SE"
    assert headers["TPP-Client-ID"] == "tpp-bn"
    assert start.url is not None
    query = parse_qs(urlsplit(start.url).query)
    assert query["consentId"] == ["bn-consent-0001"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == ["st"]
    verifier = start.credentials.extra["code_verifier"]

    token = bank.post(TOKEN_URL).respond(200, json=load("token.json"))
    bank.get(f"{BASE}/consents/bn-consent-0001").respond(200, json=load("consent_details.json"))
    creds = await adapter.complete_authorization(
        CTX, start.credentials, code="c", redirect_uri="https://app.example/cb"
    )
    assert parse_qs(token.calls.last.request.content.decode())["code_verifier"] == [verifier]
    assert creds.access_token == "bn-access-anon"
    assert creds.consent_id == "bn-consent-0001"
    assert "code_verifier" not in creds.extra


async def test_accounts_balance_and_numbered_pages(
    adapter: BankNorwegianAdapter, bank: respx.MockRouter
) -> None:
    bank.get(f"{BASE}/accounts").respond(200, json=load("accounts.json"))
    accounts = await adapter.list_accounts(CTX, CREDS)
    assert accounts[0].balance is not None
    assert accounts[0].balance.amount == Decimal("-3125.75")
    bank.get(f"{BASE}/accounts/bn-acc-1/balances").respond(200, json=load("balances.json"))
    assert (await adapter.fetch_balance(CTX, CREDS, "bn-acc-1")).amount == Decimal("-3125.75")

    route = bank.get(f"{BASE}/accounts/bn-acc-1/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_page1.json")),
        httpx.Response(200, json=load("transactions_page2.json")),
    ]
    txs = await adapter.fetch_transactions(CTX, CREDS, "bn-acc-1", dt.date(2026, 3, 1), dt.date(2026, 3, 18))
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]
    assert len(txs) == 4
    assert txs[1].booking_date is None  # Bank Norwegian pending rows may carry no date at all
    identities = transaction_identities(txs)
    assert len(set(identities)) == 4  # two identical id-less purchases stay two rows


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [(401, "error_consent_expired.json", ConsentExpired), (400, "error_period_invalid.json", PeriodInvalid)],
)
async def test_errors(
    adapter: BankNorwegianAdapter,
    bank: respx.MockRouter,
    status: int,
    fixture: str,
    expected: type[Exception],
) -> None:
    bank.get(f"{BASE}/accounts/bn-acc-1/transactions").respond(status, json=load(fixture))
    with pytest.raises(expected):
        await adapter.fetch_transactions(CTX, CREDS, "bn-acc-1", dt.date(2025, 1, 1), dt.date(2026, 3, 18))
