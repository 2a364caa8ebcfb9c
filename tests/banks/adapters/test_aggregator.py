"""The aggregator adapter (Enable Banking API shape) over payloads in tests/data/banks/aggregator/."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr
from tests.banks.adapters.support import BANK_DATA, payloads

from ledgerlink.banks.adapters.aggregator import AggregatorAdapter
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
from ledgerlink.banks.adapters.registry import BANKS, create_adapter
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "aggregator"
API = "https://api.enablebanking.com"
UID = "07cc67f4-45d6-494b-adac-09b5cbc7e2b5"
SESSION = "4a9e2d1c-7b3f-4e8a-a1c2-9d8e7f6a5b4c"
PRESENT = ConnectionContext(account_type="business", psu_ip_address="203.0.113.9")
UNATTENDED = ConnectionContext(account_type="business")
CREDS = Credentials(consent_id=SESSION)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()


load = payloads(DATA)


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def settings(**kw: Any) -> BankEndpointSettings:
    values: dict[str, Any] = {"client_secret": SecretStr(PEM), "app_id": "app-5f1c"}
    values.update(kw)
    return BankEndpointSettings(**values)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def adapter() -> AsyncIterator[AggregatorAdapter]:
    eko = AggregatorAdapter(BANKS["ekobanken"], settings())
    yield eko
    await eko.aclose()


class TestApplicationAuth:
    async def test_every_call_carries_an_rs256_jwt_signed_by_the_application_key(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        route = api.get(f"/sessions/{SESSION}").respond(200, json=load("session.json"))
        await adapter.get_consent(UNATTENDED, CREDS)
        scheme, jwt = route.calls.last.request.headers["Authorization"].split(" ")
        assert scheme == "Bearer"
        header_b64, claims_b64, sig_b64 = jwt.split(".")
        assert json.loads(unb64(header_b64)) == {"alg": "RS256", "kid": "app-5f1c", "typ": "JWT"}
        claims = json.loads(unb64(claims_b64))
        assert claims["aud"] == "api.enablebanking.com"
        assert 0 < claims["exp"] - claims["iat"] <= 86400
        KEY.public_key().verify(
            unb64(sig_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )

    async def test_without_an_application_key_the_bank_is_unavailable(self, api: respx.MockRouter) -> None:
        route = api.get("/aspsps").respond(200, json=load("aspsps.json"))
        eko = AggregatorAdapter(BANKS["ekobanken"], BankEndpointSettings())
        try:
            with pytest.raises(BankUnavailable, match="key"):
                await eko.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")
        finally:
            await eko.aclose()
        assert not route.called

    def test_registry_builds_the_shared_adapter_for_each_aggregated_bank(self) -> None:
        for bank_id in ("ekobanken", "jak", "lanospar", "brabank"):
            adapter = create_adapter(bank_id, settings())
            assert isinstance(adapter, AggregatorAdapter)
            assert adapter.bank_id == bank_id


class TestAuthorization:
    async def test_finds_the_aspsp_and_starts_auth_with_capped_validity(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        aspsps = api.get("/aspsps").respond(200, json=load("aspsps.json"))
        auth = api.post("/auth").respond(200, json=load("auth.json"))

        start = await adapter.start_authorization(
            PRESENT, redirect_uri="https://app.example/cb", state="st-1"
        )

        assert aspsps.calls.last.request.url.params["country"] == "SE"
        body = json.loads(auth.calls.last.request.content)
        assert body["aspsp"] == {"name": "Ekobanken", "country": "SE"}
        assert body["state"] == "st-1"
        assert body["redirect_url"] == "https://app.example/cb"
        assert body["psu_type"] == "business"
        valid_until = dt.datetime.fromisoformat(body["access"]["valid_until"])
        # Ekobanken allows 7 776 000 s (90 days), less than the 180 days we would ask for.
        assert dt.timedelta(days=89) < valid_until - dt.datetime.now(dt.UTC) <= dt.timedelta(days=90)
        assert start.method == "redirect"
        assert start.url == load("auth.json")["url"]
        assert start.credentials.extra["authorization_id"] == "73f1c3ae-2f5c-4e1b-9b1a-0d1a5e7f2c40"

    async def test_bank_missing_from_the_aspsp_list_is_unavailable(self, api: respx.MockRouter) -> None:
        api.get("/aspsps").respond(200, json=load("aspsps.json"))
        auth = api.post("/auth").respond(200, json=load("auth.json"))
        jak = AggregatorAdapter(BANKS["jak"], settings())
        try:
            with pytest.raises(BankUnavailable, match="JAK Medlemsbank"):
                await jak.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")
        finally:
            await jak.aclose()
        assert not auth.called

    async def test_psu_type_must_be_offered(self, api: respx.MockRouter) -> None:
        api.get("/aspsps").respond(200, json=load("aspsps.json"))
        auth = api.post("/auth").respond(200, json=load("auth.json"))
        las = AggregatorAdapter(BANKS["lanospar"], settings())
        try:
            with pytest.raises(BankUnavailable, match="business"):
                await las.start_authorization(PRESENT, redirect_uri="https://app.example/cb", state="s")
            private = ConnectionContext(account_type="private", psu_ip_address="203.0.113.9")
            await las.start_authorization(private, redirect_uri="https://app.example/cb", state="s")
        finally:
            await las.aclose()
        body = json.loads(auth.calls.last.request.content)
        assert body["aspsp"]["name"] == "Lån & Spar Bank"
        assert body["psu_type"] == "personal"

    async def test_code_opens_a_session(self, api: respx.MockRouter, adapter: AggregatorAdapter) -> None:
        route = api.post("/sessions").respond(200, json=load("session_created.json"))
        creds = await adapter.complete_authorization(
            PRESENT,
            Credentials(extra={"authorization_id": "a"}),
            code="code-77",
            redirect_uri="https://app.example/cb",
        )
        assert json.loads(route.calls.last.request.content) == {"code": "code-77"}
        assert creds.consent_id == SESSION
        assert creds.extra["valid_until"] == "2024-05-29T21:45:00+00:00"

    async def test_session_status_and_validity_in_stockholm(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/sessions/{SESSION}").respond(200, json=load("session.json"))
        info = await adapter.get_consent(UNATTENDED, CREDS)
        assert info.status is ConsentStatus.valid
        assert info.valid_until == dt.date(2024, 5, 30)  # 22:30Z is 00:30 CEST the next day

    async def test_revoke_deletes_the_session(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        route = api.delete(f"/sessions/{SESSION}").respond(200, json={"message": "OK"})
        await adapter.revoke(UNATTENDED, CREDS)
        assert route.called

    async def test_revoking_a_closed_session_is_a_no_op(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        route = api.delete(f"/sessions/{SESSION}").respond(401, json=load("error_closed_session.json"))
        await adapter.revoke(UNATTENDED, CREDS)
        assert route.called


class TestData:
    async def test_accounts_from_session_details_and_balances(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/sessions/{SESSION}").respond(200, json=load("session.json"))
        api.get(f"/accounts/{UID}/details").respond(200, json=load("account_details.json"))
        api.get(f"/accounts/{UID}/balances").respond(200, json=load("balances.json"))

        (account,) = await adapter.list_accounts(PRESENT, CREDS)

        assert account.external_id == UID
        assert account.iban == "SE5097000000000123456789"
        assert account.currency == "SEK"
        assert account.usage == "business"
        assert account.name == "Företagskonto"
        assert account.balance is not None
        assert account.balance.amount == Decimal("19812.40")  # CLBD beats ITAV
        assert account.balance.as_of == dt.date(2024, 3, 15)

    async def test_transactions_page_by_continuation_key_with_signs_and_stable_ids(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        path = f"/accounts/{UID}/transactions"
        page2 = api.get(path, params__contains={"continuation_key": "ck-page-2"}).respond(
            200, json=load("transactions_page2.json")
        )
        page1 = api.get(path).respond(200, json=load("transactions_page1.json"))

        txs = await adapter.fetch_transactions(
            UNATTENDED, CREDS, UID, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
        )

        assert page1.calls.last.request.url.params["date_from"] == "2024-03-01"
        assert page1.calls.last.request.url.params["date_to"] == "2024-03-31"
        assert page2.calls.last.request.url.params["date_from"] == "2024-03-01"
        assert len(txs) == 4  # the cancelled row is not a transaction
        office, customer, telco, groceries = txs
        assert office.amount == Decimal("-1250.00")
        assert office.provider_id == "EKO-TX-90001"
        assert office.counterparty == "Kontorsvaror i Sverige AB"
        assert office.description == "Faktura 5521 Kontorsmaterial"
        assert office.reference == "5521"
        assert office.booking_date == dt.date(2024, 3, 15)
        assert customer.amount == Decimal("4800.00")
        assert customer.counterparty == "Kund Exempel AB"
        assert customer.provider_id is None  # "2024-03-15-2" is positional and shifts
        assert telco.provider_id == "BGC-55A1F09"  # a non-positional entry reference is kept
        assert groceries.booking_status is BookingStatus.pending
        assert groceries.booking_date == dt.date(2024, 3, 17)
        assert groceries.amount == Decimal("-89.90")
        ids = transaction_identities(txs)
        assert ids[0] == "id:EKO-TX-90001"
        assert ids[1].startswith("h:")


class TestHeaders:
    async def test_psu_ip_only_when_user_present(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        route = api.get(f"/accounts/{UID}/balances").respond(200, json=load("balances.json"))
        await adapter.fetch_balance(PRESENT, CREDS, UID)
        await adapter.fetch_balance(UNATTENDED, CREDS, UID)
        present, unattended = (call.request.headers for call in route.calls)
        assert present["Psu-Ip-Address"] == "203.0.113.9"
        assert "Psu-Ip-Address" not in unattended
        assert unattended["Authorization"].startswith("Bearer ")


ERRORS = [
    pytest.param(401, "error_expired_session.json", {}, ConsentExpired, id="expired-session"),
    pytest.param(401, "error_closed_session.json", {}, ReauthRequired, id="closed-session"),
    pytest.param(429, "error_rate_limit.json", {"Retry-After": "3600"}, RateLimited, id="429"),
    pytest.param(502, "error_aspsp_error.json", {}, TemporaryFailure, id="aspsp-error"),
    pytest.param(500, None, {}, TemporaryFailure, id="500"),
    pytest.param(503, "error_maintenance.json", {}, BankUnavailable, id="maintenance"),
]


class TestErrors:
    @pytest.mark.parametrize(("status", "body", "headers", "expected"), ERRORS)
    async def test_errors_map_to_the_family(
        self,
        api: respx.MockRouter,
        adapter: AggregatorAdapter,
        status: int,
        body: str | None,
        headers: dict[str, str],
        expected: type[Exception],
    ) -> None:
        api.get(f"/accounts/{UID}/transactions").respond(
            status, json=load(body) if body else None, headers=headers
        )
        with pytest.raises(expected) as info:
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, UID, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
        assert type(info.value) is expected
        assert info.value.bank_id == "ekobanken"  # type: ignore[attr-defined]

    async def test_rate_limit_retry_time_from_retry_after(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/accounts/{UID}/balances").respond(
            429, json=load("error_rate_limit.json"), headers={"Retry-After": "3600"}
        )
        before = dt.datetime.now(dt.UTC)
        with pytest.raises(RateLimited) as info:
            await adapter.fetch_balance(UNATTENDED, CREDS, UID)
        assert (
            before + dt.timedelta(seconds=3599) <= info.value.retry_at <= before + dt.timedelta(seconds=3605)
        )

    async def test_connection_error_is_temporary(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/accounts/{UID}/balances").mock(side_effect=httpx.ConnectError)
        with pytest.raises(TemporaryFailure):
            await adapter.fetch_balance(UNATTENDED, CREDS, UID)

    async def test_malformed_amount_names_bank_and_field(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/accounts/{UID}/transactions").respond(200, json=load("transactions_malformed.json"))
        with pytest.raises(InvalidResponse) as info:
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, UID, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
        assert info.value.field == "page 1 transactions[0].transaction_amount.amount"
        assert str(info.value).startswith("ekobanken:")

    async def test_repeating_continuation_key_is_refused(
        self, api: respx.MockRouter, adapter: AggregatorAdapter
    ) -> None:
        api.get(f"/accounts/{UID}/transactions").respond(200, json=load("transactions_page1.json"))
        with pytest.raises(InvalidResponse, match="continuation_key"):
            await adapter.fetch_transactions(
                UNATTENDED, CREDS, UID, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
            )
