"""Länsförsäkringar over respx: LF paths, LF's OAuth server around the consent (client-credentials token,
authorize with the AuthorisationID, code exchange, Bearer on AIS, refresh), SSSN decoupled,
entryReference rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr
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
AUTH = "https://secure397.lansforsakringar.se"
CREDS = Credentials(consent_id="c7f1e5a0-lf-0001")
CTX = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.9")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[LansforsakringarAdapter]:
    a = create_adapter(
        "lansforsakringar",
        BankEndpointSettings(base_url=BASE, client_id="lf-client", client_secret=SecretStr("lf-secret")),
    )
    assert isinstance(a, LansforsakringarAdapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


async def test_decoupled_is_default_with_personnummer(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    client_token = bank.post(f"{AUTH}/as/token.oauth2").respond(200, json=load("client_token.json"))
    consent = bank.post("/ano/v3/consents").respond(201, json=load("consent.json"))
    auth = bank.post("/ano/v3/consents/c7f1e5a0-lf-0001/authorisations").respond(
        201, json=load("authorisation_decoupled.json")
    )
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="s")
    assert start.method == "decoupled"
    assert start.autostart_token == "0b7d6f1a-3c2e-4e8a-9c55-2b1d7e0f4a91"
    assert consent.calls.last.request.headers["PSU-ID-Type"] == "SSSN"
    assert auth.calls.last.request.headers["PSU-ID"] == "199001011234"
    # a client-credentials token authorises the consent calls
    assert dict(parse_qsl(client_token.calls.last.request.content.decode())) == {
        "grant_type": "client_credentials",
        "client_id": "lf-client",
        "client_secret": "lf-secret",
    }
    assert consent.calls.last.request.headers["Authorization"] == "Bearer lf-client-1"
    assert auth.calls.last.request.headers["Authorization"] == "Bearer lf-client-1"

    status = bank.get("/sec/v3/consents/c7f1e5a0-lf-0001/authorisations/a-lf-77")
    status.side_effect = [
        httpx.Response(200, json=load("sca_status_started.json")),
        httpx.Response(200, json=load("sca_status_finalised.json")),
    ]
    assert (await adapter.get_authorization_status(CTX, start.credentials)).status == "pending"
    assert status.calls.last.request.headers["Authorization"] == "Bearer lf-client-1"
    done = await adapter.get_authorization_status(CTX, start.credentials)
    assert done.status == "finalised"

    # the finalised authorisation's code is exchanged for the tokens every AIS call carries
    token = bank.post(f"{AUTH}/as/token.oauth2").respond(200, json=load("token.json"))
    details = bank.get("/sec/v2/consents/c7f1e5a0-lf-0001").respond(200, json=load("consent_details.json"))
    creds = await adapter.complete_authorization(
        CTX, done.credentials, code=None, redirect_uri="https://app.example/cb"
    )
    form = dict(parse_qsl(token.calls.last.request.content.decode()))
    assert (form["grant_type"], form["code"]) == ("authorization_code", "lf-code-77")
    assert (form["client_id"], form["client_secret"]) == ("lf-client", "lf-secret")
    assert (creds.consent_id, creds.access_token, creds.refresh_token) == (
        "c7f1e5a0-lf-0001",
        "lf-access-1",
        "lf-refresh-1",
    )
    assert "authorisation_code" not in creds.extra
    assert details.calls.last.request.headers["Authorization"] == "Bearer lf-access-1"


async def test_redirect_goes_to_lfs_oauth_server_with_the_authorisation_id(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    bank.post(f"{AUTH}/as/token.oauth2").respond(200, json=load("client_token.json"))
    consent = bank.post("/ano/v3/consents").respond(201, json=load("consent_redirect.json"))
    start = await adapter.start_authorization(
        CTX, redirect_uri="https://app.example/cb", state="s", sca_method="redirect"
    )
    assert start.url is not None
    assert start.url.startswith("https://secure397.lansforsakringar.se/as/authorization.oauth2")
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert query == {
        "client_id": "lf-client",
        "response_type": "code",
        "AuthorisationID": "a-lf-78",
        "redirect_uri": "https://app.example/cb",
        "state": "s",
    }
    assert consent.calls.last.request.headers["TPP-Explicit-Authorisation-Preferred"] == "false"
    assert consent.calls.last.request.headers["Authorization"] == "Bearer lf-client-1"

    token = bank.post(f"{AUTH}/as/token.oauth2").respond(200, json=load("token.json"))
    bank.get("/sec/v2/consents/c7f1e5a0-lf-0001").respond(200, json=load("consent_details.json"))
    creds = await adapter.complete_authorization(
        CTX, start.credentials, code="lf-code-9", redirect_uri="https://app.example/cb"
    )
    assert dict(parse_qsl(token.calls.last.request.content.decode()))["code"] == "lf-code-9"
    assert (await adapter.get_consent(CTX, creds)).valid_until == dt.date(2026, 9, 14)

    accounts = bank.get("/ais/v1/accounts").respond(200, json=load("accounts.json"))
    await adapter.list_accounts(CTX, creds)
    assert accounts.calls.last.request.headers["Authorization"] == "Bearer lf-access-1"
    assert accounts.calls.last.request.headers["Consent-ID"] == "c7f1e5a0-lf-0001"


async def test_tokens_are_refreshed_with_the_refresh_token(
    adapter: LansforsakringarAdapter, bank: respx.MockRouter
) -> None:
    token = bank.post(f"{AUTH}/as/token.oauth2").respond(
        200, json={"access_token": "lf-access-2", "expires_in": 3600}
    )
    old = Credentials(consent_id="c7f1e5a0-lf-0001", access_token="lf-access-1", refresh_token="lf-refresh-1")
    fresh = await adapter.refresh_credentials(CTX, old)
    form = dict(parse_qsl(token.calls.last.request.content.decode()))
    assert (form["grant_type"], form["refresh_token"]) == ("refresh_token", "lf-refresh-1")
    assert (fresh.access_token, fresh.refresh_token, fresh.consent_id) == (
        "lf-access-2",
        "lf-refresh-1",
        "c7f1e5a0-lf-0001",
    )


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
