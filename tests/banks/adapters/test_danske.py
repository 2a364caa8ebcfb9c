"""Danske Bank: OBIE base under /psd2/v3.1/aisp with OIDC discovery per customer kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from tests.banks.adapters.support import BANK_DATA, payloads

from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, TemporaryFailure
from ledgerlink.banks.adapters.danske import DISCOVERY, DanskeAdapter
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "danske"
API = "https://psd2-api.danskebank.com"
AIS = "/psd2/v3.1/aisp"
ACCOUNT = "DK-SE-12345678"
BUSINESS = ConnectionContext(account_type="business", psu_ip_address="192.0.2.10")
PRIVATE = ConnectionContext(account_type="private", psu_ip_address="192.0.2.10")
CREDS = Credentials(consent_id="AAC-5e0a6f3b-1c2d-4e5f-8a9b-0c1d2e3f4a5b", access_token="danske-user-1")


load = payloads(DATA)


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get(DISCOVERY["business"], name="disc_business").respond(
            200, json=load("openid-configuration-business.json")
        )
        router.get(DISCOVERY["private"], name="disc_private").respond(
            200, json=load("openid-configuration-private.json")
        )
        yield router


@pytest.fixture
def signed_claims() -> list[dict[str, Any]]:
    return []


@pytest.fixture
async def adapter(signed_claims: list[dict[str, Any]]) -> AsyncIterator[DanskeAdapter]:
    danske = DanskeAdapter(BANKS["danske"], BankEndpointSettings(base_url=API, client_id="danske-client"))

    def signer(claims: dict[str, Any]) -> str:
        signed_claims.append(claims)
        return "signed"

    danske.request_object_signer = signer
    yield danske
    await danske.aclose()


@pytest.mark.parametrize(
    ("ctx", "kind", "authorize"),
    [
        pytest.param(BUSINESS, "business", f"{API}/psd2/se/business/oauth2/authorize", id="business"),
        pytest.param(
            PRIVATE,
            "private",
            "https://psd2-mb3.danskebank.com/psd2/se/private/oauth2/authorize",
            id="private",
        ),
    ],
)
async def test_account_type_picks_the_oidc_configuration(
    bank: respx.MockRouter,
    adapter: DanskeAdapter,
    signed_claims: list[dict[str, Any]],
    ctx: ConnectionContext,
    kind: str,
    authorize: str,
) -> None:
    config = load(f"openid-configuration-{kind}.json")
    token = bank.post(config["token_endpoint"]).respond(200, json=load("token_client_credentials.json"))
    consent = bank.post(f"{AIS}/account-access-consents").respond(201, json=load("consent_created.json"))

    start = await adapter.start_authorization(ctx, redirect_uri="https://app.example/cb", state="s")
    await adapter.start_authorization(ctx, redirect_uri="https://app.example/cb", state="s2")

    assert bank[f"disc_{kind}"].call_count == 1  # discovery is read once
    assert token.call_count == 1  # and the client token reused
    assert consent.call_count == 2
    assert consent.calls.last.request.headers["Authorization"] == "Bearer danske-cc-1"
    assert start.url is not None
    url = httpx.URL(start.url)
    assert f"{url.scheme}://{url.host}{url.path}" == authorize
    assert signed_claims[0]["aud"] == config["issuer"]
    other = "private" if kind == "business" else "business"
    assert not bank[f"disc_{other}"].called


async def test_transactions_under_the_aisp_path_across_pages(
    bank: respx.MockRouter, adapter: DanskeAdapter
) -> None:
    path = f"{AIS}/accounts/{ACCOUNT}/transactions"
    bank.get(path, params__contains={"pageKey": "eyJwIjoyfQ"}).respond(
        200, json=load("transactions_page2.json")
    )
    first = bank.get(path).respond(200, json=load("transactions_page1.json"))

    tax, salary = await adapter.fetch_transactions(
        BUSINESS, CREDS, ACCOUNT, dt.date(2024, 3, 1), dt.date(2024, 3, 31)
    )

    assert first.calls.last.request.headers["Authorization"] == "Bearer danske-user-1"
    assert tax.amount == Decimal("-4711.00")
    assert tax.booking_date == dt.date(2024, 3, 15)
    assert tax.counterparty == "Skatteverket"
    assert tax.reference == "Bg 5050-1055"
    assert salary.amount == Decimal("32000.00")
    assert salary.booking_date == dt.date(2024, 3, 12)
    assert salary.provider_id == "20240312-000077"


async def test_server_error_deep_in_paging_is_temporary(
    bank: respx.MockRouter, adapter: DanskeAdapter
) -> None:
    path = f"{AIS}/accounts/{ACCOUNT}/transactions"
    bank.get(path, params__contains={"pageKey": "eyJwIjoyfQ"}).respond(500, text="Internal Server Error")
    bank.get(path).respond(200, json=load("transactions_page1.json"))
    with pytest.raises(TemporaryFailure):
        await adapter.fetch_transactions(BUSINESS, CREDS, ACCOUNT, dt.date(2023, 3, 1), dt.date(2024, 3, 31))
