"""Nordea adapter over recorded, anonymised payloads (tests/data/banks/nordea)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

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
from ledgerlink.banks.adapters.nordea import NordeaAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings

BASE = "https://nordea.test"
DATA = BANK_DATA / "nordea"
ACCOUNT = "SE7630000000012345678901-SEK"

PRIVATE_PRESENT = ConnectionContext(
    account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.7"
)
PRIVATE_ABSENT = ConnectionContext(account_type="private")
BUSINESS = ConnectionContext(account_type="business", corporate_id="5560000001")


payload = payloads(DATA)


def creds(valid_until: dt.date | None = None) -> Credentials:
    until = valid_until or today_stockholm() + dt.timedelta(days=100)
    return Credentials(
        access_token="tok-123", refresh_token="ref-123", extra={"access_valid_until": until.isoformat()}
    )


@pytest.fixture
async def adapter() -> AsyncIterator[NordeaAdapter]:
    endpoint = BankEndpointSettings(base_url=BASE, client_id="client-1", client_secret=SecretStr("secret-1"))
    a = NordeaAdapter(BANKS["nordea"], endpoint)
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


class TestAuthorization:
    async def test_redirect_returns_bank_location_and_sends_state(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.post("/personal/v5/authorize").respond(
            302, headers={"Location": "https://identify.nordea.test/login?session=abc"}
        )
        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st-1", sca_method="redirect"
        )
        assert start.method == "redirect"
        assert start.url == "https://identify.nordea.test/login?session=abc"
        request = route.calls.last.request
        body = json.loads(request.content)
        assert body["state"] == "st-1"
        assert body["redirect_uri"] == "https://app.test/cb"
        assert "ACCOUNTS_TRANSACTIONS" in body["scope"]
        assert request.headers["X-IBM-Client-Id"] == "client-1"
        assert request.headers["X-Nordea-Originating-User-Ip"] == "198.51.100.7"

    async def test_code_exchange_posts_form_and_returns_tokens(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.post("/personal/v5/authorize/token").respond(200, json=payload("token.json"))
        result = await adapter.complete_authorization(
            PRIVATE_PRESENT, Credentials(), code="code-9", redirect_uri="https://app.test/cb"
        )
        form = parse_qs(route.calls.last.request.content.decode())
        assert form == {
            "grant_type": ["authorization_code"],
            "code": ["code-9"],
            "redirect_uri": ["https://app.test/cb"],
        }
        assert result.access_token == "test-access-token-0001"
        assert result.refresh_token == "test-refresh-token-0001"
        assert result.token_expires_at is not None
        assert result.extra["access_valid_until"] == (today_stockholm() + dt.timedelta(days=180)).isoformat()

    async def test_decoupled_bankid_polls_then_exchanges_code_for_token(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        start_route = bank.post("/personal/v5/decoupled/authentications").respond(
            201, json=payload("decoupled_authentication.json")
        )
        session = "b2a1c3d4-0000-4000-8000-000000000009"
        poll = bank.get(f"/personal/v5/decoupled/authentications/{session}")
        poll.side_effect = [
            httpx.Response(200, json=payload("decoupled_authentication.json")),
            httpx.Response(200, json=payload("decoupled_completed.json")),
        ]
        authz = bank.post("/personal/v5/decoupled/authorizations").respond(
            201, json=payload("decoupled_authorization.json")
        )
        token = bank.post("/personal/v5/decoupled/token").respond(200, json=payload("token.json"))

        start = await adapter.start_authorization(
            PRIVATE_PRESENT, redirect_uri="https://app.test/cb", state="st", sca_method="decoupled"
        )
        assert start.method == "decoupled"
        assert start.autostart_token == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
        assert json.loads(start_route.calls.last.request.content)["psu_id"] == "199001011234"

        first = await adapter.get_authorization_status(PRIVATE_PRESENT, start.credentials)
        assert first.status == "pending"
        done = await adapter.get_authorization_status(PRIVATE_PRESENT, first.credentials)
        assert done.status == "finalised"
        assert done.credentials.access_token == "test-access-token-0001"
        assert json.loads(authz.calls.last.request.content)["code"] == "authn-code-0001"
        assert parse_qs(token.calls.last.request.content.decode())["code"] == ["authz-code-0001"]

    async def test_decoupled_failure_is_reported(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/personal/v5/decoupled/authentications/s-1").respond(
            200, json={"response": {"session_id": "s-1", "status": "user_cancel"}}
        )
        status = await adapter.get_authorization_status(
            PRIVATE_PRESENT, Credentials(extra={"session_id": "s-1"})
        )
        assert status.status == "failed"
        assert status.message == "user_cancel"


class TestAccounts:
    async def test_private_accounts_are_normalised(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get("/personal/v5/accounts").respond(200, json=payload("accounts.json"))
        accounts = await adapter.list_accounts(PRIVATE_ABSENT, creds())
        assert [a.external_id for a in accounts] == [ACCOUNT, "SE4130000000098765432109-SEK"]
        first = accounts[0]
        assert first.iban == "SE7630000000012345678901"
        assert first.bban == "30000012345678901"
        assert first.usage == "private"
        assert first.balance is not None
        assert first.balance.amount == Decimal("14980.25")
        request = route.calls.last.request
        assert request.headers["Authorization"] == "Bearer tok-123"
        assert request.headers["X-Request-ID"]
        assert "X-Nordea-Originating-User-Ip" not in request.headers

    async def test_business_accounts_use_the_business_api(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        route = bank.get("/business/v4/accounts").respond(200, json=payload("accounts_business.json"))
        accounts = await adapter.list_accounts(BUSINESS, creds())
        assert route.called
        assert accounts[0].usage == "business"
        assert accounts[0].bban == "1234567-8"


class TestTransactions:
    async def test_all_pages_booked_and_reserved_with_signs(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        url = f"/personal/v5/accounts/{ACCOUNT}/transactions"
        page2 = bank.get(url, params={"continuation_key": "a1b2c3d4"}).respond(
            200, json=payload("transactions_page2.json")
        )
        page1 = bank.get(url, params={"from_date": "2024-04-01", "to_date": "2024-05-02"}).respond(
            200, json=payload("transactions_page1.json")
        )
        txs = await adapter.fetch_transactions(
            PRIVATE_PRESENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
        )
        assert page1.call_count == 1
        assert page2.call_count == 1
        assert [t.amount for t in txs] == [
            Decimal("-249.9"),
            Decimal("32500.0"),
            Decimal("-89.0"),
            Decimal("-1250.0"),
        ]
        assert [t.booking_status for t in txs] == [
            BookingStatus.booked,
            BookingStatus.booked,
            BookingStatus.pending,
            BookingStatus.booked,
        ]
        reserved = txs[2]
        assert reserved.booking_date == dt.date(2024, 5, 1)  # falls back to transaction_date
        assert txs[0].provider_id == "5a8e1c7f-0d6b-4b0a-9b1e-000000000101"
        assert txs[0].counterparty == "ICA Supermarket Exempelby"
        assert txs[1].description == "Lön april"
        assert txs[3].reference == "7712345678901"
        assert page1.calls.last.request.headers["X-Nordea-Originating-User-Ip"] == "198.51.100.7"

    async def test_continuation_key_without_link_resends_the_same_window(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        url = f"/personal/v5/accounts/{ACCOUNT}/transactions"
        first = payload("transactions_page1.json")
        first["response"]["_links"] = []
        first["response"]["continuation_key"] = "k-2"
        second = bank.get(url, params={"continuation_key": "k-2"}).respond(
            200, json=payload("transactions_page2.json")
        )
        bank.get(url).respond(200, json=first)
        txs = await adapter.fetch_transactions(
            PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
        )
        assert len(txs) == 4
        sent = second.calls.last.request.url.params
        assert (sent["from_date"], sent["to_date"]) == ("2024-04-01", "2024-05-02")

    async def test_balance_is_booked_balance(self, adapter: NordeaAdapter, bank: respx.MockRouter) -> None:
        detail = {"response": payload("accounts.json")["response"]["accounts"][0]}
        bank.get(f"/personal/v5/accounts/{ACCOUNT}").respond(200, json=detail)
        balance = await adapter.fetch_balance(PRIVATE_ABSENT, creds(), ACCOUNT)
        assert (balance.amount, balance.currency) == (Decimal("14980.25"), "SEK")


class TestErrors:
    async def test_expired_token_needs_reauth(self, adapter: NordeaAdapter, bank: respx.MockRouter) -> None:
        bank.get("/personal/v5/accounts").respond(401, json=payload("error_token_expired.json"))
        with pytest.raises(ReauthRequired) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, creds())
        assert not isinstance(info.value, ConsentExpired)

    async def test_expired_token_after_access_end_is_consent_expired(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/personal/v5/accounts").respond(401, json=payload("error_token_expired.json"))
        with pytest.raises(ConsentExpired):
            await adapter.list_accounts(PRIVATE_ABSENT, creds(today_stockholm() - dt.timedelta(days=1)))

    async def test_consent_read_back(self, adapter: NordeaAdapter, bank: respx.MockRouter) -> None:
        bank.get("/personal/v5/accounts").respond(200, json=payload("accounts.json"))
        until = today_stockholm() + dt.timedelta(days=30)
        info = await adapter.get_consent(PRIVATE_ABSENT, creds(until))
        assert (info.status, info.valid_until) == (ConsentStatus.valid, until)

    async def test_rate_limit_carries_retry_time(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/personal/v5/accounts").respond(429, headers={"Retry-After": "120"})
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, creds())
        delay = info.value.retry_at - before
        assert dt.timedelta(seconds=110) < delay < dt.timedelta(seconds=130)

    async def test_server_error_is_temporary(self, adapter: NordeaAdapter, bank: respx.MockRouter) -> None:
        bank.get("/personal/v5/accounts").respond(500, text="boom")
        with pytest.raises(TemporaryFailure):
            await adapter.list_accounts(PRIVATE_ABSENT, creds())

    async def test_maintenance_is_bank_unavailable(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/personal/v5/accounts").respond(503, json=payload("error_maintenance.json"))
        with pytest.raises(BankUnavailable):
            await adapter.list_accounts(PRIVATE_ABSENT, creds())

    async def test_non_json_body_is_invalid_response(
        self, adapter: NordeaAdapter, bank: respx.MockRouter
    ) -> None:
        bank.get("/personal/v5/accounts").respond(200, text="<html>oops</html>")
        with pytest.raises(InvalidResponse) as info:
            await adapter.list_accounts(PRIVATE_ABSENT, creds())
        assert info.value.bank_id == "nordea"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"amount": None}, "transactions[0].amount"),
            ({"amount": "12,3x"}, "transactions[0].amount"),
            ({"booking_date": "30/04/2024"}, "transactions[0].booking_date"),
            ({"currency": None}, "transactions[0].currency"),
        ],
    )
    async def test_malformed_transaction_names_the_field(
        self, adapter: NordeaAdapter, bank: respx.MockRouter, change: dict[str, Any], field: str
    ) -> None:
        body = payload("transactions_page2.json")
        body["response"]["transactions"][0].update(change)
        bank.get(f"/personal/v5/accounts/{ACCOUNT}/transactions").respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                PRIVATE_ABSENT, creds(), ACCOUNT, dt.date(2024, 4, 1), dt.date(2024, 5, 2)
            )
        assert info.value.field == field
        assert info.value.bank_id == "nordea"
