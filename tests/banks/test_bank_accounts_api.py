"""Linked accounts, validation (each documented 4xx), tenant isolation, the plan gate, idempotency, the
mapping, and a redirect journey at a real bank's API shape (Nordea over respx)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_connect_journey import (
    REDIRECT,
    TODAY,
    connect_sandbox,
    link_account,
    make_company,
    start_connection,
)
from tests.conftest import make_token

from ledgerlink.config import BankEndpointSettings, Settings
from ledgerlink.models import AccountStatus, BankAccount, Plan
from ledgerlink.testbank.pki import make_pki

NORDEA = "https://nordea.test"
NORDEA_DATA = Path(__file__).parent.parent / "data" / "banks" / "nordea"

# the journey helpers' fixtures, reused here
from test_connect_journey import business, sandbox_transport, transports  # noqa: E402, F401


@pytest.fixture(scope="module")
def nordea_certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Nordea requires a QWAC and a QSealC: test ones, so connecting is allowed."""
    pki = make_pki(tmp_path_factory.mktemp("nordea-pki"))
    return {
        "client_cert_file": str(pki.qwac_cert),
        "client_key_file": str(pki.qwac_key),
        "signing_key_file": str(pki.qseal_key),
        "signing_cert_file": str(pki.qseal_cert),
    }


def nordea_payload(name: str) -> Any:
    return json.loads((NORDEA_DATA / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- a redirect bank (Nordea)


async def test_nordea_redirect_journey_to_a_queued_initial_import(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    arq_redis: Any,
    nordea_certs: dict[str, str],
) -> None:
    settings.banks["nordea"] = BankEndpointSettings(
        base_url=NORDEA, client_id="client-1", client_secret=SecretStr("secret-1"), **nordea_certs
    )
    # the API sits behind our proxies (the test client's peer is 127.0.0.1): they forward the user's address
    settings.trusted_proxies = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]
    with respx.mock(base_url=NORDEA, assert_all_called=False) as bank:
        authorize = bank.post("/personal/v5/authorize").respond(
            302, headers={"Location": "https://identify.nordea.test/login?session=abc"}
        )
        token = bank.post("/personal/v5/authorize/token").respond(200, json=nordea_payload("token.json"))
        bank.get("/personal/v5/accounts").respond(200, json=nordea_payload("accounts.json"))

        created = await client.post(
            "/v1/bank-connections",
            json={"bank_id": "nordea", "account_type": "private", "redirect_uri": REDIRECT},
            headers={**auth_headers, "X-Forwarded-For": "198.51.100.7, 10.0.0.1"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["authorization"] == {
            "method": "redirect",
            "url": "https://identify.nordea.test/login?session=abc",
        }
        sent = json.loads(authorize.calls.last.request.content)
        assert authorize.calls.last.request.headers["X-Nordea-Originating-User-Ip"] == "198.51.100.7"
        cid = created.json()["id"]

        done = await client.post(
            f"/v1/bank-connections/{cid}/authorization",
            json={"code": "code-9", "state": sent["state"]},
            headers=auth_headers,
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "active"
        assert "code-9" in token.calls.last.request.content.decode()

        available = (
            await client.get(f"/v1/bank-connections/{cid}/available-accounts", headers=auth_headers)
        ).json()
        assert available["items"]
        first = available["items"][0]
        linked = await client.post(
            "/v1/bank-accounts",
            json={
                "connection_id": cid,
                "external_id": first["external_id"],
                "sync_from": (TODAY - dt.timedelta(days=90)).isoformat(),
                "ledger_account": "1930",
            },
            headers=auth_headers,
        )
        assert linked.status_code == 201, linked.text
        run = await client.post(f"/v1/bank-accounts/{linked.json()['id']}/confirmation", headers=auth_headers)
        assert run.status_code == 202, run.text
    jobs = await arq_redis.queued_jobs(queue_name=settings.queue_name)
    assert run.json()["id"] in [j.kwargs.get("run_id") for j in jobs if j.function == "sync.account"]


async def test_bank_outage_during_connection_start_is_503_not_500(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    settings: Settings,
    nordea_certs: dict[str, str],
) -> None:
    settings.banks["nordea"] = BankEndpointSettings(base_url=NORDEA, client_id="c", **nordea_certs)
    with respx.mock(base_url=NORDEA, assert_all_called=False) as bank:
        bank.post("/personal/v5/authorize").respond(503)
        answer = await client.post(
            "/v1/bank-connections",
            json={"bank_id": "nordea", "account_type": "private", "redirect_uri": REDIRECT},
            headers=auth_headers,
        )
    assert answer.status_code == 503
    assert answer.json()["code"] == "bank_unavailable"


# --------------------------------------------------------------------------- connection 4xx


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"bank_id": "danske"}, 409, "bank_unavailable"),
        ({"bank_id": "no-such-bank"}, 422, "unknown_bank"),
        ({"bank_id": "lansforsakringar", "account_type": "business"}, 422, "account_type_unsupported"),
        ({"redirect_uri": "https://evil.example/cb"}, 422, "redirect_uri_not_allowed"),
        ({"sca_method": "decoupled"}, 422, "psu_id_required"),
        ({"bank_id": "revolut", "sca_method": "decoupled", "psu_id": "x"}, 422, "sca_method_unsupported"),
    ],
)
async def test_connection_refusals(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    body: dict[str, Any],
    status: int,
    code: str,
) -> None:
    answer = await start_connection(client, auth_headers, **body)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code


async def test_plan_gate_without_entitlement(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await make_company(sessionmaker, company_id, Plan.free)
    answer = await start_connection(client, auth_headers)
    assert answer.status_code == 403
    assert answer.json()["code"] == "plan_required"


async def test_available_accounts_of_a_connection_not_yet_authorized_is_409(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
) -> None:
    created = await start_connection(client, auth_headers)
    answer = await client.get(
        f"/v1/bank-connections/{created.json()['id']}/available-accounts", headers=auth_headers
    )
    assert answer.status_code == 409 and answer.json()["code"] == "connection_not_active"


async def test_idempotency_key_replays_the_first_connection(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
) -> None:
    headers = {**auth_headers, "Idempotency-Key": "k-1"}
    first = await start_connection(client, headers)
    second = await start_connection(client, headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    listed = (await client.get("/v1/bank-connections", headers=auth_headers)).json()
    assert len(listed["items"]) == 1
    other = await start_connection(client, headers, account_type="private")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def test_connections_list_is_paginated(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
) -> None:
    ids = [(await start_connection(client, auth_headers)).json()["id"] for _ in range(3)]
    page1 = (await client.get("/v1/bank-connections", params={"limit": 2}, headers=auth_headers)).json()
    page2 = (
        await client.get(
            "/v1/bank-connections", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=auth_headers
        )
    ).json()
    seen = [c["id"] for c in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted(ids) and page2["next_cursor"] is None


# --------------------------------------------------------------------------- account 4xx


async def test_sync_from_bounds_name_the_earliest_date(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    future = await link_account(
        client, auth_headers, connection["id"], sync_from=(TODAY + dt.timedelta(days=1)).isoformat()
    )
    assert future.status_code == 422 and future.json()["code"] == "sync_from_in_future"
    earliest = TODAY - dt.timedelta(days=730)
    too_old = await link_account(
        client, auth_headers, connection["id"], sync_from=(earliest - dt.timedelta(days=1)).isoformat()
    )
    assert too_old.status_code == 422 and too_old.json()["code"] == "sync_from_too_early"
    assert earliest.isoformat() in too_old.json()["detail"]
    oldest_ok = await link_account(client, auth_headers, connection["id"], sync_from=earliest.isoformat())
    assert oldest_ok.status_code == 201


async def test_same_bank_account_twice_is_409_and_ledger_rules(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    first = await link_account(client, auth_headers, connection["id"], ledger_account="1930")
    assert first.status_code == 201
    twice = await link_account(client, auth_headers, connection["id"])
    assert twice.status_code == 409 and twice.json()["code"] == "bank_account_already_linked"

    bad = await link_account(client, auth_headers, connection["id"], kind="priv", ledger_account="2440")
    assert bad.status_code == 422 and bad.json()["code"] == "ledger_account_invalid"
    taken = await link_account(client, auth_headers, connection["id"], kind="priv", ledger_account="1930")
    assert taken.status_code == 409 and taken.json()["code"] == "ledger_account_in_use"
    unknown = await client.post(
        "/v1/bank-accounts",
        json={"connection_id": connection["id"], "external_id": "nope", "sync_from": TODAY.isoformat()},
        headers=auth_headers,
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "bank_account_not_available"
    # the same account through a second connection (one that replaces the first, as a second one at the
    # same bank must) is still the same bank account
    second = await connect_sandbox(
        client, auth_headers, sandbox_transport, replace_connection_id=connection["id"]
    )
    again = await link_account(client, auth_headers, second["id"])
    assert again.status_code == 409


async def test_confirmation_twice_is_409_and_patch_backfills(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    url = f"/v1/bank-accounts/{account['id']}"
    assert (await client.post(f"{url}/confirmation", headers=auth_headers)).status_code == 202
    twice = await client.post(f"{url}/confirmation", headers=auth_headers)
    assert twice.status_code == 409 and twice.json()["code"] == "bank_account_state_conflict"

    busy = await client.patch(
        url, json={"sync_from": (TODAY - dt.timedelta(days=60)).isoformat()}, headers=auth_headers
    )
    assert busy.status_code == 409  # the initial import is still queued

    later = await client.patch(
        url,
        json={"sync_from": (TODAY - dt.timedelta(days=10)).isoformat(), "display_name": "Kassa"},
        headers=auth_headers,
    )
    assert later.status_code == 200, later.text
    assert later.json()["backfill"] is None and later.json()["name"] == "Kassa"


async def test_patch_earlier_sync_from_schedules_a_backfill(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    url = f"/v1/bank-accounts/{account['id']}"
    assert (await client.patch(url, json={"ledger_account": "1940"}, headers=auth_headers)).status_code == 200
    # active with no run queued, as after the initial import finished (that import is the sync engine's)
    async with sessionmaker() as s:
        await s.execute(update(BankAccount).values(status=AccountStatus.active))
        await s.commit()
    earlier = (TODAY - dt.timedelta(days=100)).isoformat()
    moved = await client.patch(url, json={"sync_from": earlier}, headers=auth_headers)
    assert moved.status_code == 200, moved.text
    backfill = moved.json()["backfill"]
    assert backfill["trigger"] == "backfill" and backfill["window_from"] == earlier
    assert moved.json()["sync_from"] == earlier and moved.json()["ledger_account"] == "1940"


# --------------------------------------------------------------------------- mapping and suggestions


async def test_mapping_list_put_and_ledger_suggestions(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
) -> None:
    suggestions = await client.get("/v1/ledger-accounts", params={"class": "19"}, headers=auth_headers)
    numbers = {a["number"]: a["name"] for a in suggestions.json()["items"]}
    assert (
        numbers["1910"] == "Kassa"
        and numbers["1920"] == "PlusGiro"
        and "1930" in numbers
        and "1940" in numbers
    )

    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    a = (await link_account(client, auth_headers, connection["id"], ledger_account="1930")).json()
    b = (await link_account(client, auth_headers, connection["id"], kind="priv")).json()
    put = await client.put(
        f"/v1/account-mappings/{b['id']}", json={"ledger_account": "1940"}, headers=auth_headers
    )
    assert put.status_code == 200
    assert put.json() == {
        "bank_account_id": b["id"],
        "ledger_account": "1940",
        "ledger_account_name": "Övriga bankkonton",
    }
    clash = await client.put(
        f"/v1/account-mappings/{b['id']}", json={"ledger_account": "1930"}, headers=auth_headers
    )
    assert clash.status_code == 409
    invalid = await client.put(
        f"/v1/account-mappings/{b['id']}", json={"ledger_account": "3010"}, headers=auth_headers
    )
    assert invalid.status_code == 422 and invalid.json()["code"] == "ledger_account_invalid"
    listed = (await client.get("/v1/account-mappings", headers=auth_headers)).json()["items"]
    assert {(m["bank_account_id"], m["ledger_account"]) for m in listed} == {
        (a["id"], "1930"),
        (b["id"], "1940"),
    }
    # a disconnected account frees its ledger account
    assert (await client.delete(f"/v1/bank-accounts/{a['id']}", headers=auth_headers)).status_code == 204
    freed = await client.put(
        f"/v1/account-mappings/{b['id']}", json={"ledger_account": "1930"}, headers=auth_headers
    )
    assert freed.status_code == 200


# --------------------------------------------------------------------------- tenant isolation


async def test_every_route_answers_404_for_another_companys_ids(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    intruder_id = uuid.uuid4()
    await make_company(sessionmaker, intruder_id, Plan.business)
    other = {"Authorization": f"Bearer {make_token(settings, intruder_id)}"}
    cid, aid = connection["id"], account["id"]
    calls = [
        ("GET", f"/v1/bank-connections/{cid}", None),
        ("GET", f"/v1/bank-connections/{cid}/available-accounts", None),
        ("POST", f"/v1/bank-connections/{cid}/authorization", {"code": "c", "state": "s"}),
        ("POST", f"/v1/bank-connections/{cid}/reauthorization", None),
        ("DELETE", f"/v1/bank-connections/{cid}", None),
        (
            "POST",
            "/v1/bank-accounts",
            {"connection_id": cid, "external_id": "x", "sync_from": TODAY.isoformat()},
        ),
        ("GET", f"/v1/bank-accounts/{aid}", None),
        ("PATCH", f"/v1/bank-accounts/{aid}", {"display_name": "mine"}),
        ("POST", f"/v1/bank-accounts/{aid}/confirmation", None),
        ("DELETE", f"/v1/bank-accounts/{aid}", None),
        ("PUT", f"/v1/account-mappings/{aid}", {"ledger_account": "1940"}),
    ]
    for method, path, body in calls:
        answer = await client.request(method, path, json=body, headers=other)
        assert answer.status_code == 404, (method, path, answer.text)
        assert "sandbox" not in answer.text  # nothing of the resource leaks
    assert (await client.get("/v1/bank-connections", headers=other)).json()["items"] == []
    assert (await client.get("/v1/bank-accounts", headers=other)).json()["items"] == []
    assert (await client.get("/v1/account-mappings", headers=other)).json()["items"] == []
    # nothing of ours changed
    mine = (await client.get(f"/v1/bank-accounts/{aid}", headers=auth_headers)).json()
    assert mine["status"] == "pending_confirmation" and mine["name"] != "mine"


async def test_bank_routes_need_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/banks")).status_code == 401
    assert (await client.get("/v1/bank-accounts")).status_code == 401
