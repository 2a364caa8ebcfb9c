"""Handelsbanken adapter over recorded, anonymised payloads (tests/data/banks/handelsbanken)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from pydantic import SecretStr
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    BankUnavailable,
    BookingStatus,
    ConnectionContext,
    ConsentExpired,
    ConsentStatus,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
    transaction_identities,
)
from ledgerlink.banks.adapters.handelsbanken import HandelsbankenAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings

BASE = "https://api.handelsbanken.test/openbanking"
AUTH = "https://auth.handelsbanken.test/bb/gls5"
DATA = BANK_DATA / "handelsbanken"
ACCOUNT = "ae57f8d1-2c3b-4a5d-9e6f-7a8b9c0d1e2f"
CONSENT = "3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a60"
TX_URL = f"/psd2/v2/accounts/{ACCOUNT}/transactions"

PRIVATE_PRESENT = ConnectionContext(
    account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.7"
)
PRIVATE_ABSENT = ConnectionContext(account_type="private")
BUSINESS = ConnectionContext(account_type="business", corporate_id="556000-0001")
CREDS = Credentials(consent_id=CONSENT, access_token="user-token", refresh_token="user-refresh")


payload = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[HandelsbankenAdapter]:
    endpoint = BankEndpointSettings(
        base_url=BASE, auth_base_url=AUTH, client_id="shb-client", client_secret=SecretStr("shb-secret")
    )
    a = HandelsbankenAdapter(BANKS["handelsbanken"], endpoint)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


class TestAuthorization:
    async def test_redirect_creates_all_accounts_consent_with_client_token(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        token = bank.post(f"{AUTH}/oauth2/token/1.0").respond(200, json=payload("client_token.json"))
        consent = bank.post("/psd2/v1/consents").respond(201, json=payload("consent.json"))
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st-1", sca_method="redirect"
        )
        assert parse_qs(token.calls.last.request.content.decode())["grant_type"] == ["client_credentials"]
        request = consent.calls.last.request
        assert json.loads(request.content) == {"access": "ALL_ACCOUNTS"}
        assert request.headers["Authorization"] == "Bearer ccg-token-0001"
        assert request.headers["X-IBM-Client-Id"] == "shb-client"
        assert request.headers["TPP-Request-ID"] != request.headers["TPP-Transaction-ID"]
        assert request.headers["Country"] == "SE"
        assert request.headers["PSU-IP-Address"] == "198.51.100.7"
        assert "PSU-Corporate-ID" not in request.headers
        assert start.method == "redirect"
        assert start.credentials.consent_id == CONSENT
        assert start.url is not None
        url = urlsplit(start.url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{AUTH}/oauth2/authorize/1.0"
        query = parse_qs(url.query)
        assert query["scope"] == [f"AIS:{CONSENT}"]
        assert query["state"] == ["st-1"]
        assert query["redirect_uri"] == ["https://app.test/cb"]

    async def test_code_exchange_uses_consent_scope(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.post(f"{AUTH}/oauth2/token/1.0").respond(200, json=payload("token.json"))
        result = await adapter.complete_authorization(
            PRIVATE_PRESENT, Credentials(consent_id=CONSENT), code="c-1", redirect_uri="https://app.test/cb"
        )
        form = parse_qs(route.calls.last.request.content.decode())
        assert form["grant_type"] == ["authorization_code"]
        assert form["scope"] == [f"AIS:{CONSENT}"]
        assert form["code"] == ["c-1"]
        assert form["client_secret"] == ["shb-secret"]
        assert (result.access_token, result.refresh_token, result.consent_id) == (
            "user-token-0001",
            "user-refresh-0001",
            CONSENT,
        )

    async def test_decoupled_mobile_bankid_polls_token_link(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.post(f"{AUTH}/oauth2/token/1.0").respond(200, json=payload("client_token.json"))
        bank.post("/psd2/v1/consents").respond(201, json=payload("consent.json"))
        init = bank.post(f"{AUTH}/decoupled/mbid/initAuthorization/1.0").respond(
            200, json=payload("decoupled_session.json")
        )
        poll = bank.get(f"{AUTH}/decoupled/mbid/token/1.0")
        poll.side_effect = [
            httpx.Response(200, json=payload("decoupled_in_progress.json")),
            httpx.Response(200, json=payload("decoupled_complete.json")),
        ]
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st", sca_method="decoupled"
        )
        sent = json.loads(init.calls.last.request.content)
        assert (sent["psu_id"], sent["scope"]) == ("199001011234", f"AIS:{CONSENT}")
        assert start.method == "decoupled"
        assert start.autostart_token == "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
        first = await adapter.get_authorization_status(PRIVATE_PRESENT, start.credentials)
        assert first.status == "pending"
        done = await adapter.get_authorization_status(PRIVATE_PRESENT, first.credentials)
        assert done.status == "finalised"
        assert done.credentials.access_token == "user-token-0002"
        assert done.credentials.consent_id == CONSENT
        assert poll.calls.last.request.url.params["session"] == "5e6f7a8b"

    async def test_decoupled_bankid_error_fails(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get(f"{AUTH}/decoupled/mbid/token/1.0").respond(200, json={"error": "mbid_not_shb_activated"})
        status = await adapter.get_authorization_status(
            PRIVATE_PRESENT, Credentials(extra={"token_href": f"{AUTH}/decoupled/mbid/token/1.0?session=x"})
        )
        assert (status.status, status.message) == ("failed", "mbid_not_shb_activated")

    async def test_consent_status_and_validity_are_read_back(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get(f"/psd2/v1/consents/{CONSENT}").respond(200, json=payload("consent_status.json"))
        info = await adapter.get_consent(PRIVATE_ABSENT, CREDS)
        assert (info.status, info.valid_until) == (ConsentStatus.valid, dt.date(2024, 10, 29))

    async def test_revoke_deletes_the_consent(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.delete(f"/psd2/v1/consents/{CONSENT}").respond(204)
        await adapter.revoke(PRIVATE_ABSENT, CREDS)
        assert route.called


class TestAccounts:
    async def test_accounts_and_headers(self, adapter: HandelsbankenAdapter, bank: respx.MockRouter) -> None:
        route = bank.get("/psd2/v2/accounts").respond(200, json=payload("accounts.json"))
        accounts = await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert len(accounts) == 1
        account = accounts[0]
        assert (account.external_id, account.iban, account.bban) == (
            ACCOUNT,
            "SE4560000000000123456789",
            "6000-123456789",
        )
        assert account.usage == "private"
        request = route.calls.last.request
        assert request.headers["Authorization"] == "Bearer user-token"
        assert request.headers["TPP-Request-ID"]
        assert "PSU-IP-Address" not in request.headers

    async def test_business_sends_corporate_id_without_dash(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get("/psd2/v2/accounts").respond(200, json=payload("accounts.json"))
        accounts = await adapter.list_accounts(BUSINESS, CREDS)
        assert route.calls.last.request.headers["PSU-Corporate-ID"] == "5560000001"
        assert accounts[0].usage == "business"

    async def test_balance_prefers_current(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get(f"/psd2/v2/accounts/{ACCOUNT}").respond(200, json=payload("account_detail.json"))
        balance = await adapter.fetch_balance(PRIVATE_ABSENT, CREDS, ACCOUNT)
        assert (balance.amount, balance.currency) == (Decimal("9870.25"), "SEK")
        assert route.calls.last.request.url.params["withBalance"] == "true"


class TestTransactions:
    async def test_long_window_is_paged_by_date_ranges_with_signed_amounts(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        first = bank.get(TX_URL, params={"dateFrom": "2024-01-01", "dateTo": "2024-04-01"}).respond(
            200, json=payload("transactions_window1.json")
        )
        second = bank.get(TX_URL, params={"dateFrom": "2024-04-02", "dateTo": "2024-05-02"}).respond(
            200, json=payload("transactions_window2.json")
        )
        txs = await adapter.fetch_transactions(
            PRIVATE_PRESENT, CREDS, ACCOUNT, dt.date(2024, 1, 1), dt.date(2024, 5, 2)
        )
        assert first.call_count == 1
        assert second.call_count == 1
        assert [t.amount for t in txs] == [
            Decimal("-1250.00"),
            Decimal("-45.00"),
            Decimal("-45.00"),
            Decimal("28900.00"),
            Decimal("-312.50"),
        ]
        assert [t.booking_status for t in txs][-2:] == [BookingStatus.booked, BookingStatus.pending]
        assert txs[0].booking_date == dt.date(2024, 1, 15)
        assert txs[0].counterparty == "Exempel Energi AB"
        assert txs[3].counterparty == "Exempelbolaget AB"
        assert txs[4].booking_date == dt.date(2024, 5, 1)  # pending: transactionDate
        assert all(t.provider_id is None for t in txs)
        ids = transaction_identities(txs)
        assert len(set(ids)) == 5  # two identical coffees stay two rows
        assert first.calls.last.request.headers["PSU-IP-Address"] == "198.51.100.7"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"amount": {"currency": "SEK"}}, "transactions[0].amount.content"),
            ({"amount": None}, "transactions[0].amount"),
            ({"creditDebit": None}, "transactions[0].creditDebit"),
            ({"ledgerDate": "15.01.2024"}, "transactions[0].ledgerDate"),
        ],
    )
    async def test_malformed_row_names_the_field(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter, change: dict[str, Any], field: str
    ) -> None:
        body = payload("transactions_window1.json")
        body["transactions"][0].update(change)
        bank.get(TX_URL).respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, CREDS, ACCOUNT, dt.date(2024, 1, 1), dt.date(2024, 1, 31)
            )
        assert (info.value.bank_id, info.value.field) == ("handelsbanken", field)


class TestErrors:
    async def test_inactive_token_needs_reauth(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(401, json=payload("error_token_not_active.json"))
        with pytest.raises(ReauthRequired) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert not isinstance(info.value, ConsentExpired)

    async def test_expired_consent(self, adapter: HandelsbankenAdapter, bank: respx.MockRouter) -> None:
        bank.get("/psd2/v2/accounts").respond(401, json=payload("error_consent_expired.json"))
        with pytest.raises(ConsentExpired):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_rate_limit_carries_retry_time(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(429, headers={"Retry-After": "3600"})
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert dt.timedelta(minutes=59) < info.value.retry_at - before < dt.timedelta(minutes=61)

    async def test_server_error_is_temporary(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(502, text="Bad gateway")
        with pytest.raises(TemporaryFailure):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_firewall_rejection_is_temporary(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(403, json=payload("error_request_rejected.json"))
        with pytest.raises(TemporaryFailure):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_maintenance_is_bank_unavailable(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(503, json=payload("error_maintenance.json"))
        with pytest.raises(BankUnavailable):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_non_json_is_invalid_response(
        self, adapter: HandelsbankenAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/psd2/v2/accounts").respond(200, text="not json")
        with pytest.raises(InvalidResponse) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert info.value.bank_id == "handelsbanken"
