"""Revolut: OBIE base plus Revolut's hosts, financial id and deep-history rule."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest
import respx
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    BookingStatus,
    ConnectionContext,
    ConsentExpired,
    Credentials,
)
from ledgerlink.banks.adapters.http import today_stockholm
from ledgerlink.banks.adapters.registry import BANKS, create_adapter
from ledgerlink.banks.adapters.revolut import RevolutAdapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "revolut"
API = "https://oba.revolut.com"
AUTH = "https://oba-auth.revolut.com"
ACCOUNT = "a4f5d1c2-8b7e-4f6a-9d3c-1b2a3c4d5e6f"
PRESENT = ConnectionContext(account_type="private", psu_ip_address="192.0.2.44")
UNATTENDED = ConnectionContext(account_type="private")


load = payloads(DATA)


def creds(authorised_ago: dt.timedelta) -> Credentials:
    authorised_at = dt.datetime.now(dt.UTC) - authorised_ago
    return Credentials(
        consent_id="6bc2b4a3-4f5a-4e3b-9c1d-2e8f7a6b5c4d",
        access_token="oa-token",
        extra={"authorised_at": authorised_at.isoformat()},
    )


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(API)


@pytest.fixture
async def adapter() -> AsyncIterator[RevolutAdapter]:
    revolut = RevolutAdapter(BANKS["revolut"], BankEndpointSettings(client_id="rev-client"))
    yield revolut
    await revolut.aclose()


def test_registry_builds_the_revolut_adapter() -> None:
    assert isinstance(create_adapter("revolut", BankEndpointSettings(client_id="x")), RevolutAdapter)


async def test_consent_on_the_api_host_token_on_the_auth_host_and_ui_redirect(
    bank: respx.MockRouter, adapter: RevolutAdapter
) -> None:
    token = bank.post(f"{AUTH}/token").respond(200, json=load("token_client_credentials.json"))
    consent = bank.post("/account-access-consents").respond(201, json=load("consent_created.json"))
    adapter.request_object_signer = lambda claims: (
        "signed-" + claims["claims"]["id_token"]["openbanking_intent_id"]["value"]
    )

    start = await adapter.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="st")

    form = urllib.parse.parse_qs(token.calls.last.request.content.decode())
    assert form["client_id"] == ["rev-client"]  # tls_client_auth: no secret, the certificate is the proof
    assert "Authorization" not in token.calls.last.request.headers
    assert consent.calls.last.request.headers["x-fapi-financial-id"] == "001580000103UAvAAM"
    assert start.url is not None
    url = httpx.URL(start.url)
    assert f"{url.scheme}://{url.host}{url.path}" == f"{API}/ui/index.html"
    assert url.params["scope"] == "accounts"
    assert url.params["request"] == "signed-6bc2b4a3-4f5a-4e3b-9c1d-2e8f7a6b5c4d"


async def test_transactions_pages_signs_and_stockholm_dates(
    bank: respx.MockRouter, adapter: RevolutAdapter
) -> None:
    path = f"/accounts/{ACCOUNT}/transactions"
    page2 = bank.get(path, params__contains={"page": "2"}).respond(200, json=load("transactions_page2.json"))
    page1 = bank.get(path).respond(200, json=load("transactions_page1.json"))

    txs = await adapter.fetch_transactions(
        PRESENT,
        creds(dt.timedelta(days=3)),
        ACCOUNT,
        today_stockholm() - dt.timedelta(days=30),
        today_stockholm(),
    )

    assert page1.called
    assert page2.called
    card, pending, topup = txs
    assert card.booking_date == dt.date(2024, 3, 15)  # 23:30Z on the 14th
    assert card.amount == Decimal("-38.00")
    assert card.counterparty == "Pressbyrån"
    assert pending.booking_status is BookingStatus.pending
    assert pending.amount == Decimal("-970.00")
    assert topup.amount == Decimal("2000.00")
    assert topup.counterparty == "ANNA EXEMPEL"
    for call in page1.calls:
        assert call.request.headers["x-fapi-customer-ip-address"] == "192.0.2.44"
        assert call.request.headers["x-fapi-financial-id"] == "001580000103UAvAAM"


async def test_unattended_reads_never_ask_beyond_89_days(
    bank: respx.MockRouter, adapter: RevolutAdapter
) -> None:
    route = bank.get(f"/accounts/{ACCOUNT}/transactions").respond(200, json=load("transactions_page2.json"))
    today = today_stockholm()

    await adapter.fetch_transactions(
        UNATTENDED, creds(dt.timedelta(days=10)), ACCOUNT, today - dt.timedelta(days=200), today
    )

    request = route.calls.last.request
    assert "x-fapi-customer-ip-address" not in request.headers
    sent_from = dt.datetime.fromisoformat(request.url.params["fromBookingDateTime"]).replace(tzinfo=dt.UTC)
    floor = dt.datetime.combine(today - dt.timedelta(days=89), dt.time.min, dt.UTC)
    # Stockholm midnight of the floor day, expressed in UTC (1–2 h earlier).
    assert floor - dt.timedelta(hours=2) <= sent_from <= floor


async def test_deep_history_right_after_sca(bank: respx.MockRouter, adapter: RevolutAdapter) -> None:
    route = bank.get(f"/accounts/{ACCOUNT}/transactions").respond(200, json=load("transactions_page2.json"))
    today = today_stockholm()

    await adapter.fetch_transactions(
        PRESENT, creds(dt.timedelta(minutes=1)), ACCOUNT, today - dt.timedelta(days=365), today
    )

    sent_from = dt.datetime.fromisoformat(route.calls.last.request.url.params["fromBookingDateTime"])
    assert sent_from.date() <= today - dt.timedelta(days=365)


async def test_reauthorisation_needed_after_sca_window(
    bank: respx.MockRouter, adapter: RevolutAdapter
) -> None:
    bank.get("/accounts").respond(403, json=load("error_sca_window.json"))
    with pytest.raises(ConsentExpired):
        await adapter.list_accounts(UNATTENDED, creds(dt.timedelta(days=1)))


async def test_account_iban_currency_and_usage(bank: respx.MockRouter) -> None:
    bank.get("/accounts").respond(200, json=load("accounts.json"))
    revolut = RevolutAdapter(BANKS["revolut"], BankEndpointSettings(client_id="rev-client"))
    revolut.balances_in_account_list = False
    try:
        (account,) = await revolut.list_accounts(UNATTENDED, creds(dt.timedelta(days=1)))
    finally:
        await revolut.aclose()
    assert account.iban == "LT603250012345678901"
    assert account.currency == "SEK"
    assert account.usage == "private"
