"""``/v1/bank-accounts/{id}/syncs`` over HTTP: "sync now" (202), the 409 naming the queued or running
run, the run history, validation, tenant isolation, and "sync now" never spending the unattended PSD2
allowance (the sandbox bank refuses a fifth unattended read a day)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from ledgerlink.models import AccountStatus, BankAccount, SyncRun, SyncStatus, UnattendedRead
from tests.conftest import make_token
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)


@pytest.fixture
def transports(clock: SimClock) -> dict[str, httpx.AsyncBaseTransport]:
    clock.set_local(DAY, 14)
    return {"sandbox": sandbox_transport(clock)}


@pytest.fixture
async def account(
    settings: Any, sessionmaker: Any, transports: dict[str, Any], company_id: uuid.UUID, clock: SimClock
) -> BankAccount:
    await make_company(sessionmaker, company_id)
    return await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        sync_from=DAY - dt.timedelta(days=20),
        clock=clock,
    )


async def _runs(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: uuid.UUID
) -> list[dict[str, Any]]:
    listed = await client.get(f"/v1/bank-accounts/{account_id}/syncs", headers=headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_sync_now_is_202_then_409_naming_the_queued_and_the_running_run(
    clock: SimClock,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    account: BankAccount,
    sessionmaker: Any,
    run_jobs: Any,
) -> None:
    path = f"/v1/bank-accounts/{account.id}/syncs"
    first = await client.post(path, json={}, headers=auth_headers)
    assert first.status_code == 202, first.text
    queued = first.json()
    assert (queued["trigger"], queued["status"]) == ("manual", "queued")

    busy = await client.post(path, json={}, headers=auth_headers)
    assert busy.status_code == 409
    assert busy.headers["content-type"].startswith("application/problem+json")
    assert (busy.json()["code"], busy.json()["run_id"]) == ("sync_in_progress", queued["id"])
    assert [r["id"] for r in await _runs(client, auth_headers, account.id)] == [queued["id"]]

    await run_jobs()
    [done] = await _runs(client, auth_headers, account.id)
    assert done["status"] == "succeeded"
    assert done["counts"]["inserted"] == done["counts"]["fetched"] > 0
    assert (
        done["window_to"] == DAY.isoformat()
        and done["window_from"] == (DAY - dt.timedelta(days=20)).isoformat()
    )
    assert done["started_at"] and done["finished_at"] and done["error"] is None

    clock.at += dt.timedelta(minutes=5)  # the user clicks again a little later
    second = await client.post(path, json={}, headers=auth_headers)
    assert second.status_code == 202
    async with sessionmaker() as s:  # a worker has claimed it
        await s.execute(
            update(SyncRun).where(SyncRun.id == uuid.UUID(second.json()["id"])).values(status="running")
        )
        await s.commit()
    running = await client.post(path, json={}, headers=auth_headers)
    assert running.status_code == 409
    assert running.json()["run_id"] == second.json()["id"]
    history = await _runs(client, auth_headers, account.id)
    assert [(r["id"], r["status"]) for r in history] == [
        (second.json()["id"], "running"),
        (queued["id"], "succeeded"),
    ]


async def test_sync_now_never_spends_the_unattended_allowance(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    account: BankAccount,
    sessionmaker: Any,
    settings: Any,
    run_jobs: Any,
) -> None:
    tries = settings.sync.unattended_reads_per_day + 2  # the bank would answer 429 to a 5th unattended read
    for _ in range(tries):
        started = await client.post(f"/v1/bank-accounts/{account.id}/syncs", json={}, headers=auth_headers)
        assert started.status_code == 202, started.text
        await run_jobs()
    runs = await _runs(client, auth_headers, account.id)
    assert [r["status"] for r in runs] == ["succeeded"] * tries
    async with sessionmaker() as s:
        spent = (
            await s.execute(select(func.count()).where(UnattendedRead.account_id == account.id))
        ).scalar_one()
    assert spent == 0


async def test_sync_now_validation_and_state_refusals(
    client: httpx.AsyncClient, auth_headers: dict[str, str], account: BankAccount, sessionmaker: Any
) -> None:
    path = f"/v1/bank-accounts/{account.id}/syncs"
    future = await client.post(
        path, json={"to": (DAY + dt.timedelta(days=1)).isoformat()}, headers=auth_headers
    )
    assert future.status_code == 422
    backwards = await client.post(
        path,
        json={"from": DAY.isoformat(), "to": (DAY - dt.timedelta(days=1)).isoformat()},
        headers=auth_headers,
    )
    assert backwards.status_code == 422
    before = await client.post(
        path, json={"from": (DAY - dt.timedelta(days=40)).isoformat()}, headers=auth_headers
    )
    assert before.status_code == 422 and "sync_from" in before.json()["detail"]

    window = await client.post(
        path,
        json={
            "from": (DAY - dt.timedelta(days=5)).isoformat(),
            "to": (DAY - dt.timedelta(days=1)).isoformat(),
        },
        headers=auth_headers,
    )
    assert window.status_code == 202
    assert (window.json()["window_from"], window.json()["window_to"]) == (
        (DAY - dt.timedelta(days=5)).isoformat(),
        (DAY - dt.timedelta(days=1)).isoformat(),
    )

    async with sessionmaker() as s:
        await s.execute(
            update(BankAccount).where(BankAccount.id == account.id).values(status=AccountStatus.paused)
        )
        await s.execute(
            update(SyncRun).where(SyncRun.account_id == account.id).values(status=SyncStatus.failed)
        )
        await s.commit()
    paused = await client.post(path, json={}, headers=auth_headers)
    assert paused.status_code == 409 and paused.json()["code"] == "account_not_active"


async def test_another_companys_account_syncs_are_404(
    client: httpx.AsyncClient, settings: Any, account: BankAccount
) -> None:
    stranger = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}
    for response in (
        await client.post(f"/v1/bank-accounts/{account.id}/syncs", json={}, headers=stranger),
        await client.get(f"/v1/bank-accounts/{account.id}/syncs", headers=stranger),
    ):
        assert response.status_code == 404, response.text
        assert "run" not in response.text
    no_token = await client.get(f"/v1/bank-accounts/{account.id}/syncs")
    assert no_token.status_code == 401
