"""The Fortnox connection over the API, against the sandbox Fortnox (mounted path, as in dev)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.fortnox.client.scopes import requested_scopes
from ledgerlink.fortnox.token_store import open_tokens
from ledgerlink.models.bank import OAuthState
from ledgerlink.models.fortnox import FortnoxConnection
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.security import SecretBox
from tests.conftest import REDIS_URL, make_token

REDIRECT = "https://app.example.test/callback"
SANDBOX_ROOT = "/sandbox/fortnox"


# -- fixtures (these override tests/fortnox/conftest.py's client-level ones) ------------------------


@pytest.fixture
def settings(database_url: str, queue_name: str) -> Settings:
    """The app settings (sandbox mode, no Fortnox client configured: the mounted sandbox is used)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="testing",
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=queue_name,
        sandbox=True,
        log_json=True,
        allowed_redirect_uris=[REDIRECT, "http://localhost:3000/callback"],
    )


@pytest.fixture
def sandbox_app() -> FastAPI:
    return create_sandbox_fortnox_app(company=SandboxCompany.generate(seed=11, vouchers=20, year=2025))


@pytest.fixture
def sandbox(sandbox_app: FastAPI) -> SandboxFortnox:
    state: SandboxFortnox = sandbox_app.state.fortnox
    return state


@pytest.fixture
def transport(sandbox_app: FastAPI, transports: dict[str, Any]) -> httpx.ASGITransport:
    """The sandbox as if mounted at /sandbox/fortnox (where effective_fortnox_settings points)."""
    t = httpx.ASGITransport(app=sandbox_app, root_path=SANDBOX_ROOT)
    transports["fortnox"] = t
    return t


@pytest.fixture
async def client(transport: httpx.ASGITransport, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def approve(transport: httpx.ASGITransport, url: str, *, deny: bool = False) -> dict[str, str]:
    """Play the user at the sandbox's authorize page; the query Fortnox put on the redirect URI."""
    async with httpx.AsyncClient(transport=transport) as browser:
        response = await browser.get(url + ("&deny=1" if deny else "&approve=1"))
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def start(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post(
        "/v1/fortnox/authorization", json={"redirect_uri": REDIRECT}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def connect(
    client: httpx.AsyncClient, headers: dict[str, str], transport: httpx.ASGITransport
) -> dict[str, Any]:
    started = await start(client, headers)
    query = await approve(transport, started["authorization_url"])
    response = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": query["code"], "state": query["state"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_connection(
    sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID
) -> FortnoxConnection:
    async with sessionmaker() as session:
        row = (
            await session.execute(select(FortnoxConnection).where(FortnoxConnection.company_id == company_id))
        ).scalar_one()
        return row


# -- the happy path ---------------------------------------------------------------------------------


async def test_oauth_happy_path_connects_and_lists_for_the_export_dialog(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    settings: Settings,
) -> None:
    started = await start(client, auth_headers)
    parts = urlsplit(started["authorization_url"])
    query = parse_qs(parts.query)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == "http://127.0.0.1:8000/sandbox/fortnox/oauth-v1/auth"
    )
    assert query["access_type"] == ["offline"]
    assert query["client_id"] == ["sandbox-client"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == [requested_scopes(settings.fortnox.scopes)]
    assert "payment" in query["scope"][0].split()  # /3/invoicepayments needs it
    assert query["state"] == [started["state"]]

    redirect = await approve(transport, started["authorization_url"])
    response = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": redirect["code"], "state": redirect["state"]},
        headers=auth_headers,
    )
    assert response.status_code == 200, response.text
    connection = response.json()
    assert connection["status"] == "active"
    assert connection["fortnox_company_name"] == sandbox.company.name
    assert connection["org_number"] == sandbox.company.org_number
    assert connection["scopes"] == requested_scopes(settings.fortnox.scopes).split()
    assert connection["tenant_id"] == str(sandbox.company.database_number)
    last_used = dt.datetime.fromisoformat(connection["last_used_at"])
    assert dt.datetime.fromisoformat(connection["expires_at"]) - last_used == dt.timedelta(days=30)
    assert "token" not in response.text.lower()

    read = await client.get("/v1/fortnox/connection", headers=auth_headers)
    assert read.status_code == 200
    assert read.json() == connection

    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.status_code == 200, years.text
    assert [y["id"] for y in years.json()["items"]] == [y.id for y in sandbox.company.years]
    year_id = years.json()["items"][-1]["id"]
    series = await client.get(f"/v1/fortnox/voucher-series?financial_year_id={year_id}", headers=auth_headers)
    assert series.status_code == 200, series.text
    items = series.json()["items"]
    assert items and set(items[0]) == {"code", "description", "manual"}
    assert any(s["manual"] for s in items)


async def test_reading_lists_does_not_renew_the_validity(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
) -> None:
    await connect(client, auth_headers, transport)
    before = await stored_connection(sessionmaker, company_id)
    assert (await client.get("/v1/fortnox/financial-years", headers=auth_headers)).status_code == 200
    after = await stored_connection(sessionmaker, company_id)
    assert (after.last_used_at, after.expires_at) == (before.last_used_at, before.expires_at)


# -- failures of the flow ---------------------------------------------------------------------------


async def test_redirect_uri_outside_the_allow_list_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    response = await client.post(
        "/v1/fortnox/authorization", json={"redirect_uri": "https://evil.example/cb"}, headers=auth_headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "redirect_uri_not_allowed"


async def test_denied_authorization_is_400_and_uses_up_the_state(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"], deny=True)
    assert redirect["error"] == "access_denied"
    denied = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"error": redirect["error"], "state": redirect["state"]},
        headers=auth_headers,
    )
    assert denied.status_code == 400
    assert denied.json()["code"] == "authorization_denied"

    again = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": "whatever", "state": redirect["state"]},
        headers=auth_headers,
    )
    assert again.status_code == 400
    assert again.json()["code"] == "state_mismatch"
    status = (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()["status"]
    assert status == "not_connected"


async def test_unknown_state_is_state_mismatch(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    response = await client.post(
        "/v1/fortnox/authorization/callback", json={"code": "abc", "state": "made-up"}, headers=auth_headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "state_mismatch"


async def test_reused_state_is_state_mismatch(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    body = {"code": redirect["code"], "state": redirect["state"]}
    first = await client.post("/v1/fortnox/authorization/callback", json=body, headers=auth_headers)
    assert first.status_code == 200
    second = await client.post("/v1/fortnox/authorization/callback", json=body, headers=auth_headers)
    assert second.status_code == 400
    assert second.json()["code"] == "state_mismatch"


async def test_expired_state_is_state_mismatch(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    async with sessionmaker() as session:
        await session.execute(
            update(OAuthState).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await session.commit()
    response = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": redirect["code"], "state": redirect["state"]},
        headers=auth_headers,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "state_mismatch"


async def test_another_companys_state_is_refused_and_not_burnt(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    settings: Settings,
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    body = {"code": redirect["code"], "state": redirect["state"]}
    stranger = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}
    refused = await client.post("/v1/fortnox/authorization/callback", json=body, headers=stranger)
    assert refused.status_code == 400
    assert refused.json()["code"] == "state_mismatch"
    assert (await client.get("/v1/fortnox/connection", headers=stranger)).json()["status"] == "not_connected"

    owner = await client.post("/v1/fortnox/authorization/callback", json=body, headers=auth_headers)
    assert owner.status_code == 200
    assert owner.json()["status"] == "active"


async def test_invalid_grant_for_the_code_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    response = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": "not-" + redirect["code"], "state": redirect["state"]},
        headers=auth_headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "authorization_code_invalid"
    assert (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()[
        "status"
    ] == "not_connected"
    retried = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": redirect["code"], "state": redirect["state"]},
        headers=auth_headers,
    )
    assert retried.status_code == 400 and retried.json()["code"] == "state_mismatch"  # used up


async def test_callback_without_code_or_error_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    response = await client.post(
        "/v1/fortnox/authorization/callback", json={"state": "s"}, headers=auth_headers
    )
    assert response.status_code == 422


# -- reading, expiry, disconnecting -----------------------------------------------------------------


async def test_not_connected_company_reads_not_connected_and_gets_409(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    read = await client.get("/v1/fortnox/connection", headers=auth_headers)
    assert read.status_code == 200
    assert read.json()["status"] == "not_connected"
    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.status_code == 409
    assert years.json()["code"] == "fortnox_not_connected"


async def test_another_companys_token_sees_not_connected(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    settings: Settings,
) -> None:
    await connect(client, auth_headers, transport)
    other = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}
    assert (await client.get("/v1/fortnox/connection", headers=other)).json() == {
        "status": "not_connected",
        "fortnox_company_name": None,
        "org_number": None,
        "scopes": [],
        "tenant_id": None,
        "connected_at": None,
        "last_used_at": None,
        "expires_at": None,
    }
    assert (await client.get("/v1/fortnox/financial-years", headers=other)).json()[
        "code"
    ] == "fortnox_not_connected"


async def test_connection_past_30_days_reads_expired_and_refuses_calls(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await connect(client, auth_headers, transport)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    async with sessionmaker() as session:
        await session.execute(
            update(FortnoxConnection).values(
                last_used_at=long_ago, expires_at=long_ago + dt.timedelta(days=30)
            )
        )
        await session.commit()
    assert (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()["status"] == "expired"
    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.status_code == 409
    assert years.json()["code"] == "fortnox_expired"


async def test_delete_revokes_at_fortnox_and_deletes_the_tokens(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    company_id: uuid.UUID,
) -> None:
    await connect(client, auth_headers, transport)
    refresh_token = open_tokens(
        SecretBox.from_settings(settings.security), await stored_connection(sessionmaker, company_id)
    ).refresh_token

    response = await client.delete("/v1/fortnox/connection", headers=auth_headers)
    assert response.status_code == 204
    assert sandbox.refresh_tokens[refresh_token].revoked
    row = await stored_connection(sessionmaker, company_id)
    assert row.secrets is None
    assert (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()["status"] == "revoked"
    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.json()["code"] == "fortnox_not_connected"
    assert (await client.delete("/v1/fortnox/connection", headers=auth_headers)).status_code == 204


async def test_reconnecting_after_delete_is_active_again(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    await connect(client, auth_headers, transport)
    assert (await client.delete("/v1/fortnox/connection", headers=auth_headers)).status_code == 204
    assert (await connect(client, auth_headers, transport))["status"] == "active"


async def test_fortnox_error_is_502_with_fortnoxs_message(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    await connect(client, auth_headers, transport)
    sandbox.faults.fail_next("/3/financialyears", status=400)
    response = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert response.status_code == 502
    assert response.json()["code"] == "fortnox_error"
    assert "System exception" in response.json()["detail"]


async def test_database_holds_no_token_or_state_in_clear_text(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": redirect["code"], "state": redirect["state"]},
        headers=auth_headers,
    )
    secrets = [*sandbox.access_tokens, *sandbox.refresh_tokens, started["state"], redirect["code"]]
    assert len(secrets) == 4
    async with sessionmaker() as session:
        dump = []
        for table in ("fortnox_connection", "oauth_state", "idempotency_record"):
            rows = (await session.execute(text(f"SELECT * FROM {table}"))).all()
            dump.extend(repr(tuple(row)) for row in rows)
    blob = "\n".join(dump)
    assert "fortnox_connection" in dump[0] or dump  # rows were read
    for secret in secrets:
        assert secret not in blob


async def test_sandbox_callback_page_shows_the_body_to_relay(client: httpx.AsyncClient) -> None:
    response = await client.get("/sandbox/callback?code=abc123&state=st-9")
    assert response.status_code == 200
    assert '"code": "abc123"' in response.text
    assert '"state": "st-9"' in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_callback_with_the_same_idempotency_key_replays_the_connection(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    started = await start(client, auth_headers)
    redirect = await approve(transport, started["authorization_url"])
    body = {"code": redirect["code"], "state": redirect["state"]}
    headers = {**auth_headers, "Idempotency-Key": "connect-1"}
    first = await client.post("/v1/fortnox/authorization/callback", json=body, headers=headers)
    replay = await client.post("/v1/fortnox/authorization/callback", json=body, headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()


async def test_reconnecting_while_connected_revokes_the_replaced_grant(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    company_id: uuid.UUID,
) -> None:
    box = SecretBox.from_settings(settings.security)
    await connect(client, auth_headers, transport)
    first = open_tokens(box, await stored_connection(sessionmaker, company_id)).refresh_token

    assert (await connect(client, auth_headers, transport))["status"] == "active"

    second = open_tokens(box, await stored_connection(sessionmaker, company_id)).refresh_token
    assert second != first
    assert sandbox.refresh_tokens[first].revoked
    assert not sandbox.refresh_tokens[second].revoked
    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.status_code == 200, years.text
