"""Exactly once under concurrency: many parallel exports of one adjustment make one Fortnox voucher and
no internal error, in the embedded default (SQLite, in-process jobs) and on PostgreSQL with workers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.closing.conftest import RunJobs, create_closing, import_from_fortnox
from tests.closing.embedded import embedded
from tests.closing.test_export import adjust, in_fortnox

PARALLEL = 50


async def _parallel_exports(
    client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, adjustment_id: str
) -> list[httpx.Response]:
    body = {"target": "fortnox", "voucher_series": "A", "adjustment_ids": [adjustment_id]}
    return await asyncio.gather(
        *(
            client.post(f"/v1/closings/{closing_id}/exports", json=body, headers=headers)
            for _ in range(PARALLEL)
        )
    )


async def _results(
    client: httpx.AsyncClient, headers: dict[str, str], closing_id: str, started: list[httpx.Response]
) -> list[dict[str, Any]]:
    results = []
    for response in started:
        got = await client.get(f"/v1/closings/{closing_id}/exports/{response.json()['id']}", headers=headers)
        assert got.status_code == 200
        results.append(got.json())
    return results


def _assert_one_voucher(
    sandbox: SandboxFortnox, adjustment: dict[str, Any], started: list[httpx.Response], results: list[Any]
) -> None:
    assert [r.status_code for r in started] == [202] * PARALLEL, [
        r.text for r in started if r.status_code != 202
    ]
    assert len(in_fortnox(sandbox, adjustment)) == 1
    assert sandbox.counters.created_vouchers == 1
    vouchers = {str(r["items"][0]["fortnox_voucher"]) for r in results}
    assert len(vouchers) == 1
    assert all(r["status"] == "succeeded" for r in results), {r["status"] for r in results}
    assert all(r["items"][0]["status"] == "posted" for r in results)
    assert all(r["error"] is None for r in results)


@pytest.mark.sqlite
async def test_parallel_exports_of_one_adjustment_on_the_embedded_default_make_one_voucher(
    tmp_path: Path,
) -> None:
    async with embedded(tmp_path) as e:
        created = await create_closing(e.client, e.headers)
        started = await e.client.post(f"/v1/closings/{created['id']}/imports", headers=e.headers)
        assert started.status_code == 202, started.text
        await e.drain()
        adjustment = await adjust(e.client, e.headers, created)

        exports = await _parallel_exports(e.client, e.headers, created["id"], adjustment["id"])
        await e.drain()

        results = await _results(e.client, e.headers, created["id"], exports)
        _assert_one_voucher(e.sandbox, adjustment, exports, results)


async def test_parallel_exports_of_one_adjustment_on_postgresql_make_one_voucher(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    connected: None,
    run_jobs: RunJobs,
    sandbox: SandboxFortnox,
) -> None:
    created = await create_closing(client, auth_headers)
    assert (await import_from_fortnox(client, auth_headers, run_jobs, created["id"]))["status"] == "succeeded"
    adjustment = await adjust(client, auth_headers, created)

    exports = await _parallel_exports(client, auth_headers, created["id"], adjustment["id"])
    await run_jobs(max_jobs=PARALLEL)

    results = await _results(client, auth_headers, created["id"], exports)
    _assert_one_voucher(sandbox, adjustment, exports, results)
    assert uuid.UUID(results[0]["items"][0]["adjustment_id"]) == uuid.UUID(adjustment["id"])
