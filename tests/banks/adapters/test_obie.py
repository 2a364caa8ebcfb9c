"""The shared OBIE v3.1 AIS adapter, over spec-shaped payloads in tests/data/banks/obie/."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
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
from ledgerlink.banks.adapters.obie import ObieAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "obie"
API = "https://obie.example"
AUTH = "https://auth.obie.example"
ENTRY = dataclasses.replace(BANKS["revolut"], id="obiebank", name="OBIE Bank")
PRESENT = ConnectionContext(account_type="business", psu_ip_address="198.51.100.7")
UNATTENDED = ConnectionContext(account_type="business")
CREDS = Credentials(
    consent_id="urn-obie-intent-88379",
    access_token="user-token-0001",
    refresh_token="refresh-0001",
    token_expires_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
)


load = payloads(DATA)


def endpoint(**kw: Any) -> BankEndpointSettings:
    values: dict[str, Any] = {
        "base_url": API,
        "auth_base_url": AUTH,
        "client_id": "client-123",
        "client_secret": SecretStr("s3cret"),
    }
    values.update(kw)
    return BankEndpointSettings(**values)


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(API)


@pytest.fixture
async def adapter() -> AsyncIterator[ObieAdapter]:
    obie = ObieAdapter(ENTRY, endpoint())
    yield obie
    await obie.aclose()


def mock_transactions(bank: respx.MockRouter) -> None:
    path = "/accounts/acc-22289/transactions"
    bank.get(path, params__contains={"page": "2"}, name="tx_page2").respond(
        200, json=load("transactions_page2.json")
    )
    bank.get(path, name="tx_page1").respond(200, json=load("transactions_page1.json"))


class TestAuthorization:
    async def test_creates_consent_with_client_token_and_redirects_with_signed_intent(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        token = bank.post(f"{AUTH}/token", name="token").respond(
            200, json=load("token_client_credentials.json")
        )
        consent = bank.post("/account-access-consents", name="consent").respond(
            201, json=load("consent_created.json")
        )
        signed: list[dict[str, Any]] = []

        def signer(claims: dict[str, Any]) -> str:
            signed.append(claims)
            return "signed.request.object"

        adapter.request_object_signer = signer

        start = await adapter.start_authorization(
            PRESENT, redirect_uri="https://app.example/callback", state="state-xyz"
        )

        token_form = urllib.parse.parse_qs(token.calls.last.request.content.decode())
        assert token_form["grant_type"] == ["client_credentials"]
        assert token_form["scope"] == ["accounts"]
        assert token.calls.last.request.headers["Authorization"].startswith("Basic ")
        sent = json.loads(consent.calls.last.request.content)
        assert sent["Data"]["Permissions"] == [
            "ReadAccountsDetail",
            "ReadBalances",
            "ReadTransactionsDetail",
            "ReadTransactionsCredits",
            "ReadTransactionsDebits",
        ]
        expires = dt.datetime.fromisoformat(sent["Data"]["ExpirationDateTime"])
        assert dt.timedelta(days=179) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=180)
        assert sent["Risk"] == {}
        assert consent.calls.last.request.headers["Authorization"] == "Bearer cc-token-0001"

        assert start.method == "redirect"
        assert start.credentials.consent_id == "urn-obie-intent-88379"
        assert start.url is not None
        url = httpx.URL(start.url)
        assert str(url.copy_with(query=None)) == f"{AUTH}/authorize"
        assert url.params["request"] == "signed.request.object"
        assert url.params["state"] == "state-xyz"
        assert url.params["client_id"] == "client-123"
        assert url.params["response_type"] == "code id_token"
        assert signed[0]["claims"]["id_token"]["openbanking_intent_id"]["value"] == "urn-obie-intent-88379"
        assert signed[0]["redirect_uri"] == "https://app.example/callback"
        assert signed[0]["nonce"] == url.params["nonce"]

    async def test_configured_pem_key_signs_a_verifiable_ps256_request_object(
        self, bank: respx.MockRouter
    ) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        bank.post(f"{AUTH}/token").respond(200, json=load("token_client_credentials.json"))
        bank.post("/account-access-consents").respond(201, json=load("consent_created.json"))
        obie = ObieAdapter(ENTRY, endpoint(client_secret=SecretStr(pem), app_id="kid-1"))
        try:
            start = await obie.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")
        finally:
            await obie.aclose()

        assert start.url is not None
        jwt = httpx.URL(start.url).params["request"]
        header_b64, claims_b64, sig_b64 = jwt.split(".")

        def unb64(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        assert json.loads(unb64(header_b64)) == {"alg": "PS256", "kid": "kid-1", "typ": "JWT"}
        claims = json.loads(unb64(claims_b64))
        assert claims["claims"]["userinfo"]["openbanking_intent_id"]["value"] == "urn-obie-intent-88379"
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        key.public_key().verify(unb64(sig_b64), f"{header_b64}.{claims_b64}".encode(), pss, hashes.SHA256())
        with pytest.raises(InvalidSignature):
            key.public_key().verify(unb64(sig_b64), f"{header_b64}.e30".encode(), pss, hashes.SHA256())

    async def test_without_a_signing_key_no_consent_is_created(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        consent = bank.post("/account-access-consents").respond(201, json=load("consent_created.json"))
        with pytest.raises(BankUnavailable, match="signing key"):
            await adapter.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")
        assert not consent.called

    async def test_code_exchange_returns_user_tokens(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        token = bank.post(f"{AUTH}/token").respond(200, json=load("token_authorization_code.json"))
        creds = await adapter.complete_authorization(
            PRESENT,
            Credentials(consent_id="urn-obie-intent-88379"),
            code="auth-code-1",
            redirect_uri="https://app.example/cb",
        )
        form = urllib.parse.parse_qs(token.calls.last.request.content.decode())
        assert form["grant_type"] == ["authorization_code"]
        assert form["code"] == ["auth-code-1"]
        assert form["redirect_uri"] == ["https://app.example/cb"]
        assert creds.consent_id == "urn-obie-intent-88379"
        assert creds.access_token == "user-token-0001"
        assert creds.refresh_token == "refresh-0001"
        assert creds.token_expires_at is not None
        assert creds.token_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=59)
        assert "authorised_at" in creds.extra

    async def test_missing_code_means_the_user_must_authorise_again(self, adapter: ObieAdapter) -> None:
        with pytest.raises(ReauthRequired):
            await adapter.complete_authorization(
                PRESENT, Credentials(consent_id="c"), code=None, redirect_uri="https://app.example/cb"
            )

    async def test_expired_access_token_is_refreshed_before_reading(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        token = bank.post(f"{AUTH}/token").respond(200, json=load("token_refreshed.json"))
        accounts = bank.get("/accounts").respond(200, json=load("accounts.json"))
        adapter.balances_in_account_list = False
        expired = dataclasses.replace(CREDS, token_expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        await adapter.list_accounts(UNATTENDED, expired)
        form = urllib.parse.parse_qs(token.calls.last.request.content.decode())
        assert form["grant_type"] == ["refresh_token"]
        assert form["refresh_token"] == ["refresh-0001"]
        assert accounts.calls.last.request.headers["Authorization"] == "Bearer user-token-0002"

    async def test_rejected_refresh_token_requires_reauth(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        bank.post(f"{AUTH}/token").respond(400, json=load("error_invalid_grant.json"))
        expired = dataclasses.replace(CREDS, token_expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        with pytest.raises(ReauthRequired) as info:
            await adapter.list_accounts(UNATTENDED, expired)
        assert not isinstance(info.value, ConsentExpired)


class TestConsent:
    async def test_reads_status_and_granted_validity(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        bank.post(f"{AUTH}/token").respond(200, json=load("token_client_credentials.json"))
        route = bank.get("/account-access-consents/urn-obie-intent-88379").respond(
            200, json=load("consent_authorised.json")
        )
        info = await adapter.get_consent(UNATTENDED, CREDS)
        assert info.status is ConsentStatus.valid
        # 2099-08-27T22:30Z is already 28 August in Stockholm (CEST).
        assert info.valid_until == dt.date(2099, 8, 28)
        assert route.calls.last.request.headers["Authorization"] == "Bearer cc-token-0001"

    async def test_authorised_past_expiry_reads_as_expired(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        body = load("consent_authorised.json")
        body["Data"]["ExpirationDateTime"] = "2024-01-01T00:00:00+00:00"
        bank.post(f"{AUTH}/token").respond(200, json=load("token_client_credentials.json"))
        bank.get("/account-access-consents/urn-obie-intent-88379").respond(200, json=body)
        info = await adapter.get_consent(UNATTENDED, CREDS)
        assert info.status is ConsentStatus.expired

    async def test_revoke_deletes_the_consent_and_tolerates_already_gone(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        bank.post(f"{AUTH}/token").respond(200, json=load("token_client_credentials.json"))
        route = bank.delete("/account-access-consents/urn-obie-intent-88379")
        route.side_effect = [httpx.Response(204), httpx.Response(404)]
        await adapter.revoke(UNATTENDED, CREDS)
        await adapter.revoke(UNATTENDED, CREDS)
        assert route.call_count == 2


class TestData:
    async def test_accounts_with_identifiers_usage_and_signed_balances(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        bank.get("/accounts").respond(200, json=load("accounts.json"))
        bank.get("/accounts/acc-22289/balances").respond(200, json=load("balances_acc-22289.json"))
        bank.get("/accounts/acc-31820/balances").respond(200, json=load("balances_acc-31820.json"))

        business, personal = await adapter.list_accounts(PRESENT, CREDS)

        assert business.external_id == "acc-22289"
        assert business.iban == "SE4550000000058398257466"
        assert business.currency == "SEK"
        assert business.name == "Företagskonto"
        assert business.usage == "business"
        assert business.balance is not None
        assert business.balance.amount == Decimal("14980.05")  # InterimBooked beats InterimAvailable
        assert business.balance.as_of == dt.date(2024, 3, 16)  # 23:10Z is the next Stockholm day
        assert personal.iban == "LT121000011101001000"
        assert personal.usage == "private"
        assert personal.name == "A Person"
        assert personal.balance is not None
        assert personal.balance.amount == Decimal("-42.10")
        assert personal.balance.currency == "EUR"

    async def test_transactions_follow_next_link_with_signs_statuses_and_stockholm_dates(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        mock_transactions(bank)

        txs = await adapter.fetch_transactions(
            UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 7, 31)
        )

        first = bank["tx_page1"].calls.last.request
        # Stockholm midnight of the window edges, sent as UTC without a zone.
        assert first.url.params["fromBookingDateTime"] == "2024-02-29T23:00:00"
        assert first.url.params["toBookingDateTime"] == "2024-07-31T21:59:59"
        assert bank["tx_page2"].called
        assert [t.provider_id for t in txs] == [
            "tx-0001",
            "tx-0002",
            "tx-p-0003",
            "tx-0004",
        ]  # Rejected dropped

        card, invoice, pending, rent = txs
        assert card.amount == Decimal("-125.50")
        assert card.booking_status is BookingStatus.booked
        assert card.booking_date == dt.date(2024, 3, 15)  # 23:30Z on the 14th is 00:30 CET on the 15th
        assert card.counterparty == "Kafé Exempel"
        assert card.description == "Kortköp 4242"
        assert invoice.amount == Decimal("10000.00")
        assert invoice.counterparty == "Exempelkund AB"
        assert invoice.reference == "OCR 10010"
        assert invoice.value_date == dt.date(2024, 3, 15)
        assert pending.booking_status is BookingStatus.pending
        assert pending.amount == Decimal("-49.00")
        assert rent.booking_date == dt.date(2024, 7, 1)  # 22:15Z is 00:15 CEST
        assert rent.counterparty == "Hyresvärden AB"
        assert transaction_identities(txs)[0] == "id:tx-0001"

    async def test_next_link_to_a_foreign_host_is_refused(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        body = load("transactions_page1.json")
        body["Links"]["Next"] = "https://evil.example/steal"
        bank.get("/accounts/acc-22289/transactions").respond(200, json=body)
        with pytest.raises(InvalidResponse, match=r"Links\.Next"):
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )

    async def test_next_link_pointing_back_is_refused(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        page2 = load("transactions_page2.json")
        page2["Links"]["Next"] = load("transactions_page1.json")["Links"]["Next"]  # itself
        path = "/accounts/acc-22289/transactions"
        bank.get(path, params__contains={"page": "2"}).respond(200, json=page2)
        bank.get(path).respond(200, json=load("transactions_page1.json"))
        with pytest.raises(InvalidResponse, match="paging"):
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 7, 31)
            )


class TestHeaders:
    async def test_customer_ip_only_when_user_present(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        route = bank.get("/accounts/acc-22289/balances").respond(200, json=load("balances_acc-22289.json"))
        await adapter.fetch_balance(PRESENT, CREDS, "acc-22289")
        await adapter.fetch_balance(UNATTENDED, CREDS, "acc-22289")
        present, unattended = (call.request.headers for call in route.calls)
        assert present["x-fapi-customer-ip-address"] == "198.51.100.7"
        assert "x-fapi-customer-ip-address" not in unattended
        assert present["Authorization"] == "Bearer user-token-0001"
        assert present["x-fapi-interaction-id"] != unattended["x-fapi-interaction-id"]
        assert "x-fapi-financial-id" not in present  # the generic bank publishes none


ERRORS = [
    pytest.param(401, "error_unauthorised.json", {}, ReauthRequired, id="401-reauth"),
    pytest.param(403, "error_consent_revoked.json", {}, ReauthRequired, id="403-revoked-reauth"),
    pytest.param(403, "error_consent_expired.json", {}, ConsentExpired, id="403-consent-expired"),
    pytest.param(429, "error_rate_limited.json", {"Retry-After": "120"}, RateLimited, id="429"),
    pytest.param(500, "error_server.json", {}, TemporaryFailure, id="500"),
    pytest.param(502, None, {}, TemporaryFailure, id="502-no-body"),
    pytest.param(503, "error_maintenance.json", {}, BankUnavailable, id="503-maintenance"),
    pytest.param(503, "error_server.json", {}, TemporaryFailure, id="503-overload"),
]


class TestErrors:
    @pytest.mark.parametrize(("status", "body", "headers", "expected"), ERRORS)
    async def test_status_and_body_map_to_the_error_family(
        self,
        bank: respx.MockRouter,
        adapter: ObieAdapter,
        status: int,
        body: str | None,
        headers: dict[str, str],
        expected: type[Exception],
    ) -> None:
        payload = load(body) if body else None
        bank.get("/accounts/acc-22289/transactions").respond(status, json=payload, headers=headers)
        with pytest.raises(expected) as info:
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
        assert type(info.value) is expected  # the exact kind, not just a parent
        assert info.value.bank_id == "obiebank"  # type: ignore[attr-defined]

    async def test_rate_limit_carries_retry_after(self, bank: respx.MockRouter, adapter: ObieAdapter) -> None:
        bank.get("/accounts").respond(
            429, json=load("error_rate_limited.json"), headers={"Retry-After": "120"}
        )
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.list_accounts(UNATTENDED, CREDS)
        assert before + dt.timedelta(seconds=119) <= info.value.retry_at <= before + dt.timedelta(seconds=125)

    async def test_timeout_is_temporary(self, bank: respx.MockRouter, adapter: ObieAdapter) -> None:
        bank.get("/accounts").mock(side_effect=httpx.ConnectTimeout)
        with pytest.raises(TemporaryFailure):
            await adapter.list_accounts(UNATTENDED, CREDS)

    async def test_malformed_transaction_names_bank_and_field(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        bank.get("/accounts/acc-22289/transactions").respond(200, json=load("transactions_malformed.json"))
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
        assert info.value.field == "page 1 Data.Transaction[0].Amount"
        assert "obiebank" in str(info.value)

    async def test_non_json_body_is_invalid(self, bank: respx.MockRouter, adapter: ObieAdapter) -> None:
        bank.get("/accounts").respond(200, text="<html>login</html>")
        with pytest.raises(InvalidResponse, match="obiebank"):
            await adapter.list_accounts(UNATTENDED, CREDS)

    async def test_unknown_booking_status_is_invalid(
        self, bank: respx.MockRouter, adapter: ObieAdapter
    ) -> None:
        body = load("transactions_page2.json")
        body["Data"]["Transaction"][0]["Status"] = "Settled"
        bank.get("/accounts/acc-22289/transactions").respond(200, json=body)
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, "acc-22289", dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
        assert info.value.field == "page 1 Data.Transaction[0].Status"
