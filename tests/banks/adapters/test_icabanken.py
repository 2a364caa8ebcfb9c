"""ICA Banken over respx: OAuth redirect with ssn, code exchange, own query names, empty windows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import respx
from pydantic import SecretStr
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    BookingStatus,
    ConnectionContext,
    ConsentStatus,
    Credentials,
    InvalidResponse,
    ReauthRequired,
)
from ledgerlink.banks.adapters.icabanken import TOKEN_URL, IcaBankenAdapter
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "icabanken"
BASE = "https://mtls-apimgw-icabanken.ica.se/t/icabanken.tenant/ica/bank/psd2/accounts/1.0.0"
CTX = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.9")
CREDS = Credentials(access_token="ica-access-anon")


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[IcaBankenAdapter]:
    settings = BankEndpointSettings(base_url=BASE, client_id="tpp-client", client_secret=SecretStr("s3cret"))
    a = create_adapter("icabanken", settings)
    assert isinstance(a, IcaBankenAdapter)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank()


async def test_authorize_url_carries_ssn_and_state(adapter: IcaBankenAdapter) -> None:
    start = await adapter.start_authorization(CTX, redirect_uri="https://app.example/cb", state="st-9")
    assert start.url is not None
    query = parse_qs(urlsplit(start.url).query)
    assert start.url.startswith("https://ims.icagruppen.se/oauth/v2/authorize")
    assert query["ssn"] == ["199001011234"]
    assert query["state"] == ["st-9"]
    assert query["scope"] == ["account"]


async def test_code_exchange(adapter: IcaBankenAdapter, bank: respx.MockRouter) -> None:
    route = bank.post(TOKEN_URL).respond(200, json=load("token.json"))
    creds = await adapter.complete_authorization(
        CTX, Credentials(), code="c0de", redirect_uri="https://app.example/cb"
    )
    assert creds.access_token == "ica-access-anon"
    assert creds.refresh_token == "ica-refresh-anon"
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["code"] == ["c0de"]
    assert form["client_secret"] == ["s3cret"]
    assert (await adapter.get_consent(CTX, creds)).status is ConsentStatus.valid


async def test_accounts_balance_and_transactions(adapter: IcaBankenAdapter, bank: respx.MockRouter) -> None:
    accounts_route = bank.get(f"{BASE}/Accounts").respond(200, json=load("accounts.json"))
    accounts = await adapter.list_accounts(CTX, CREDS)
    assert accounts[0].external_id == "ICA-1"
    assert accounts_route.calls.last.request.headers["Authorization"] == "Bearer ica-access-anon"
    balance = await adapter.fetch_balance(CTX, CREDS, "ICA-1")
    assert balance.amount == Decimal("8123.45")

    route = bank.get(f"{BASE}/Accounts/ICA-1/transactions").respond(200, json=load("transactions.json"))
    txs = await adapter.fetch_transactions(CTX, CREDS, "ICA-1", dt.date(2026, 3, 1), dt.date(2026, 3, 18))
    assert dict(route.calls.last.request.url.params) == {
        "from": "2026-03-01",
        "to": "2026-03-18",
        "status": "both",
    }
    assert [(t.provider_id, t.description, t.booking_status) for t in txs] == [
        ("ICA-E-1001", "ICA KVANTUM MALMBORGS", BookingStatus.booked),
        ("ICA-E-1002", "Överföring", BookingStatus.booked),
        ("ICA-P-1", "RESERVERAT KORTKÖP", BookingStatus.pending),
    ]


async def test_transaction_not_found_is_an_empty_window(
    adapter: IcaBankenAdapter, bank: respx.MockRouter
) -> None:
    bank.get(f"{BASE}/Accounts/ICA-1/transactions").respond(
        404, json=load("error_transaction_not_found.json")
    )
    assert (
        await adapter.fetch_transactions(CTX, CREDS, "ICA-1", dt.date(2026, 3, 1), dt.date(2026, 3, 18)) == []
    )


@pytest.mark.parametrize("fixture", ["error_old_kyc.json", "error_token_invalid.json"])
async def test_reauth_errors(adapter: IcaBankenAdapter, bank: respx.MockRouter, fixture: str) -> None:
    bank.get(f"{BASE}/Accounts").respond(403 if "kyc" in fixture else 401, json=load(fixture))
    with pytest.raises(ReauthRequired):
        await adapter.list_accounts(CTX, CREDS)


async def test_unknown_404_elsewhere_is_invalid_response(
    adapter: IcaBankenAdapter, bank: respx.MockRouter
) -> None:
    bank.get(f"{BASE}/Accounts").respond(404, json=load("error_transaction_not_found.json"))
    with pytest.raises(InvalidResponse):
        await adapter.list_accounts(CTX, CREDS)
