"""The user's real address reaches the bank only when the user is there (issue 15).

Behind a trusted proxy, the bank login, the confirmation's initial import and "sync now" carry the
address the proxy saw (`PSU-IP-Address`, asserted on what the sandbox bank received); the nightly run
carries none; a forwarded header from a peer that is not a trusted proxy is ignored; a run forgets the
address once it has ended."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.banks.test_connect_journey import connect_sandbox, link_account, make_company

from ledgerlink.config import Settings
from ledgerlink.models import BankAccount, Plan, SyncRun
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sync.service.cron import schedule_due_accounts

PROXY = "10.20.30.40"  # our load balancer, in the trusted 10.0.0.0/8
USER = "198.51.100.7"  # the user, as the load balancer saw them
SPOOFED = "203.0.113.66"  # what the user's own client wrote into X-Forwarded-For


class Recorder(httpx.AsyncBaseTransport):
    """Passes every request to the sandbox bank and keeps (method, path, PSU-IP-Address) of each."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path, request.headers.get("PSU-IP-Address")))
        return await self.inner.handle_async_request(request)

    def addresses(self, method: str, path_part: str) -> list[str | None]:
        """The PSU-IP-Address of every recorded call (then forgets them)."""
        found = [ip for m, path, ip in self.calls if m == method and path_part in path]
        self.calls.clear()
        return found


@pytest.fixture
def recorder() -> Recorder:
    bank = create_sandbox_bank_app(slow_seconds=0.0)
    return Recorder(httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)])))


@pytest.fixture
def transports(recorder: Recorder) -> dict[str, httpx.AsyncBaseTransport]:
    return {"sandbox": recorder}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.trusted_proxies = [ipaddress.ip_network("10.0.0.0/8")]
    settings.sync.per_bank_concurrency = 100  # no deferral in burst-mode runs
    return settings


async def _client(app: Any, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def behind_proxy(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with await _client(app, PROXY) as client:
        yield client


def forwarded(headers: dict[str, str], *hops: str) -> dict[str, str]:
    return headers | {"X-Forwarded-For": ", ".join(hops)}


async def test_behind_a_trusted_proxy_login_initial_import_and_sync_now_carry_the_users_address(
    behind_proxy: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    recorder: Recorder,
    run_jobs: Any,
) -> None:
    await make_company(sessionmaker, company_id, Plan.business)
    headers = forwarded(auth_headers, SPOOFED, USER)
    connection = await connect_sandbox(behind_proxy, headers, sandbox_transport_of(recorder))
    assert recorder.addresses("POST", "/consents") == [USER]  # the consent, made with the user there

    linked = await link_account(behind_proxy, headers, connection["id"])
    assert linked.status_code == 201, linked.text
    account_id = linked.json()["id"]
    confirmed = await behind_proxy.post(f"/v1/bank-accounts/{account_id}/confirmation", headers=headers)
    assert confirmed.status_code == 202, confirmed.text
    await run_jobs()
    initial = recorder.addresses("GET", "/transactions")
    assert initial and set(initial) == {USER}

    later = forwarded(auth_headers, "198.51.100.99")  # the user again, from another address
    synced = await behind_proxy.post(f"/v1/bank-accounts/{account_id}/syncs", json={}, headers=later)
    assert synced.status_code == 202, synced.text
    await run_jobs()
    manual = recorder.addresses("GET", "/transactions")
    assert manual and set(manual) == {"198.51.100.99"}

    async with sessionmaker() as s:
        runs = (await s.execute(select(SyncRun).where(SyncRun.account_id == uuid.UUID(account_id)))).scalars()
        assert {r.status.value for r in runs} == {"succeeded"}


async def test_the_nightly_run_carries_no_address_and_ended_runs_forget_theirs(
    behind_proxy: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    transports: dict[str, Any],
    recorder: Recorder,
    run_jobs: Any,
) -> None:
    await make_company(sessionmaker, company_id, Plan.business)
    headers = forwarded(auth_headers, USER)
    connection = await connect_sandbox(behind_proxy, headers, sandbox_transport_of(recorder))
    account_id = (await link_account(behind_proxy, headers, connection["id"])).json()["id"]
    await behind_proxy.post(f"/v1/bank-accounts/{account_id}/confirmation", headers=headers)
    await run_jobs()
    recorder.calls.clear()

    async with sessionmaker() as s:
        await s.execute(
            update(BankAccount)
            .where(BankAccount.id == uuid.UUID(account_id))
            .values(next_sync_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
        )
        await s.commit()
    env = ServiceEnv(settings=settings, sessionmaker=sessionmaker, transports=transports)
    assert await schedule_due_accounts(env) == 1
    await run_jobs()
    nightly = recorder.addresses("GET", "/transactions")
    assert nightly and set(nightly) == {None}

    async with sessionmaker() as s:
        runs = {
            r.trigger.value: r
            for r in (
                await s.execute(select(SyncRun).where(SyncRun.account_id == uuid.UUID(account_id)))
            ).scalars()
        }
    assert set(runs) == {"initial", "scheduled"}
    assert runs["scheduled"].psu_ip_address is None  # an unattended run never had one
    # the cron pass that queued the nightly run forgot the initial import's address (it had ended)
    assert runs["initial"].status.value == "succeeded" and runs["initial"].psu_ip_address is None


async def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(
    app: Any,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    sessionmaker: async_sessionmaker[AsyncSession],
    recorder: Recorder,
    run_jobs: Any,
) -> None:
    await make_company(sessionmaker, company_id, Plan.business)
    direct_peer = "192.0.2.44"  # not a trusted proxy: its X-Forwarded-For is whatever it wants
    async with await _client(app, direct_peer) as client:
        headers = forwarded(auth_headers, USER)
        connection = await connect_sandbox(client, headers, sandbox_transport_of(recorder))
        assert recorder.addresses("POST", "/consents") == [direct_peer]
        account_id = (await link_account(client, headers, connection["id"])).json()["id"]
        await client.post(f"/v1/bank-accounts/{account_id}/confirmation", headers=headers)
        async with sessionmaker() as s:
            [run] = (await s.execute(select(SyncRun))).scalars().all()
            assert run.psu_ip_address == direct_peer  # kept while the run may still call the bank
    await run_jobs()
    initial = recorder.addresses("GET", "/transactions")
    assert initial and set(initial) == {direct_peer}


def sandbox_transport_of(recorder: Recorder) -> httpx.ASGITransport:
    """The user's browser talks to the bank directly (not through our recorder)."""
    assert isinstance(recorder.inner, httpx.ASGITransport)
    return recorder.inner
