"""The sandbox pages tell a developer what to do: the callback page names the endpoint of the flow the
user came back from, and the bank's and Fortnox's login pages list the scripted scenarios."""

from __future__ import annotations

import uuid

import httpx
import pytest

from ledgerlink.models import Plan
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app
from ledgerlink.sandbox.scenarios import BANK_SCENARIOS
from tests.banks.test_connect_journey import approve_at_bank, make_company, start_connection
from tests.fortnox import test_connection_api as fortnox_api
from tests.fortnox.test_connection_api import approve, start

transport = fortnox_api.transport  # the sandbox Fortnox, registered as transports["fortnox"]
sandbox_app = fortnox_api.sandbox_app
client = fortnox_api.client
settings = fortnox_api.settings


@pytest.fixture
def bank_transport(transports: dict[str, httpx.AsyncBaseTransport]) -> httpx.ASGITransport:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    bank = create_sandbox_bank_app(slow_seconds=0.0)
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)]))
    transports["sandbox"] = transport
    return transport


async def test_after_a_bank_login_the_callback_page_names_the_bank_connection(
    bank_transport: httpx.ASGITransport,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    sessionmaker: object,
    company_id: uuid.UUID,
) -> None:
    await make_company(sessionmaker, company_id, Plan.business)  # type: ignore[arg-type]
    created = await start_connection(client, auth_headers, psu_id="anna")
    assert created.status_code == 201, created.text
    back = await approve_at_bank(bank_transport, created.json()["authorization"]["url"], "anna")
    page = await client.get("/sandbox/callback", params=back)
    assert page.status_code == 200
    assert f"/v1/bank-connections/{created.json()['id']}/authorization" in page.text
    assert "/v1/fortnox/authorization/callback" not in page.text
    assert back["code"] in page.text and back["state"] in page.text
    for psu in BANK_SCENARIOS:
        assert f"<code>{psu}</code>" in page.text


async def test_after_a_fortnox_login_the_callback_page_names_the_fortnox_callback(
    transport: httpx.ASGITransport, client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    started = await start(client, auth_headers)
    back = await approve(transport, started["authorization_url"])
    page = await client.get("/sandbox/callback", params=back)
    assert page.status_code == 200
    assert "POST this body to <code>/v1/fortnox/authorization/callback</code>" in page.text
    assert "Back from the Fortnox login" in page.text
    assert back["state"] in page.text


async def test_the_bank_sca_page_lists_every_scenario() -> None:
    bank = create_sandbox_bank_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bank), base_url="http://bank") as c:
        consent = await c.post(
            "/v1/consents",
            json={"access": {}, "validUntil": "2099-01-01", "frequencyPerDay": 4},
            headers={"X-Request-ID": "r1", "TPP-Redirect-URI": "https://app.example.test/callback"},
        )
        assert consent.status_code == 201, consent.text
        page = await c.get(consent.json()["_links"]["scaRedirect"]["href"])
    assert page.status_code == 200
    for psu in BANK_SCENARIOS:
        assert f"<code>{psu}</code>" in page.text
    assert "<code>approve=1</code>" in page.text


async def test_the_fortnox_authorize_page_lists_its_shortcuts() -> None:
    app = create_sandbox_fortnox_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fx") as c:
        page = await c.get(
            "/oauth-v1/auth",
            params={
                "client_id": "sandbox-client",
                "redirect_uri": "https://a.test/cb",
                "response_type": "code",
            },
        )
    assert page.status_code == 200
    assert "<code>approve=1</code>" in page.text and "<code>deny=1</code>" in page.text
