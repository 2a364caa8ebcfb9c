"""N26's SCA continues after the redirect (issue #15): the PSU confirms the new consent in the N26 app
within 5 minutes, and its status reads ``received`` until then. The redirect completion leaves the
connection ``awaiting_authorization``; reading the connection polls the consent like a decoupled login
(active once ``valid``, ``failed`` when rejected, ``authorization_timed_out`` after the bank's window).
The bank is N26's API shape over respx."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.banks.adapters.support import BANK_DATA, payloads
from tests.banks.test_connect_journey import REDIRECT, business  # noqa: F401  (fixture)

from ledgerlink.banks.service import ConnectionSecrets, load_secrets, save_secrets
from ledgerlink.config import BankEndpointSettings, Settings
from ledgerlink.models import BankConnection
from ledgerlink.testbank.pki import make_pki

N26 = "https://xs2a.n26.example.invalid"
CONSENT = "/v1/berlin-group/v1/consents/n26-consent-0001"
load = payloads(BANK_DATA / "n26")
pytestmark = pytest.mark.usefixtures("business")  # a company whose plan includes bank import


def consent_is(status: str) -> httpx.Response:
    return httpx.Response(200, json=load("consent_details_valid.json") | {"consentStatus": status})


@pytest.fixture(scope="module")
def n26_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """N26 requires a QWAC: a test one, so connecting is allowed."""
    pki = make_pki(tmp_path_factory.mktemp("n26-pki"))
    return {"client_cert_file": str(pki.qwac_cert), "client_key_file": str(pki.qwac_key)}


@pytest.fixture
def n26(settings: Settings, n26_certs: dict[str, str]) -> Iterator[respx.MockRouter]:
    """N26 configured and mocked: the token and the consent answer; the consent's status is set per test."""
    settings.banks["n26"] = BankEndpointSettings(base_url=N26, client_id="PSDSE-FINA-0001", **n26_certs)
    with respx.mock(base_url=N26, assert_all_called=False) as bank:
        bank.post("/oauth2/token", params={"role": "DEDICATED_AISP"}).respond(200, json=load("token.json"))
        bank.post("/v1/berlin-group/v1/consents").respond(201, json=load("consent.json"))
        bank.get("/v1/berlin-group/v1/accounts").respond(200, json=load("accounts.json"))
        yield bank


async def redirect_back(client: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Start an N26 login and relay the redirect back; returns the connection id and the answer."""
    created = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "n26", "account_type": "private", "redirect_uri": REDIRECT},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    state = parse_qs(urlsplit(created.json()["authorization"]["url"]).query)["state"][0]
    done = await client.post(
        f"/v1/bank-connections/{cid}/authorization", json={"code": "code-1", "state": state}, headers=headers
    )
    assert done.status_code == 200, done.text
    return cid, done.json()


async def secrets_of(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, cid: str
) -> ConnectionSecrets:
    async with sessionmaker() as s:
        connection = await s.get(BankConnection, uuid.UUID(cid))
        assert connection is not None
        return load_secrets(settings, connection)


async def read(client: httpx.AsyncClient, headers: dict[str, str], cid: str) -> dict[str, Any]:
    shown = await client.get(f"/v1/bank-connections/{cid}", headers=headers)
    assert shown.status_code == 200, shown.text
    body: dict[str, Any] = shown.json()
    return body


async def test_awaiting_the_app_confirmation_then_active_with_accounts(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    n26: respx.MockRouter,
) -> None:
    status = n26.get(CONSENT)
    status.side_effect = [
        consent_is("received"),
        consent_is("received"),
        consent_is("valid"),
        consent_is("valid"),
    ]

    cid, done = await redirect_back(client, auth_headers)
    assert done["status"] == "awaiting_authorization"  # not failed: the PSU confirms in the app now
    assert done["last_error"] is None

    still = await read(client, auth_headers, cid)
    assert still["status"] == "awaiting_authorization"
    assert status.call_count == 2  # the read polled the consent

    active = await read(client, auth_headers, cid)
    assert active["status"] == "active"
    assert active["consent_expires_at"] is not None
    available = await client.get(f"/v1/bank-connections/{cid}/available-accounts", headers=auth_headers)
    assert [a["external_id"] for a in available.json()["items"]][:1] == ["n26-acc-main"]

    calls = status.call_count
    assert (await read(client, auth_headers, cid))["status"] == "active"
    assert status.call_count == calls  # an active connection is not polled


async def test_a_consent_rejected_in_the_app_fails_the_connection(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    n26: respx.MockRouter,
) -> None:
    n26.get(CONSENT).side_effect = [consent_is("received"), consent_is("rejected")]
    cid, done = await redirect_back(client, auth_headers)
    assert done["status"] == "awaiting_authorization"

    failed = await read(client, auth_headers, cid)
    assert failed["status"] == "failed"
    assert failed["last_error"]["code"] == "authorization_failed"
    assert "rejected" in failed["last_error"]["message"]


async def test_no_confirmation_within_the_window_times_out(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    n26: respx.MockRouter,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    status = n26.get(CONSENT)
    status.side_effect = [consent_is("received")]
    cid, done = await redirect_back(client, auth_headers)
    assert done["status"] == "awaiting_authorization"

    async with sessionmaker() as s:  # the 5 minutes pass without a confirmation
        connection = await s.get(BankConnection, uuid.UUID(cid))
        assert connection is not None
        secrets = load_secrets(settings, connection)
        assert secrets.confirm_by is not None and secrets.pending is not None
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        save_secrets(settings, connection, dataclasses.replace(secrets, confirm_by=past))
        await s.commit()

    timed_out = await read(client, auth_headers, cid)
    assert timed_out["status"] == "failed"
    assert timed_out["last_error"]["code"] == "authorization_timed_out"
    assert "timed out" in timed_out["last_error"]["message"]
    assert status.call_count == 1  # given up without asking the bank again
    dropped = await secrets_of(sessionmaker, settings, cid)
    assert dropped.pending is None and dropped.confirm_by is None  # the unconfirmed consent is dropped


async def test_a_renewal_keeps_the_old_consent_until_the_new_one_is_confirmed(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    n26: respx.MockRouter,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    n26.get(CONSENT).respond(200, json=load("consent_details_valid.json"))
    n26.post("/v1/berlin-group/v1/consents").side_effect = [
        httpx.Response(201, json=load("consent.json")),
        httpx.Response(201, json=load("consent.json") | {"consentId": "n26-consent-0002"}),
    ]
    cid, done = await redirect_back(client, auth_headers)
    assert done["status"] == "active"  # confirmed in the app before the redirect came back

    renewal = n26.get("/v1/berlin-group/v1/consents/n26-consent-0002")
    renewal.side_effect = [consent_is("received"), consent_is("valid"), consent_is("valid")]
    revoked = n26.delete(CONSENT).respond(204)
    started = await client.post(
        f"/v1/bank-connections/{cid}/reauthorization", json={"redirect_uri": REDIRECT}, headers=auth_headers
    )
    assert started.status_code == 201, started.text
    state = parse_qs(urlsplit(started.json()["authorization"]["url"]).query)["state"][0]
    back = await client.post(
        f"/v1/bank-connections/{cid}/authorization",
        json={"code": "code-2", "state": state},
        headers=auth_headers,
    )
    assert back.json()["status"] == "active"
    secrets = await secrets_of(sessionmaker, settings, cid)  # the old consent is still the one in use
    assert secrets.credentials.consent_id == "n26-consent-0001"
    assert secrets.pending is not None and secrets.pending.consent_id == "n26-consent-0002"

    assert (await read(client, auth_headers, cid))["status"] == "active"
    secrets = await secrets_of(sessionmaker, settings, cid)
    assert secrets.credentials.consent_id == "n26-consent-0002"
    assert secrets.pending is None and secrets.confirm_by is None
    assert revoked.called  # the replaced consent is revoked at the bank
