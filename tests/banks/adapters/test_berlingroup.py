"""The shared Berlin Group adapter against spec-shaped payloads (respx)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from tests.banks.adapters.support import BANK_DATA, mock_bank, payloads

from ledgerlink.banks.adapters.base import (
    AdapterError,
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
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter, PeriodInvalid, ResourceUnknown
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import BankEndpointSettings

DATA = BANK_DATA / "berlingroup"
BASE = "https://bg.bank.test"
ACCOUNT = "3dc3d5b3-7023-4848-9853-f5400a64e80f"
PRESENT = ConnectionContext(account_type="business", psu_ip_address="198.51.100.4", corporate_id="5566778899")
UNATTENDED = ConnectionContext(account_type="business")
CREDS = Credentials(consent_id="1234-wertiq-983")
REDIRECT = "https://app.example/callback"


load = payloads(DATA)


@pytest.fixture
async def adapter() -> AsyncIterator[BerlinGroupAdapter]:
    a = BerlinGroupAdapter(BANKS["sandbox"], BankEndpointSettings(base_url=BASE))
    yield a
    await a.aclose()


@pytest.fixture
def bank() -> Iterator[respx.MockRouter]:
    yield from mock_bank(BASE)


async def test_redirect_consent_request_and_headers(
    adapter: BerlinGroupAdapter, bank: respx.MockRouter
) -> None:
    route = bank.post("/v1/consents").respond(201, json=load("consent_redirect.json"))
    start = await adapter.start_authorization(
        PRESENT, redirect_uri=REDIRECT, state="abc", sca_method="redirect"
    )
    assert start.method == "redirect"
    assert start.url == "https://bank.example/sca/1234-wertiq-983"
    assert start.credentials.consent_id == "1234-wertiq-983"
    request = route.calls.last.request
    body = json.loads(request.content)
    assert body["recurringIndicator"] is True
    assert body["frequencyPerDay"] == 4
    assert body["access"] == {"accounts": [], "balances": [], "transactions": []}
    assert dt.date.fromisoformat(body["validUntil"]) > dt.date.today()
    assert request.headers["X-Request-ID"]
    assert request.headers["TPP-Redirect-Preferred"] == "true"
    assert request.headers["TPP-Redirect-URI"] == f"{REDIRECT}?state=abc"
    assert request.headers["PSU-IP-Address"] == "198.51.100.4"
    assert request.headers["PSU-Corporate-ID"] == "5566778899"


async def test_decoupled_start_reads_autostart_token_and_polls(
    adapter: BerlinGroupAdapter, bank: respx.MockRouter
) -> None:
    bank.post("/v1/consents").respond(201, json=load("consent_decoupled.json"))
    auth = bank.post("/v1/consents/1234-wertiq-983/authorisations").respond(
        201, json=load("authorisation_decoupled.json")
    )
    ctx = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="198.51.100.4")
    start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state="abc", sca_method="decoupled")
    assert start.method == "decoupled"
    assert start.autostart_token == "6f1a3c2e-0b7d-4e8a-9c55-2b1d7e0f4a91"
    assert start.credentials.extra["authorisation_id"] == "123auth456"
    assert auth.calls.last.request.headers["PSU-ID"] == "199001011234"

    poll = bank.get("/v1/consents/1234-wertiq-983/authorisations/123auth456")
    poll.side_effect = [
        httpx.Response(200, json={"scaStatus": "started"}),
        httpx.Response(200, json={"scaStatus": "finalised"}),
    ]
    assert (await adapter.get_authorization_status(ctx, start.credentials)).status == "pending"
    assert (await adapter.get_authorization_status(ctx, start.credentials)).status == "finalised"


async def test_consent_is_read_back(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    bank.get("/v1/consents/1234-wertiq-983").respond(200, json=load("consent_details.json"))
    info = await adapter.get_consent(UNATTENDED, CREDS)
    assert info.status is ConsentStatus.valid
    assert info.valid_until == dt.date(2026, 9, 14)


async def test_revoke_deletes_the_consent(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    route = bank.delete("/v1/consents/1234-wertiq-983").respond(204)
    await adapter.revoke(UNATTENDED, CREDS)
    assert route.called


async def test_accounts_usage_balance_and_ais_headers(
    adapter: BerlinGroupAdapter, bank: respx.MockRouter
) -> None:
    route = bank.get("/v1/accounts", params={"withBalance": "true"}).respond(200, json=load("accounts.json"))
    accounts = await adapter.list_accounts(UNATTENDED, CREDS)
    assert [(a.external_id, a.usage, a.name) for a in accounts] == [
        (ACCOUNT, "business", "Företagskonto"),
        ("3dc3d5b3-7023-4848-9853-f5400a64e81g", "private", "Privatkonto"),
    ]
    assert accounts[0].balance is not None
    assert accounts[0].balance.amount == Decimal("125000.50")  # closingBooked preferred over interimAvailable
    assert accounts[0].balance.as_of == dt.date(2026, 3, 17)
    headers = route.calls.last.request.headers
    assert headers["Consent-ID"] == "1234-wertiq-983"
    assert "PSU-IP-Address" not in headers  # unattended


async def test_balance_prefers_booked(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    bank.get(f"/v1/accounts/{ACCOUNT}/balances").respond(200, json=load("balances.json"))
    balance = await adapter.fetch_balance(UNATTENDED, CREDS, ACCOUNT)
    assert balance.amount == Decimal("125000.50")


async def test_transactions_follow_next_and_normalise(
    adapter: BerlinGroupAdapter, bank: respx.MockRouter
) -> None:
    route = bank.get(f"/v1/accounts/{ACCOUNT}/transactions")
    route.side_effect = [
        httpx.Response(200, json=load("transactions_page1.json")),
        httpx.Response(200, json=load("transactions_page2.json")),
    ]
    txs = await adapter.fetch_transactions(
        UNATTENDED, CREDS, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 18)
    )
    first_query = route.calls[0].request.url.params
    assert dict(first_query) == {"dateFrom": "2026-03-01", "dateTo": "2026-03-18", "bookingStatus": "both"}
    assert route.calls[1].request.url.params["page"] == "2"
    assert [t.booking_status for t in txs] == [BookingStatus.booked] * 3 + [BookingStatus.pending]

    card, incoming, tax, pending = txs
    assert (card.amount, card.counterparty, card.description, card.reference, card.provider_id) == (
        Decimal("-256.67"),
        "Kaffebaren AB",
        "Kortköp Kaffebaren",
        None,  # NOTPROVIDED is no reference
        "1234567",
    )
    assert card.booking_date == dt.date(2026, 3, 16)
    assert card.value_date == dt.date(2026, 3, 15)
    assert incoming.counterparty == "Kund AB"
    assert incoming.reference == "4096011234"
    assert incoming.description == "BG inbetalning Faktura 1001"
    assert tax.provider_id == "E-3"  # blank transactionId falls back to entryReference
    assert tax.reference == "16556677889900"
    assert pending.booking_date == dt.date(2026, 3, 18)
    assert pending.provider_id is None


@pytest.mark.parametrize(
    ("status", "fixture", "expected"),
    [
        (401, "error_consent_expired.json", ConsentExpired),
        (401, "error_consent_invalid.json", ReauthRequired),
        (403, "error_consent_unknown.json", ReauthRequired),
        (401, "error_token_expired.json", ReauthRequired),
        (429, "error_access_exceeded.json", RateLimited),
        (403, "error_service_blocked.json", BankUnavailable),
        (400, "error_period_invalid.json", PeriodInvalid),
        (404, "error_resource_unknown.json", ResourceUnknown),
    ],
)
async def test_tpp_messages_map_to_errors(
    adapter: BerlinGroupAdapter,
    bank: respx.MockRouter,
    status: int,
    fixture: str,
    expected: type[AdapterError],
) -> None:
    bank.get(f"/v1/accounts/{ACCOUNT}/transactions").respond(status, json=load(fixture))
    with pytest.raises(expected) as info:
        await adapter.fetch_transactions(
            UNATTENDED, CREDS, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 18)
        )
    assert type(info.value) is expected
    assert info.value.bank_id == "sandbox"


async def test_rate_limit_carries_retry_after(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    bank.get("/v1/accounts").respond(
        429, json=load("error_access_exceeded.json"), headers={"Retry-After": "600"}
    )
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(RateLimited) as info:
        await adapter.list_accounts(UNATTENDED, CREDS)
    assert before + dt.timedelta(seconds=590) <= info.value.retry_at <= before + dt.timedelta(seconds=700)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(500), TemporaryFailure),
        (httpx.Response(502, text="bad gateway"), TemporaryFailure),
        (httpx.Response(503, json={"tppMessages": [{"code": "X", "text": "flap"}]}), TemporaryFailure),
        (
            httpx.Response(
                503, json={"tppMessages": [{"code": "X", "text": "Planned maintenance until 06:00"}]}
            ),
            BankUnavailable,
        ),
    ],
)
async def test_server_errors(
    adapter: BerlinGroupAdapter,
    bank: respx.MockRouter,
    response: httpx.Response,
    expected: type[AdapterError],
) -> None:
    bank.get("/v1/accounts").mock(return_value=response)
    with pytest.raises(expected):
        await adapter.list_accounts(UNATTENDED, CREDS)


async def test_timeout_is_temporary(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    bank.get("/v1/accounts").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TemporaryFailure):
        await adapter.list_accounts(UNATTENDED, CREDS)


def _page_with(row_patch: dict[str, Any]) -> dict[str, Any]:
    page = load("transactions_page2.json")
    page["transactions"]["booked"][0].update(row_patch)
    return page


@pytest.mark.parametrize(
    ("response", "field"),
    [
        (httpx.Response(200, text="<html>oops</html>"), None),
        (httpx.Response(200, json=_page_with({"transactionAmount": {"currency": "SEK"}})), "amount"),
        (
            httpx.Response(
                200, json=_page_with({"transactionAmount": {"amount": "1,00", "currency": "SEK"}})
            ),
            "amount",
        ),
        (httpx.Response(200, json=_page_with({"bookingDate": "17/03/2026"})), "bookingDate"),
        (httpx.Response(200, json={"transactions": []}), "transactions"),
    ],
)
async def test_malformed_payloads_are_invalid_response(
    adapter: BerlinGroupAdapter, bank: respx.MockRouter, response: httpx.Response, field: str | None
) -> None:
    bank.get(f"/v1/accounts/{ACCOUNT}/transactions").mock(return_value=response)
    with pytest.raises(InvalidResponse) as info:
        await adapter.fetch_transactions(
            UNATTENDED, CREDS, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 18)
        )
    assert info.value.bank_id == "sandbox"
    if field is None:
        assert "not JSON" in str(info.value)
    else:
        assert info.value.field is not None
        assert field in info.value.field


async def test_pagination_loop_is_refused(adapter: BerlinGroupAdapter, bank: respx.MockRouter) -> None:
    page = load("transactions_page1.json")
    page["transactions"]["_links"]["next"]["href"] = f"/v1/accounts/{ACCOUNT}/transactions?page=2"
    bank.get(f"/v1/accounts/{ACCOUNT}/transactions").respond(200, json=page)
    with pytest.raises(InvalidResponse) as info:
        await adapter.fetch_transactions(
            UNATTENDED, CREDS, ACCOUNT, dt.date(2026, 3, 1), dt.date(2026, 3, 18)
        )
    assert info.value.field == "_links.next"
