"""N26 over respx: OAuth2 + PKCE, consent after the token, /v1/berlin-group/v1 paths."""

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
    ReauthRequired,
)
from ledgerlink.banks.adapters.berlingroup import PeriodInvalid, ResourceUnknown
from ledgerlink.banks.adapters.n26 import N26Adapter
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "n26"
BASE = "https://xs2a.tech26.de"
PREFIX = f"{BASE}/v1/berlin-group/v1"
CTX = ConnectionContext(account_type="private", psu_ip_address="198.51.100.9")
CREDS = Credentials(consent_id="n26-consent-0001", access_token="n26-access-anon")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[N26Adapter]:
    settings = BankEndpointSettings(base_url=BASE, client_id="tpp-n26", client_secret=SecretStr("x"))
    a = create_adapter("n26", settings)
    assert isinstance(a, N26Adapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank()


async def test_oauth_then_consent_then_app_confirmation(adapter: N26Adapter, bank: respx.MockRouter) -> None:
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="st")
    assert start.url is not None
    query = parse_qs(urlsplit(start.url).query)
    assert start.url.startswith(f"{BASE}/oauth2/authorize")
    assert query["scope"] == ["DEDICATED_AISP"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["CODE"]  # N26 accepts only this spelling

    token = bank.post(f"{BASE}/oauth2/token", params={"role": "DEDICATED_AISP"}).respond(
        200, json=load("token.json")
    )
    consent = bank.post(f"{PREFIX}/consents").respond(201, json=load("consent.json"))
    creds = await adapter.complete_authorization(
        CTX, start.credentials, code="c", redirect_uri="https://app.example/cb"
    )
    assert "code_verifier" in parse_qs(token.calls.last.request.content.decode())
    assert consent.calls.last.request.headers["Authorization"] == "Bearer n26-access-anon"
    assert creds.consent_id == "n26-consent-0001"

    status = bank.get(f"{PREFIX}/consents/n26-consent-0001")
    status.side_effect = [
        httpx.Response(200, json=load("consent_details_received.json")),
        httpx.Response(200, json=load("consent_details_valid.json")),
    ]
    assert (await adapter.get_authorization_status(CTX, creds)).status == "pending"
    assert (await adapter.get_authorization_status(CTX, creds)).status == "finalised"


async def test_accounts_and_paged_transactions(adapter: N26Adapter, bank: respx.MockRouter) -> None:
    accounts = bank.get(f"{PREFIX}/accounts").respond(200, json=load("accounts.json"))
    assert [a.currency for a in await adapter.list_accounts(CTX, CREDS)] == ["EUR", "EUR"]
    assert "withBalance" not in accounts.calls.last.request.url.params  # not supported
    route = bank.get(f"{PREFIX}/accounts/n26-acc-main/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_page1.json")),
        httpx.Response(200, json=load("transactions_page2.json")),
    ]
    txs = await adapter.fetch_transactions(
        CTX, CREDS, "n26-acc-main", dt.date(2026, 3, 1), dt.date(2026, 3, 18)
    )
    assert route.calls[1].request.url.params["cursor"] == "c2"
    assert route.calls[0].request.url.params["bookingStatus"] == "booked"  # pending/both refused
    assert [t.provider_id for t in txs] == ["n26-t-1", "n26-t-2", "n26-p-3"]
    assert txs[1].amount == Decimal("1500.00")
    assert txs[2].booking_status is BookingStatus.pending


async def test_the_15_minute_token_is_refreshed_with_the_single_use_refresh_token(
    adapter: N26Adapter, bank: respx.MockRouter
) -> None:
    token = bank.post(f"{BASE}/oauth2/token", params={"role": "DEDICATED_AISP"}).respond(
        200, json={"access_token": "n26-a2", "refresh_token": "n26-r2", "expires_in": 900}
    )
    old = Credentials(consent_id="n26-consent-0001", access_token="n26-a1", refresh_token="n26-r1")
    fresh = await adapter.refresh_credentials(CTX, old)
    form = parse_qs(token.calls.last.request.content.decode())
    assert form == {"grant_type": ["refresh_token"], "refresh_token": ["n26-r1"]}
    assert (fresh.access_token, fresh.refresh_token, fresh.consent_id) == (
        "n26-a2",
        "n26-r2",
        "n26-consent-0001",
    )
    assert fresh.token_expires_at is not None


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (400, "error_period_invalid.json", PeriodInvalid),
        (404, "error_resource_unknown.json", ResourceUnknown),
        (401, "error_token_invalid.json", ReauthRequired),
    ],
)
async def test_errors(
    adapter: N26Adapter, bank: respx.MockRouter, status: int, fixture: str, expected: type[AdapterError]
) -> None:
    bank.get(f"{PREFIX}/accounts/n26-space-old/transactions").respond(status, json=load(fixture))
    with pytest.raises(expected):
        await adapter.fetch_transactions(
            CTX, CREDS, "n26-space-old", dt.date(2025, 1, 1), dt.date(2026, 3, 18)
        )
