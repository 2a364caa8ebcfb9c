"""Swedbank adapter over recorded, anonymised payloads (tests/data/banks/swedbank)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

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
from ledgerlink.banks.adapters.berlingroup import PeriodInvalid
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.banks.adapters.swedbank import SwedbankAdapter
from ledgerlink.config import BankEndpointSettings

BASE = "https://psd2.swedbank.test"
DATA = BANK_DATA / "swedbank"
ACCOUNT = "AbCdEf0123456789"
TX_URL = f"/v4/accounts/{ACCOUNT}/transactions"
DETAILED = "det-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
LISTING = "list-7f3e2d1c-0b9a-4876-9543-210fedcba987"
TODAY = dt.date(2024, 5, 3)

PRIVATE_PRESENT = ConnectionContext(
    account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.7"
)
PRIVATE_ABSENT = ConnectionContext(account_type="private")
BUSINESS = ConnectionContext(account_type="business", corporate_id="5560000001")
CREDS = Credentials(consent_id=DETAILED)


payload = payloads(DATA)


@pytest.fixture
async def adapter(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SwedbankAdapter]:
    endpoint = BankEndpointSettings(
        base_url=BASE, client_id="swb-client", client_secret=SecretStr("swb-secret")
    )
    a = SwedbankAdapter(BANKS["swedbank"], endpoint)
    monkeypatch.setattr(a, "today", lambda: TODAY)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


def assert_bic_and_app_id(request: Any) -> None:
    assert request.url.params["bic"] == "SWEDSESS"
    assert request.url.params["app-id"] == "swb-client"


class TestAuthorization:
    async def test_list_consent_then_detailed_consent_for_the_ibans(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        consents = bank.post("/v4/consents")
        consents.side_effect = [
            respx.MockResponse(201, json=payload("consent_list.json")),
            respx.MockResponse(201, json=payload("consent_detailed_redirect.json")),
        ]
        accounts = bank.get("/v4/accounts").respond(200, json=payload("accounts.json"))
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st-1", sca_method="redirect"
        )
        list_request, detailed_request = (call.request for call in consents.calls)
        assert json.loads(list_request.content)["access"] == {"availableAccounts": "allAccounts"}
        assert accounts.calls.last.request.headers["Consent-ID"] == LISTING
        detailed = json.loads(detailed_request.content)
        assert detailed["access"]["transactions"] == [
            {"iban": "SE9080000810590000012345"},
            {"iban": "SE4580000832790000098765"},
        ]
        assert (detailed["recurringIndicator"], detailed["frequencyPerDay"]) == (True, 4)
        assert detailed_request.headers["TPP-Redirect-Preferred"] == "true"
        assert "state=st-1" in detailed_request.headers["TPP-Redirect-URI"]
        assert detailed_request.headers["PSU-IP-Address"] == "198.51.100.7"
        for request in (list_request, detailed_request, accounts.calls.last.request):
            assert_bic_and_app_id(request)
        assert start.method == "redirect"
        assert start.url == f"https://online.swedbank.test/psd2/consent?consentId={DETAILED}"
        assert start.credentials.consent_id == DETAILED
        assert start.credentials.extra["account_list_consent_id"] == LISTING

    async def test_decoupled_starts_authorisation_with_psu_id(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        consents = bank.post("/v4/consents")
        consents.side_effect = [
            respx.MockResponse(201, json=payload("consent_list.json")),
            respx.MockResponse(201, json=payload("consent_detailed_decoupled.json")),
        ]
        bank.get("/v4/accounts").respond(200, json=payload("accounts.json"))
        auth = bank.post(f"/v4/consents/{DETAILED}/authorisations").respond(
            201, json=payload("authorisation_started.json")
        )
        status = bank.get(f"/v4/consents/{DETAILED}/authorisations/auth-9f8e7d6c").respond(
            200, json={"scaStatus": "finalised"}
        )
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st", sca_method="decoupled"
        )
        assert auth.calls.last.request.headers["PSU-ID"] == "199001011234"
        assert_bic_and_app_id(auth.calls.last.request)
        assert start.autostart_token == "b8d5a6c2-1f3e-4d7a-9c0b-2e4f6a8c0d1e"
        done = await adapter.get_authorization_status(PRIVATE_PRESENT, start.credentials)
        assert done.status == "finalised"
        assert_bic_and_app_id(status.calls.last.request)

    async def test_consent_validity_is_read_back(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get(f"/v4/consents/{DETAILED}").respond(200, json=payload("consent_status.json"))
        info = await adapter.get_consent(PRIVATE_ABSENT, CREDS)
        assert (info.status, info.valid_until) == (ConsentStatus.valid, dt.date(2024, 10, 29))
        assert_bic_and_app_id(route.calls.last.request)


class TestAccounts:
    async def test_accounts_with_usage_and_headers(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get("/v4/accounts").respond(200, json=payload("accounts.json"))
        accounts = await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert [(a.external_id, a.usage) for a in accounts] == [
            (ACCOUNT, "private"),
            ("GhIjKl9876543210", "business"),
        ]
        request = route.calls.last.request
        assert request.headers["Consent-ID"] == DETAILED
        assert request.headers["X-Request-ID"]
        assert "PSU-IP-Address" not in request.headers
        assert "PSU-Corporate-ID" not in request.headers
        assert_bic_and_app_id(request)

    async def test_business_sends_corporate_id(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get("/v4/accounts").respond(200, json=payload("accounts.json"))
        await adapter.list_accounts(BUSINESS, CREDS)
        assert route.calls.last.request.headers["PSU-Corporate-ID"] == "5560000001"

    async def test_balance(self, adapter: SwedbankAdapter, bank: respx.MockRouter) -> None:
        bank.get(f"/v4/accounts/{ACCOUNT}/balances").respond(200, json=payload("balances.json"))
        balance = await adapter.fetch_balance(PRIVATE_ABSENT, CREDS, ACCOUNT)
        assert (balance.amount, balance.as_of) == (Decimal("4980.50"), dt.date(2024, 5, 2))


class TestTransactions:
    async def test_two_pages_keep_link_query_and_bic(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        page2 = bank.get(TX_URL, params={"page": "2"}).respond(200, json=payload("transactions_page2.json"))
        page1 = bank.get(TX_URL, params={"dateFrom": "2024-03-01"}).respond(
            200, json=payload("transactions_page1.json")
        )
        txs = await adapter.fetch_transactions(
            PRIVATE_PRESENT, CREDS, ACCOUNT, dt.date(2024, 3, 1), dt.date(2024, 5, 2)
        )
        assert (page1.call_count, page2.call_count) == (1, 1)
        assert_bic_and_app_id(page2.calls.last.request)
        assert page1.calls.last.request.url.params["bookingStatus"] == "both"
        assert page1.calls.last.request.headers["PSU-IP-Address"] == "198.51.100.7"
        assert [(t.booking_status, t.amount) for t in txs] == [
            (BookingStatus.booked, Decimal("-64.00")),
            (BookingStatus.booked, Decimal("27400.00")),
            (BookingStatus.pending, Decimal("-210.00")),
            (BookingStatus.booked, Decimal("-899.00")),
        ]
        assert txs[0].provider_id == "2024050200001234"
        assert txs[1].description == "LÖN APRIL"  # structured text when no unstructured one
        assert txs[3].reference == "55123001"
        assert txs[2].booking_date == dt.date(2024, 5, 3)

    async def test_window_older_than_89_days_is_refused_before_calling(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get(TX_URL).respond(200, json=payload("transactions_page2.json"))
        with pytest.raises(PeriodInvalid) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, CREDS, ACCOUNT, dt.date(2024, 1, 1), dt.date(2024, 5, 2)
            )
        assert info.value.max_days == 89
        assert not route.called

    async def test_unparseable_date_names_the_field(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        body = payload("transactions_page2.json")
        body["transactions"]["booked"][0]["bookingDate"] = "2024-13-45"
        bank.get(TX_URL).respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, CREDS, ACCOUNT, dt.date(2024, 3, 1), dt.date(2024, 5, 2)
            )
        assert (info.value.bank_id, info.value.field) == ("swedbank", "transactions.booked[0].bookingDate")


class TestErrors:
    @pytest.mark.parametrize(
        ("status", "body", "error"),
        [
            (401, "error_consent_expired.json", ConsentExpired),
            (401, "error_kyc_invalid.json", ReauthRequired),
            (503, "error_maintenance.json", BankUnavailable),
        ],
    )
    async def test_error_bodies_map_onto_the_family(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter, status: int, body: str, error: type[Exception]
    ) -> None:
        bank.get("/v4/accounts").respond(status, json=payload(body))
        with pytest.raises(error):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_access_exceeded_carries_retry_time(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/v4/accounts").respond(
            429, json=payload("error_access_exceeded.json"), headers={"Retry-After": "900"}
        )
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert dt.timedelta(seconds=890) < info.value.retry_at - before < dt.timedelta(seconds=910)

    async def test_server_error_is_temporary(self, adapter: SwedbankAdapter, bank: respx.MockRouter) -> None:
        bank.get("/v4/accounts").respond(500, text="Internal error")
        with pytest.raises(TemporaryFailure):
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)

    async def test_not_json_is_invalid_response(
        self, adapter: SwedbankAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/v4/accounts").respond(200, text="<html>")
        with pytest.raises(InvalidResponse) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, CREDS)
        assert info.value.bank_id == "swedbank"
