"""A second connection at the same bank (issue 15): a Berlin Group bank keeps one recurring consent per
person, so a second one would silently end the first. Starting one is 409 `connection_exists` naming the
first, unless the caller replaces it (`replace_connection_id`: its accounts move over, it is revoked) or
it is another person's; an unfinished login there is superseded; nothing breaks without saying so."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.banks.test_connect_journey import (
    approve_at_bank,
    connect_sandbox,
    link_account,
    make_company,
    start_connection,
)
from tests.banks.test_psu_ip_address import Recorder

from ledgerlink.models import BankAccount, BankConnection, Plan
from ledgerlink.sandbox.bank import create_sandbox_bank_app


@pytest.fixture
def recorder() -> Recorder:
    bank = create_sandbox_bank_app(slow_seconds=0.0, decoupled_polls=1)
    return Recorder(httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)])))


@pytest.fixture
def transports(recorder: Recorder) -> dict[str, httpx.AsyncBaseTransport]:
    return {"sandbox": recorder}


@pytest.fixture
def bank(recorder: Recorder) -> httpx.ASGITransport:
    """The bank as the user's browser reaches it (not through the recorder)."""
    assert isinstance(recorder.inner, httpx.ASGITransport)
    return recorder.inner


@pytest.fixture
async def business(sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID) -> uuid.UUID:
    await make_company(sessionmaker, company_id, Plan.business)
    return company_id


async def read(client: httpx.AsyncClient, headers: dict[str, str], connection_id: str) -> dict[str, Any]:
    got = await client.get(f"/v1/bank-connections/{connection_id}", headers=headers)
    assert got.status_code == 200, got.text
    return dict(got.json())


async def test_a_second_connection_for_the_same_person_is_409_naming_the_first_and_asks_the_bank_nothing(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    bank: httpx.ASGITransport,
    recorder: Recorder,
) -> None:
    first = await connect_sandbox(client, auth_headers, bank)
    recorder.calls.clear()

    again = await start_connection(client, auth_headers, psu_id="anna")
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["code"] == "connection_exists"
    assert again.json()["connection_id"] == first["id"]
    assert "reauthoriz" in again.json()["detail"] and "replace_connection_id" in again.json()["detail"]
    # a redirect login that names nobody may be the same person too
    assert (await start_connection(client, auth_headers)).status_code == 409
    assert recorder.calls == []  # no second consent was even asked for
    assert (await read(client, auth_headers, first["id"]))["status"] == "active"


async def test_a_connection_that_needs_a_new_login_is_reauthorized_not_doubled(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    bank: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    first = await connect_sandbox(client, auth_headers, bank)
    async with sessionmaker() as s:
        row = await s.get(BankConnection, uuid.UUID(first["id"]))
        assert row is not None
        row.status = row.status.reauth_required
        await s.commit()
    again = await start_connection(client, auth_headers, psu_id="anna")
    assert again.status_code == 409 and again.json()["connection_id"] == first["id"]


async def test_another_persons_connection_at_the_same_bank_is_allowed(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID, bank: httpx.ASGITransport
) -> None:
    anna = await connect_sandbox(client, auth_headers, bank, psu="anna")
    bertil = await connect_sandbox(client, auth_headers, bank, psu="19800101-1234")
    assert bertil["status"] == "active"
    assert (await read(client, auth_headers, anna["id"]))["status"] == "active"
    # the same personnummer written another way is the same person
    again = await start_connection(client, auth_headers, psu_id="198001011234")
    assert again.status_code == 409 and again.json()["connection_id"] == bertil["id"]


async def test_replacing_moves_the_covered_accounts_and_revokes_the_old_connection_at_the_bank(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    bank: httpx.ASGITransport,
    recorder: Recorder,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    old = await connect_sandbox(client, auth_headers, bank)
    linked = await link_account(client, auth_headers, old["id"], ledger_account="1930")
    assert linked.status_code == 201, linked.text
    account = linked.json()
    recorder.calls.clear()

    new = await connect_sandbox(client, auth_headers, bank, replace_connection_id=old["id"])
    assert new["status"] == "active"
    assert [m for m, path, _ in recorder.calls if m == "DELETE" and "/consents/" in path] == ["DELETE"]

    retired = await read(client, auth_headers, old["id"])
    assert retired["status"] == "revoked"
    assert retired["last_error"]["code"] == "connection_replaced"
    assert retired["last_error"]["message"] == f"replaced by connection {new['id']}"
    moved = await client.get(f"/v1/bank-accounts/{account['id']}", headers=auth_headers)
    assert moved.status_code == 200
    assert moved.json()["connection_id"] == new["id"]  # the same resource, now on the new connection
    assert moved.json()["status"] == account["status"] and moved.json()["ledger_account"] == "1930"
    available = await client.get(f"/v1/bank-connections/{new['id']}/available-accounts", headers=auth_headers)
    assert account["id"] in [a["linked_bank_account_id"] for a in available.json()["items"]]


async def test_replacing_with_another_persons_login_disconnects_what_it_does_not_cover(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,
    bank: httpx.ASGITransport,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    old = await connect_sandbox(client, auth_headers, bank, psu="anna")
    account = (await link_account(client, auth_headers, old["id"])).json()
    new = await connect_sandbox(client, auth_headers, bank, psu="bertil", replace_connection_id=old["id"])
    assert (await read(client, auth_headers, old["id"]))["status"] == "revoked"
    async with sessionmaker() as s:
        row = await s.get(BankAccount, uuid.UUID(account["id"]))
        assert row is not None
        assert row.status.value == "disconnected" and str(row.connection_id) == old["id"]
    assert new["status"] == "active"


async def test_a_replacement_that_fails_at_the_bank_leaves_the_old_connection_working(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID, bank: httpx.ASGITransport
) -> None:
    old = await connect_sandbox(client, auth_headers, bank)
    started = await start_connection(
        client, auth_headers, psu_id="rejected", sca_method="decoupled", replace_connection_id=old["id"]
    )
    assert started.status_code == 201, started.text
    refused = await read(client, auth_headers, started.json()["id"])
    assert refused["status"] == "failed"
    kept = await read(client, auth_headers, old["id"])
    assert kept["status"] == "active" and kept["last_error"] is None


async def test_replace_connection_id_must_be_an_open_connection_of_the_company_at_that_bank(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID
) -> None:
    for bogus in (str(uuid.uuid4()), "not-a-uuid"):
        answer = await start_connection(client, auth_headers, replace_connection_id=bogus)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"][-1] == "replace_connection_id"
    unknown = await start_connection(client, auth_headers, replace_connection_id=str(uuid.uuid4()))
    assert unknown.json()["code"] == "replace_connection_invalid"


async def test_an_unfinished_login_is_superseded_and_can_no_longer_complete(
    client: httpx.AsyncClient, auth_headers: dict[str, str], business: uuid.UUID, bank: httpx.ASGITransport
) -> None:
    abandoned = await start_connection(client, auth_headers, psu_id="anna")
    assert abandoned.status_code == 201
    back = await approve_at_bank(bank, abandoned.json()["authorization"]["url"], "anna")

    current = await connect_sandbox(client, auth_headers, bank)
    assert current["status"] == "active"
    superseded = await read(client, auth_headers, abandoned.json()["id"])
    assert superseded["status"] == "failed"
    assert superseded["last_error"]["code"] == "authorization_superseded"
    assert current["id"] in superseded["last_error"]["message"]
    late = await client.post(
        f"/v1/bank-connections/{abandoned.json()['id']}/authorization",
        json={"code": back["code"], "state": back["state"]},
        headers=auth_headers,
    )
    assert late.status_code == 400 and late.json()["code"] == "state_mismatch"
