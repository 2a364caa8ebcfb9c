"""The "connect your bank" journey over HTTP: choose a bank, log in (redirect or decoupled BankID), pick an
account, sync_from and ledger account, confirm; against the sandbox bank in-process (never the network)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.conftest import make_token

from ledgerlink.banks.adapters.base import STOCKHOLM
from ledgerlink.banks.adapters.registry import BANKS
from ledgerlink.config import Settings
from ledgerlink.models import (
    BankAccount,
    BankConnection,
    Company,
    OAuthState,
    OutboxEvent,
    Plan,
    SyncRun,
    Todo,
)
from ledgerlink.sandbox.bank import create_sandbox_bank_app

REDIRECT = "https://app.example.test/callback"
TODAY = dt.datetime.now(STOCKHOLM).date()


@pytest.fixture
def sandbox_transport() -> httpx.ASGITransport:
    bank = create_sandbox_bank_app(slow_seconds=0.0, decoupled_polls=2)
    return httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)]))


@pytest.fixture
def transports(sandbox_transport: httpx.ASGITransport) -> dict[str, httpx.AsyncBaseTransport]:
    return {"sandbox": sandbox_transport}


async def make_company(
    sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID, plan: Plan
) -> None:
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Kaffekoppen AB", plan=plan))
        await s.commit()


@pytest.fixture
async def business(sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> uuid.UUID:
    await make_company(sessionmaker, company_id, Plan.business)
    return company_id


async def approve_at_bank(transport: httpx.ASGITransport, url: str, psu: str | None = None) -> dict[str, str]:
    """The user approves on the bank's page; returns the query the bank redirects back with."""
    params = {"approve": "1"} | ({"psu": psu} if psu else {})
    async with httpx.AsyncClient(transport=transport) as bank:
        response = await bank.get(url, params=params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def start_connection(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"bank_id": "sandbox", "account_type": "business", "redirect_uri": REDIRECT} | body
    return await client.post("/v1/bank-connections", json=payload, headers=headers)


async def connect_sandbox(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    transport: httpx.ASGITransport,
    psu: str = "anna",
    **body: Any,
) -> dict[str, Any]:
    """Redirect connection to the sandbox bank, approved and completed; returns the active connection."""
    created = await start_connection(client, headers, psu_id=psu, **body)
    assert created.status_code == 201, created.text
    back = await approve_at_bank(transport, created.json()["authorization"]["url"], psu)
    done = await client.post(
        f"/v1/bank-connections/{created.json()['id']}/authorization",
        json={"code": back["code"], "state": back["state"]},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    return dict(done.json())


async def link_account(
    client: httpx.AsyncClient, headers: dict[str, str], connection_id: str, kind: str = "ftg", **body: Any
) -> httpx.Response:
    available = await client.get(f"/v1/bank-connections/{connection_id}/available-accounts", headers=headers)
    assert available.status_code == 200, available.text
    external_id = next(
        a["external_id"] for a in available.json()["items"] if a["external_id"].startswith(kind)
    )
    payload = {
        "connection_id": connection_id,
        "external_id": external_id,
        "sync_from": (TODAY - dt.timedelta(days=30)).isoformat(),
    } | body
    return await client.post("/v1/bank-accounts", json=payload, headers=headers)


# --------------------------------------------------------------------------- catalogue


async def test_catalogue_lists_every_bank_and_filters_by_account_type(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    everything = await client.get("/v1/banks", headers=auth_headers)
    assert everything.status_code == 200
    ids = {b["id"] for b in everything.json()["items"]}
    assert ids == set(BANKS)  # the test settings turn the sandbox on
    business = await client.get("/v1/banks", params={"account_type": "business"}, headers=auth_headers)
    items = {b["id"]: b for b in business.json()["items"]}
    assert "lansforsakringar" not in items and "nordea" in items
    assert items["danske"]["status"] == "coming_soon"
    assert set(items["nordea"]) >= {"id", "name", "bic", "status", "account_types", "sca_methods"}


async def test_catalogue_hides_the_sandbox_when_it_is_off(
    app: Any, client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings
) -> None:
    settings.sandbox = False
    ids = {b["id"] for b in (await client.get("/v1/banks", headers=auth_headers)).json()["items"]}
    assert "sandbox" not in ids and "nordea" in ids


# --------------------------------------------------------------------------- the sandbox journey


async def test_redirect_journey_ends_with_an_active_account_and_a_queued_initial_import(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    arq_redis: Any,
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    assert connection["consent_expires_at"] is not None  # read back from the bank

    linked = await link_account(client, auth_headers, connection["id"], ledger_account="1930")
    assert linked.status_code == 201, linked.text
    account = linked.json()
    assert account["status"] == "pending_confirmation"
    assert account["ledger_account"] == "1930"
    assert account["iban"] and account["currency"] == "SEK"

    confirmed = await client.post(f"/v1/bank-accounts/{account['id']}/confirmation", headers=auth_headers)
    assert confirmed.status_code == 202, confirmed.text
    run = confirmed.json()
    assert run["trigger"] == "initial" and run["status"] == "queued"
    assert run["window_from"] == account["sync_from"]

    async with sessionmaker() as s:
        row = await s.get(SyncRun, uuid.UUID(run["id"]))
        assert row is not None and row.status.value == "queued" and row.user_present
    jobs = await arq_redis.queued_jobs(queue_name=settings.queue_name)
    # other tests of the session may have left jobs in the queue: look for ours
    assert run["id"] in [j.kwargs.get("run_id") for j in jobs if j.function == "sync.account"]

    shown = await client.get(f"/v1/bank-accounts/{account['id']}", headers=auth_headers)
    assert shown.json()["status"] == "active"
    assert shown.json()["unbooked_count"] == 0


async def test_decoupled_bankid_is_advanced_by_reading_the_connection(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID
) -> None:
    created = await start_connection(client, auth_headers, psu_id="198001011234", sca_method="decoupled")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "awaiting_authorization"
    assert body["authorization"]["method"] == "decoupled"
    assert body["authorization"]["autostart_token"]
    assert body["authorization"]["poll_interval_seconds"] >= 1

    first = await client.get(f"/v1/bank-connections/{body['id']}", headers=auth_headers)
    assert first.json()["status"] == "awaiting_authorization"  # the bank says: still started
    second = await client.get(f"/v1/bank-connections/{body['id']}", headers=auth_headers)
    assert second.json()["status"] == "active"
    assert second.json()["consent_expires_at"] is not None
    accounts = await client.get(f"/v1/bank-connections/{body['id']}/available-accounts", headers=auth_headers)
    assert len(accounts.json()["items"]) == 3


async def test_decoupled_refused_at_the_bank_fails_the_connection(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID
) -> None:
    created = await start_connection(client, auth_headers, psu_id="rejected", sca_method="decoupled")
    cid = created.json()["id"]
    statuses = [
        (await client.get(f"/v1/bank-connections/{cid}", headers=auth_headers)).json() for _ in range(3)
    ]
    assert statuses[-1]["status"] == "failed"
    assert statuses[-1]["last_error"]["code"] == "authorization_failed"
    assert statuses[-1]["last_error"]["message"]


async def test_decoupled_gives_up_after_the_state_expires(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    created = await start_connection(client, auth_headers, psu_id="198001011234", sca_method="decoupled")
    cid = uuid.UUID(created.json()["id"])
    async with sessionmaker() as s:
        await s.execute(
            update(OAuthState)
            .where(OAuthState.connection_id == cid)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
        await s.commit()
    shown = await client.get(f"/v1/bank-connections/{cid}", headers=auth_headers)
    assert shown.json()["status"] == "failed"
    assert shown.json()["last_error"]["code"] == "authorization_timed_out"
    assert "timed out" in shown.json()["last_error"]["message"]


# --------------------------------------------------------------------------- state


async def test_state_is_single_use(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
) -> None:
    created = await start_connection(client, auth_headers)
    back = await approve_at_bank(sandbox_transport, created.json()["authorization"]["url"])
    url = f"/v1/bank-connections/{created.json()['id']}/authorization"
    first = await client.post(url, json={"code": back["code"], "state": back["state"]}, headers=auth_headers)
    assert first.status_code == 200
    again = await client.post(url, json={"code": back["code"], "state": back["state"]}, headers=auth_headers)
    assert again.status_code == 400
    assert again.json()["code"] == "state_mismatch"


async def test_wrong_state_is_refused(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID
) -> None:
    created = await start_connection(client, auth_headers)
    wrong = await client.post(
        f"/v1/bank-connections/{created.json()['id']}/authorization",
        json={"code": "x", "state": "not-the-state"},
        headers=auth_headers,
    )
    assert wrong.status_code == 400 and wrong.json()["code"] == "state_mismatch"


async def test_expired_state_is_refused(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    created = await start_connection(client, auth_headers)
    back = await approve_at_bank(sandbox_transport, created.json()["authorization"]["url"])
    async with sessionmaker() as s:
        await s.execute(
            update(OAuthState).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await s.commit()
    late = await client.post(
        f"/v1/bank-connections/{created.json()['id']}/authorization",
        json={"code": back["code"], "state": back["state"]},
        headers=auth_headers,
    )
    assert late.status_code == 400 and late.json()["code"] == "state_mismatch"


async def test_another_companys_state_is_refused(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    sandbox_transport: httpx.ASGITransport,
) -> None:
    other_id = uuid.uuid4()
    await make_company(sessionmaker, other_id, Plan.business)
    other = {"Authorization": f"Bearer {make_token(settings, other_id)}"}
    theirs = await start_connection(client, other)
    their_back = await approve_at_bank(sandbox_transport, theirs.json()["authorization"]["url"])
    mine = await start_connection(client, auth_headers)
    stolen = await client.post(
        f"/v1/bank-connections/{mine.json()['id']}/authorization",
        json={"code": their_back["code"], "state": their_back["state"]},
        headers=auth_headers,
    )
    assert stolen.status_code == 400 and stolen.json()["code"] == "state_mismatch"
    # and their state still works for them
    ok = await client.post(
        f"/v1/bank-connections/{theirs.json()['id']}/authorization",
        json={"code": their_back["code"], "state": their_back["state"]},
        headers=other,
    )
    assert ok.status_code == 200 and ok.json()["status"] == "active"


async def test_only_the_state_hash_is_stored(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    created = await start_connection(client, auth_headers)
    back = await approve_at_bank(sandbox_transport, created.json()["authorization"]["url"])
    async with sessionmaker() as s:
        rows = (await s.execute(select(OAuthState))).scalars().all()
    assert len(rows) == 1
    assert rows[0].state_hash != back["state"] and len(rows[0].state_hash) == 64
    assert rows[0].expires_at - dt.datetime.now(dt.UTC) <= dt.timedelta(minutes=15)


# --------------------------------------------------------------------------- secrets at rest


async def test_no_token_or_consent_id_in_clear_in_the_database(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    from ledgerlink.banks.service import load_credentials

    async with sessionmaker() as s:
        row = await s.get(BankConnection, uuid.UUID(connection["id"]))
        assert row is not None
        consent_id = load_credentials(settings, row).consent_id
        assert consent_id
        dump = (await s.execute(text("SELECT row_to_json(c)::text FROM bank_connection c"))).scalar_one()
        secrets_raw = (await s.execute(text("SELECT secrets FROM bank_connection"))).scalar_one()
    assert consent_id not in dump
    assert consent_id.encode() not in bytes(secrets_raw)
    assert b"198001011234" not in bytes(secrets_raw) and b"anna" not in bytes(secrets_raw)
    listed = await client.get("/v1/bank-connections", headers=auth_headers)
    shown = await client.get(f"/v1/bank-connections/{connection['id']}", headers=auth_headers)
    assert consent_id not in listed.text and consent_id not in shown.text


# --------------------------------------------------------------------------- re-authorization


async def test_reauthorization_rebinds_changed_bank_ids_to_the_same_accounts(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"], ledger_account="1930")).json()
    assert (
        await client.post(f"/v1/bank-accounts/{account['id']}/confirmation", headers=auth_headers)
    ).status_code == 202
    # The bank issued other ids under the previous consent; the nightly sync then lost the consent.
    async with sessionmaker() as s:
        await s.execute(update(BankAccount).values(external_id="old-bank-id", status="reauth_required"))
        await s.execute(update(BankConnection).values(status="reauth_required"))
        await s.commit()

    again = await client.post(
        f"/v1/bank-connections/{connection['id']}/reauthorization", headers=auth_headers
    )
    assert again.status_code == 201, again.text
    assert again.json()["id"] == connection["id"]
    back = await approve_at_bank(sandbox_transport, again.json()["authorization"]["url"], "anna")
    done = await client.post(
        f"/v1/bank-connections/{connection['id']}/authorization",
        json={"code": back["code"], "state": back["state"]},
        headers=auth_headers,
    )
    assert done.json()["status"] == "active"

    shown = (await client.get(f"/v1/bank-accounts/{account['id']}", headers=auth_headers)).json()
    assert shown["status"] == "active" and shown["ledger_account"] == "1930"
    async with sessionmaker() as s:
        rows = (await s.execute(select(BankAccount))).scalars().all()
    assert [r.id for r in rows] == [uuid.UUID(account["id"])]
    assert rows[0].external_id.startswith("ftg-")


async def test_mark_reauth_required_flips_accounts_and_raises_todo_and_event(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    from ledgerlink.banks.service import mark_reauth_required

    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    await client.post(f"/v1/bank-accounts/{account['id']}/confirmation", headers=auth_headers)
    async with sessionmaker() as s:
        row = await s.get(BankConnection, uuid.UUID(connection["id"]))
        assert row is not None
        await mark_reauth_required(s, row, reason="consent expired at the bank")
        await mark_reauth_required(s, row, reason="consent expired at the bank")  # idempotent
        await s.commit()
    async with sessionmaker() as s:
        todos = (await s.execute(select(Todo))).scalars().all()
        events = (await s.execute(select(OutboxEvent))).scalars().all()
        acc = await s.get(BankAccount, uuid.UUID(account["id"]))
    assert [(t.type, t.subject_key) for t in todos] == [("reauth_required", connection["id"])]
    assert [e.type for e in events] == ["bank_connection.reauth_required"]
    assert acc is not None and acc.status.value == "reauth_required"
    shown = await client.get(f"/v1/bank-connections/{connection['id']}", headers=auth_headers)
    assert shown.json()["status"] == "reauth_required"


# --------------------------------------------------------------------------- revoke


async def test_delete_connection_revokes_and_disconnects_accounts(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    sandbox_transport: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    gone = await client.delete(f"/v1/bank-connections/{connection['id']}", headers=auth_headers)
    assert gone.status_code == 204
    shown = await client.get(f"/v1/bank-connections/{connection['id']}", headers=auth_headers)
    assert shown.json()["status"] == "revoked"
    acc = await client.get(f"/v1/bank-accounts/{account['id']}", headers=auth_headers)
    assert acc.json()["status"] == "disconnected"
    async with sessionmaker() as s:
        row = await s.get(BankConnection, uuid.UUID(connection["id"]))
    assert row is not None and row.secrets is None
    # the same bank account can be linked again on a new connection
    fresh = await connect_sandbox(client, auth_headers, sandbox_transport)
    assert (await link_account(client, auth_headers, fresh["id"])).status_code == 201
