"""Fortnox import: the real closing import job (``closing.import``, run by a real arq worker in burst
mode) against the sandbox Fortnox with its 25 requests / 5 s limit enforced, for a company of 1,000
and one of N vouchers: Fortnox calls (the sandbox's own counters), 429 answers, wall time.

The app and the sandbox are served in-process over ``httpx.ASGITransport`` (the limit here is
Fortnox's request budget, not the network): connect Fortnox through the API (authorize, approve at the
sandbox, callback), create the closing, ``POST /v1/closings/{id}/imports``, run the worker.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from arq import Worker
from arq.connections import RedisSettings, create_pool

from bench.common import REDIS_URL, bench_settings, log, scratch_database, unique_queue
from ledgerlink.auth.tokens import issue_dev_token
from ledgerlink.main import create_app
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.worker.settings import build_worker_settings

REDIRECT = "https://app.example.test/callback"
SANDBOX_ROOT = "/sandbox/fortnox"


async def _import(vouchers: int) -> dict[str, Any]:
    queue = unique_queue()
    started = time.perf_counter()
    company = SandboxCompany.generate(seed=9, vouchers=vouchers, year=2025)
    generated = time.perf_counter() - started
    sandbox_app = create_sandbox_fortnox_app(company=company, enforce_rate_limit=True)
    sandbox: SandboxFortnox = sandbox_app.state.fortnox
    transport = httpx.ASGITransport(app=sandbox_app, root_path=SANDBOX_ROOT)
    transports: dict[str, Any] = {"fortnox": transport}
    async with scratch_database("fortnox") as db:
        settings = bench_settings(db, queue, allowed_redirect_uris=[REDIRECT])
        app = create_app(settings, transports=transports, start_cron=False)
        company_id = uuid.uuid4()
        headers = {
            "Authorization": f"Bearer {issue_dev_token(settings, company_id=company_id, scopes='banking closing')}"
        }
        redis = await create_pool(RedisSettings.from_dsn(REDIS_URL))
        try:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client,
            ):
                begun = await client.post(
                    "/v1/fortnox/authorization", json={"redirect_uri": REDIRECT}, headers=headers
                )
                begun.raise_for_status()
                async with httpx.AsyncClient(transport=transport) as browser:
                    redirect = await browser.get(begun.json()["authorization_url"] + "&approve=1")
                query = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
                done = await client.post(
                    "/v1/fortnox/authorization/callback",
                    json={"code": query["code"], "state": query["state"]},
                    headers=headers,
                )
                done.raise_for_status()
                closing = await client.post(
                    "/v1/closings",
                    json={
                        "financial_year_start": "2025-01-01",
                        "financial_year_end": "2025-12-31",
                        "data_source": "fortnox",
                    },
                    headers=headers,
                )
                closing.raise_for_status()
                closing_id = closing.json()["id"]
                calls_before = sandbox.counters.api_requests
                limited_before = sandbox.counters.rate_limited
                started = time.perf_counter()
                posted = await client.post(f"/v1/closings/{closing_id}/imports", headers=headers)
                assert posted.status_code == 202, posted.text
                kwargs = build_worker_settings(settings, transports=transports, configure_logs=False)
                kwargs.pop("redis_settings")
                kwargs.update(burst=True, poll_delay=0.0, handle_signals=False)
                worker = Worker(redis_pool=redis, **kwargs)
                try:
                    await worker.main()
                finally:
                    await worker.close()
                wall = time.perf_counter() - started
                job = (
                    await client.get(
                        f"/v1/closings/{closing_id}/imports/{posted.json()['id']}", headers=headers
                    )
                ).json()
        finally:
            keys = await redis.keys(f"{queue}*")
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    assert job["status"] == "succeeded", job
    return {
        "vouchers_generated": len(company.vouchers),
        "vouchers_imported": job["counts"]["vouchers"],
        "calls": sandbox.counters.api_requests - calls_before,
        "rate_limited_429": sandbox.counters.rate_limited - limited_before,
        "wall_s": round(wall, 2),
        "sandbox_generation_s": round(generated, 2),
        "calls_by_path": dict(sandbox.counters.by_path),
    }


async def run(small: int = 1_000, large: int = 100_000) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in (small, large):
        results[str(n)] = await _import(n)
        r = results[str(n)]
        log(f"fortnox {n} vouchers: {r['calls']} calls, {r['rate_limited_429']} x 429, {r['wall_s']} s")
    s, big = results[str(small)], results[str(large)]
    results["calls_ratio_large_to_small"] = round(big["calls"] / s["calls"], 3) if s["calls"] else None
    results["goal"] = "calls do not grow with the vouchers; zero 429"
    results["met"] = (
        big["calls"] <= s["calls"] and s["rate_limited_429"] == 0 and big["rate_limited_429"] == 0
    )
    return results
