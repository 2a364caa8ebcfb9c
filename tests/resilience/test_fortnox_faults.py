"""Fortnox under faults: a 429 storm, 5xx, timeouts after Fortnox accepted a voucher, expired access
tokens refreshed by two workers at once (a single-use refresh token spent twice would lose the
connection). Exports retried until done: exactly one voucher per adjustment, and the connection stays.

Uses the closing tests' fixtures (the sandbox Fortnox mounted in-process, a connected company)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from ledgerlink.config import Settings
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.closing import conftest as closing_fixtures
from tests.closing.conftest import RunJobs, create_closing, import_from_fortnox
from tests.resilience.conftest import FULL

pytestmark = pytest.mark.resilience

# the closing tests' fixtures: sandbox Fortnox in-process, settings without a Fortnox client, connected
settings = closing_fixtures.settings
sandbox_company = closing_fixtures.sandbox_company
sandbox_app = closing_fixtures.sandbox_app
sandbox = closing_fixtures.sandbox
transport = closing_fixtures.transport
client = closing_fixtures.client
connected = closing_fixtures.connected

N_ADJUSTMENTS = 30 if FULL else 10


def in_fortnox(sandbox: SandboxFortnox, adjustment_id: str) -> int:
    marker = f"[ll:{uuid.UUID(adjustment_id).hex[:12]}]"
    return sum(1 for v in sandbox.company.vouchers if v.description.endswith(marker))


@pytest.fixture
async def closing(
    client: httpx.AsyncClient, auth_headers: dict[str, str], connected: None, run_jobs: RunJobs
) -> dict[str, Any]:
    created = await create_closing(client, auth_headers)
    job = await import_from_fortnox(client, auth_headers, run_jobs, created["id"])
    assert job["status"] == "succeeded", job
    return created


async def adjustments(
    client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, n: int
) -> list[str]:
    ids = []
    for i in range(n):
        amount = f"{100 + i}.50"
        response = await client.post(
            f"/v1/closings/{closing_id}/adjustments",
            json={
                "date": "2025-12-31",
                "description": f"Periodisering {i}",
                "rows": [{"account": "6570", "debit": amount}, {"account": "1930", "credit": amount}],
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


async def export_until_done(
    client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, ids: list[str], run_jobs: RunJobs
) -> list[dict[str, Any]]:
    """Export, and export again what did not post (what a user or the retrying job would do)."""
    results = []
    for _ in range(6):
        started = await client.post(
            f"/v1/closings/{closing_id}/exports",
            json={"target": "fortnox", "voucher_series": "A", "adjustment_ids": ids},
            headers=headers,
        )
        assert started.status_code == 202, started.text
        for _ in range(5):
            await run_jobs()
            result = (
                await client.get(f"/v1/closings/{closing_id}/exports/{started.json()['id']}", headers=headers)
            ).json()
            if result["status"] in ("succeeded", "partially_failed", "failed"):
                break
            await asyncio.sleep(1.1)  # a job deferred by a Retry-After
        results.append(result)
        if all(item["status"] == "posted" for item in result["items"]):
            return results
    return results


async def test_a_storm_of_429_5xx_and_timeouts_after_accept_makes_one_voucher_per_adjustment(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
    settings: Settings,
) -> None:
    ids = await adjustments(client, auth_headers, closing["id"], N_ADJUSTMENTS)
    settings.fortnox.timeout_seconds = 1.0
    faults = sandbox.faults
    faults.fail_next("/3/vouchers", 6, status=429, method="POST", retry_after="1")
    faults.fail_next("/3/vouchers", 3, status=503, method="POST")
    faults.fail_next("/3/vouchers", 2, status=500, method="POST")
    faults.stall_after_accept(2, seconds=4)
    faults.fail_next("/3/vouchers/sublist", 2, status=503, method="GET")  # the look-up after a timeout too

    results = await export_until_done(client, auth_headers, closing["id"], ids, run_jobs)

    assert all(item["status"] == "posted" for item in results[-1]["items"]), results[-1]
    assert [in_fortnox(sandbox, i) for i in ids] == [1] * len(ids)
    assert sandbox.counters.created_vouchers == len(ids)
    # the storm really blew: every injected fault was met (11 refused posts, 2 stalls, 2 look-ups)
    assert not any(f.remaining for f in sandbox.faults._faults)
    assert sandbox.counters.by_path["POST /3/vouchers"] >= len(ids) + 11
    again = await export_until_done(client, auth_headers, closing["id"], ids, run_jobs)
    assert all(item["status"] == "posted" for item in again[-1]["items"])
    assert sandbox.counters.created_vouchers == len(ids)  # exporting again makes no second voucher
    connection = (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()
    assert connection["status"] == "active"


async def test_two_workers_refreshing_expired_tokens_at_once_keep_the_connection(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    ids = await adjustments(client, auth_headers, closing["id"], 6)
    refreshes_before = sandbox.counters.refresh_grants
    sandbox.expire_access_tokens()
    started = []
    for part in (ids[:3], ids[3:]):
        response = await client.post(
            f"/v1/closings/{closing['id']}/exports",
            json={"target": "fortnox", "voucher_series": "A", "adjustment_ids": part},
            headers=auth_headers,
        )
        assert response.status_code == 202, response.text
        started.append(response.json()["id"])

    await asyncio.gather(run_jobs(max_jobs=1), run_jobs(max_jobs=1))  # two workers, one job each

    for export_id in started:
        result = (
            await client.get(f"/v1/closings/{closing['id']}/exports/{export_id}", headers=auth_headers)
        ).json()
        assert result["status"] == "succeeded", result
    assert [in_fortnox(sandbox, i) for i in ids] == [1] * len(ids)
    # one refresh for both workers: a single-use refresh token spent twice is Fortnox's invalid_grant
    assert sandbox.counters.refresh_grants - refreshes_before == 1
    assert not any(g.revoked for g in sandbox.refresh_tokens.values())
    assert sum(1 for g in sandbox.refresh_tokens.values() if not g.used) == 1
    connection = (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()
    assert connection["status"] == "active"
    years = await client.get("/v1/fortnox/financial-years", headers=auth_headers)
    assert years.status_code == 200, years.text


async def test_a_reused_refresh_token_loses_nothing_but_the_connection_state_is_honest(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    closing: dict[str, Any],
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    """Another client spent our refresh token (reuse): Fortnox refuses the refresh. The connection is
    reported expired (reconnect needed), never silently active, and nothing was posted twice."""
    ids = await adjustments(client, auth_headers, closing["id"], 2)
    for grant in sandbox.refresh_tokens.values():
        grant.used = True  # spent elsewhere
    sandbox.expire_access_tokens()
    response = await client.post(
        f"/v1/closings/{closing['id']}/exports",
        json={"target": "fortnox", "voucher_series": "A", "adjustment_ids": ids},
        headers=auth_headers,
    )
    # the series is checked in Fortnox before the export starts: the refused refresh answers there
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "fortnox_reauth_required"
    assert [in_fortnox(sandbox, i) for i in ids] == [0, 0]
    connection = (await client.get("/v1/fortnox/connection", headers=auth_headers)).json()
    assert connection["status"] in ("expired", "revoked", "not_connected"), connection
