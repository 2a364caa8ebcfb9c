"""Länsförsäkringar over respx: LF paths, SSSN decoupled, explicit redirect, entryReference rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
import respx
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    AdapterError,
    BankUnavailable,
    BookingStatus,
    ConnectionContext,
    ConsentExpired,
    Credentials,
    RateLimited,
    ReauthRequired,
)
from ledgerlink.banks.adapters.lansforsakringar import LansforsakringarAdapter
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "lansforsakringar"
BASE = "https://api.bank.lansforsakringar.se/openbanking"
CREDS = Credentials(consent_id="c7f1e5a0-lf-0001")
CTX = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.9")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[LansforsakringarAdapter]:
    a = create_adapter("lansforsakringar", BankEndpointSettings(base_url=BASE))
    assert isinstance(a, LansforsakringarAdapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


async def test_decoupled_is_default_with_personnummer(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    consent = bank.post("/ano/v3/consents").respond(201, json=load("consent.json"))
    auth = bank.post("/ano/v3/consents/c7f1e5a0-lf-0001/authorisations").respond(
        201, json=load("authorisation_decoupled.json")
    )
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="s")
    assert start.method == "decoupled"
    assert start.autostart_token == "0b7d6f1a-3c2e-4e8a-9c55-2b1d7e0f4a91"
    assert consent.calls.last.request.headers["PSU-ID-Type"] == "SSSN"
    assert auth.calls.last.request.headers["PSU-ID"] == "199001011234"

    status = bank.get("/sec/v3/consents/c7f1e5a0-lf-0001/authorisations/a-lf-77")
    status.side_effect = [
        httpx.Response(200, json=load("sca_status_started.json")),
        httpx.Response(200, json=load("sca_status_finalised.json")),
    ]
    assert (await adapter.get_authorization_status(CTX, start.credentials)).status == "pending"
    assert (await adapter.get_authorization_status(CTX, start.credentials)).status == "finalised"


async def test_redirect_uses_explicit_authorisation(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    consent = bank.post("/ano/v3/consents").respond(201, json=load("consent_explicit.json"))
    bank.post("/ano/v3/consents/c7f1e5a0-lf-0001/authorisations").respond(
        201, json=load("authorisation_redirect.json")
    )
    start = await adapter.start_authorization(
        CTX, redirect_uri="https://app.example/cb", state="s", sca_method="redirect"
    )
    assert start.url is not None
    assert start.url.startswith("https://secure397.lansforsakringar.se/as/authorization.oauth2")
    assert consent.calls.last.request.headers["TPP-Explicit-Authorisation-Preferred"] == "true"
    bank.get("/sec/v2/consents/c7f1e5a0-lf-0001").respond(200, json=load("consent_details.json"))
    creds = await adapter.complete_authorization(
        CTX, start.credentials, code=None, redirect_uri="https://app.example/cb"
    )
    assert (await adapter.get_consent(CTX, creds)).valid_until == dt.date(2026, 9, 14)


async def test_accounts_and_transactions_over_two_pages(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    bank.get("/ais/v1/accounts").respond(200, json=load("accounts.json"))
    accounts = await adapter.list_accounts(CTX, CREDS)
    assert [a.external_id for a in accounts] == ["LF-ACC-1", "LF-ACC-2"]
    assert accounts[1].name == "sparkonto"

    route = bank.get("/ais/v1/accounts/LF-ACC-1/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_page1.json")),
        httpx.Response(200, json=load("transactions_page2.json")),
    ]
    txs = await adapter.fetch_transactions(CTX, CREDS, "LF-ACC-1", dt.date(2026, 3, 1), dt.date(2026, 3, 18))
    assert route.calls[1].request.url.params["key"] == "p2"
    assert [t.provider_id for t in txs] == ["LF20260316-0001", "LF20260316-0002", "LF20260317-0001", None]
    assert [t.booking_status for t in txs][-1] is BookingStatus.pending
    assert txs[0].reference == "7700112233"
    assert txs[1].description == "Pressbyrån Centralen"  # merchantName fallback
    assert txs[2].description == "Lön"  # text fallback
    assert txs[2].amount == Decimal("31500.00")
    assert txs[3].booking_date == dt.date(2026, 3, 18)  # pending: transactionDate


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (403, "error_service_blocked.json", BankUnavailable),
        (401, "error_consent_expired.json", ConsentExpired),
        (429, "error_access_exceeded.json", RateLimited),
        (400, "error_code_invalid.json", ReauthRequired),
    ],
)
async def test_errors(
    adapter: LansforsakringarAdapter,
    bank: respx.MockRouter,
    status: int,
    fixture: str,
    expected: type[AdapterError],
) -> None:
    bank.get("/ais/v1/accounts").respond(status, json=load(fixture))
    with pytest.raises(expected):
        await adapter.list_accounts(CTX, CREDS)
