"""SEB adapter over recorded, anonymised payloads (tests/data/banks/seb)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
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
)
from ledgerlink.banks.adapters.http import today_stockholm
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.banks.adapters.seb import SebAdapter
from ledgerlink.config import BankEndpointSettings

BASE = "https://api.seb.test/tpp"
AUTH = "https://auth.seb.test"
DATA = BANK_DATA / "seb"
ACCOUNT = "c5a2e6f0-1b2c-4d3e-8f4a-5b6c7d8e9f01"
TX_URL = f"/ais/v7/identified2/accounts/{ACCOUNT}/transactions"

PRIVATE_PRESENT = ConnectionContext(
    account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.7"
)
PRIVATE_ABSENT = ConnectionContext(account_type="private")
BUSINESS = ConnectionContext(account_type="business", corporate_id="5560000001")


payload = payloads(DATA)


def creds(valid_until: dt.date | None = None) -> Credentials:
    until = valid_until or today_stockholm() + dt.timedelta(days=60)
    return Credentials(
        access_token="seb-token", refresh_token="seb-refresh", extra={"valid_until": until.isoformat()}
    )


@pytest.fixture
async def adapter() -> AsyncIterator[SebAdapter]:
    endpoint = BankEndpointSettings(
        base_url=BASE, auth_base_url=AUTH, client_id="12345p", client_secret=SecretStr("seb-secret")
    )
    a = SebAdapter(BANKS["seb"], endpoint)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


class TestAuthorization:
    async def test_redirect_is_an_oauth_authorize_url(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st-1", sca_method="redirect"
        )
        assert start.method == "redirect"
        assert start.url is not None
        url = urlsplit(start.url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{AUTH}/mga/sps/oauth/oauth20/dpsd2/authorize"
        query = parse_qs(url.query)
        assert query["client_id"] == ["12345p"]
        assert query["scope"] == ["psd2_accounts psd2_payments"]  # SEB wants both scopes
        assert query["state"] == ["st-1"]
        assert query["redirect_uri"] == ["https://app.test/cb"]
        assert start.credentials.consent_id is None  # SEB has no consent resource

    async def test_code_exchange_returns_token_and_validity(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.post(f"{AUTH}/mga/sps/oauth/oauth20/token").respond(200, json=payload("token.json"))
        result = await adapter.complete_authorization(
            PRIVATE_PRESENT, Credentials(), code="c-1", redirect_uri="https://app.test/cb"
        )
        form = parse_qs(route.calls.last.request.content.decode())
        assert (form["grant_type"], form["code"], form["client_secret"]) == (
            ["authorization_code"],
            ["c-1"],
            ["seb-secret"],
        )
        assert (result.access_token, result.refresh_token) == ("seb-access-0001", "seb-refresh-0001")
        assert result.extra["valid_until"] == (today_stockholm() + dt.timedelta(days=90)).isoformat()

    async def test_decoupled_bankid_polls_then_fetches_token(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        start_route = bank.post(f"{AUTH}/auth/v3/authorizations").respond(
            200, json=payload("decoupled_start.json")
        )
        poll = bank.get(f"{AUTH}/auth/v3/authorizations/a7c1e9d3-5b2f-4a6e-8d0c-1f3e5a7b9c0d")
        poll.side_effect = [
            httpx.Response(200, json=payload("decoupled_pending.json")),
            httpx.Response(200, json=payload("decoupled_complete.json")),
        ]
        token = bank.post(f"{AUTH}/mga/sps/oauth/oauth20/token").respond(200, json=payload("token.json"))
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st", sca_method="decoupled"
        )
        assert json.loads(start_route.calls.last.request.content)["start_mode"] == "ast"
        assert start.autostart_token == "e3b0c442-98fc-4c14-9afb-f4c8996fb924"
        first = await adapter.get_authorization_status(PRIVATE_PRESENT, start.credentials)
        assert first.status == "pending"
        done = await adapter.get_authorization_status(PRIVATE_PRESENT, first.credentials)
        assert done.status == "finalised"
        assert done.credentials.access_token == "seb-access-0001"
        assert "auth_req_id" not in done.credentials.extra
        assert parse_qs(token.calls.last.request.content.decode())["auth_req_id"] == [
            "a7c1e9d3-5b2f-4a6e-8d0c-1f3e5a7b9c0d"
        ]

    async def test_decoupled_failure_reports_hint(self, adapter: SebAdapter, bank: respx.MockRouter) -> None:
        bank.get(f"{AUTH}/auth/v3/authorizations/r-1").respond(
            200, json={"status": "failed", "hint_code": "userCancel"}
        )
        status = await adapter.get_authorization_status(
            PRIVATE_PRESENT, Credentials(extra={"auth_req_id": "r-1"})
        )
        assert (status.status, status.message) == ("failed", "userCancel")

    async def test_consent_is_read_back_by_probing_the_token(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/ais/v7/identified2/accounts").respond(401, json=payload("error_token_invalid.json"))
        info = await adapter.get_consent(PRIVATE_ABSENT, creds())
        assert info.status is ConsentStatus.revoked


class TestAccounts:
    async def test_accounts_balances_and_headers(self, adapter: SebAdapter, bank: respx.MockRouter) -> None:
        route = bank.get("/ais/v7/identified2/accounts").respond(200, json=payload("accounts.json"))
        accounts = await adapter.list_accounts(PRIVATE_ABSENT, creds())
        assert [a.usage for a in accounts] == ["private", "business"]  # ORGA wins over the connection type
        assert accounts[0].iban == "SE3550000000054910000003"
        assert accounts[0].balance is not None
        assert accounts[0].balance.amount == Decimal("7923.40")  # interimBooked preferred
        assert accounts[1].balance is not None
        assert accounts[1].balance.amount == Decimal("150000.00")  # misspelt interimAvaliable understood
        request = route.calls.last.request
        assert request.headers["Authorization"] == "Bearer seb-token"
        assert request.headers["X-Request-ID"]
        assert "Consent-ID" not in request.headers
        assert "PSU-IP-Address" not in request.headers
        assert "PSU-Corporate-ID" not in request.headers

    async def test_business_sends_corporate_id(self, adapter: SebAdapter, bank: respx.MockRouter) -> None:
        route = bank.get("/ais/v7/identified2/accounts").respond(200, json=payload("accounts.json"))
        await adapter.list_accounts(BUSINESS, creds())
        assert route.calls.last.request.headers["PSU-Corporate-ID"] == "5560000001"


class TestTransactions:
    async def test_two_pages_with_pending_reservation_negated(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        page2 = bank.get(TX_URL, params={"pagingKey": "PK0002"}).respond(
            200, json=payload("transactions_page2.json")
        )
        page1 = bank.get(TX_URL, params={"bookingStatus": "both"}).respond(
            200, json=payload("transactions_page1.json")
        )
        txs = await adapter.fetch_transactions(
            PRIVATE_PRESENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
        )
        assert (page1.call_count, page2.call_count) == (1, 1)
        first_request = page1.calls.last.request
        assert first_request.url.params["dateFrom"] == "2024-04-01"
        assert first_request.headers["PSU-IP-Address"] == "198.51.100.7"
        assert [(t.booking_status, t.amount) for t in txs] == [
            (BookingStatus.booked, Decimal("-349.00")),
            (BookingStatus.booked, Decimal("31200.00")),
            (BookingStatus.pending, Decimal("-129.00")),  # reservation arrives positive
            (BookingStatus.pending, Decimal("-8500.00")),
            (BookingStatus.booked, Decimal("-1890.00")),
        ]
        assert txs[0].provider_id == "SE3550000000054910000003-20240430-0001"
        assert txs[2].provider_id is None and txs[3].provider_id is None
        assert txs[0].description == "EXEMPELBUTIKEN"
        assert txs[1].counterparty == "Exempelbolaget AB"
        assert txs[4].reference == "4000123456789"

    async def test_missing_amount_names_the_field(self, adapter: SebAdapter, bank: respx.MockRouter) -> None:
        body = payload("transactions_page2.json")
        del body["transactions"]["booked"][0]["transactionAmount"]["amount"]
        bank.get(TX_URL).respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )
        assert info.value.bank_id == "seb"
        assert info.value.field == "transactions.booked[0].transactionAmount.amount"

    async def test_unparseable_date_names_the_field(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        body = payload("transactions_page2.json")
        body["transactions"]["booked"][0]["bookingDate"] = "3 april"
        bank.get(TX_URL).respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )
        assert info.value.field == "transactions.booked[0].bookingDate"


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "body", "error"),
        [
            (401, "error_consent_expired.json", ConsentExpired),
            (401, "error_token_invalid.json", ReauthRequired),
            (503, "error_maintenance.json", BankUnavailable),
            (500, "error_paging.json", TemporaryFailure),
        ],
    )
    async def test_error_bodies_map_onto_the_family(
        self, adapter: SebAdapter, bank: respx.MockRouter, status: int, body: str, error: type[Exception]
    ) -> None:
        bank.get(TX_URL).respond(status, json=payload(body))
        with pytest.raises(error):
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )

    async def test_paging_error_on_a_4xx_is_temporary(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get(TX_URL).respond(400, json=payload("error_paging.json"))
        with pytest.raises(TemporaryFailure):
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )

    async def test_access_exceeded_carries_retry_time(
        self, adapter: SebAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get(TX_URL).respond(
            429, json=payload("error_access_exceeded.json"), headers={"Retry-After": "600"}
        )
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )
        assert dt.timedelta(seconds=590) < info.value.retry_at - before < dt.timedelta(seconds=610)

    async def test_not_json_is_invalid_response(self, adapter: SebAdapter, bank: respx.MockRouter) -> None:
        bank.get(TX_URL).respond(200, text="<html>")
        with pytest.raises(InvalidResponse):
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )
