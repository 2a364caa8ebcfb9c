"""Nightly fleet: N linked sandbox accounts synced by the real worker against the sandbox bank served by
uvicorn with a fixed latency per call.

Setup (not timed): N connections with a real consent each (created at the bank, approved, completed,
stored encrypted, as ``tests/sync/factories.py`` does), one account each, last synced three days ago
(``booked_watermark``), due now. Scheduling: the real nightly fan-out
(:func:`ledgerlink.sync.service.cron.schedule_due_accounts`, which calls ``schedule_sync`` per account)
with ``per_bank_concurrency`` set so that one pass takes the whole fleet without deferral; the jobs go to
a Redis queue of our own. Then the real arq worker (``bench.fleet_worker``: ``build_worker_settings``,
burst mode) runs in its own processes until the queue is empty: two processes of ``max_jobs`` 10 each
(arq scales out on one Redis queue; ARCHITECTURE allows any number of workers), so the concurrency the
ideal divides by is still 20, as with the one process of ``max_jobs`` 20 the production default runs.

Figures: wall time from the first run's claim to the last run's end (from ``sync_run``), the ideal
``bank calls x latency / worker concurrency (the sum of max_jobs)`` with the calls counted by the bank server in
the same run, and the worker's CPU seconds per 1,000 fetched transactions and milliseconds per account
(goal: at most :data:`CPU_MS_PER_ACCOUNT_GOAL`).

Beside the ideal, the **sequential importer**: how Actual's bank sync and the Firefly III data importer
fetch, one account after another, each call waiting for the previous one. For the same accounts and
latency it takes at least ``bank calls x latency`` (its own CPU and the bank's work not counted, so this is
its floor); ``sequential_speedup`` is that time over our wall time.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from arq.connections import RedisSettings, create_pool
from sqlalchemy import func, select

from bench.common import (
    REDIS_URL,
    ROOT,
    bench_settings,
    free_port,
    log,
    scratch_database,
    serve,
    server_env,
    unique_queue,
)
from ledgerlink.banks.adapters.base import ConnectionContext
from ledgerlink.banks.service import ConnectionSecrets, build_adapter, save_secrets
from ledgerlink.config import BankEndpointSettings, Settings
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, Company, ConnectionStatus, Plan
from ledgerlink.models.bank import SyncRun, SyncStatus
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sandbox.bank_data import psu_slug
from ledgerlink.sync.service.cron import schedule_due_accounts
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.runner import ArqDispatcher
from ledgerlink.worker.settings import load_all_tasks

REDIRECT = "http://localhost:3000/callback"
LATENCY = 0.05
#: The goals: wall within 90 % of the ideal, and at most this much worker CPU per account.
IDEAL_RATIO_GOAL = 0.9
CPU_MS_PER_ACCOUNT_GOAL = 7.0


async def _link_account(
    settings: Settings, sm: Any, browser: httpx.AsyncClient, company_id: uuid.UUID, psu: str
) -> None:
    adapter = build_adapter(settings, "sandbox", None)
    ctx = ConnectionContext(account_type="business", psu_id=psu, psu_ip_address="127.0.0.1")
    try:
        start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state=uuid.uuid4().hex)
        assert start.url is not None
        answer = await browser.get(start.url, params={"approve": "1", "psu": psu})
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        credentials = await adapter.complete_authorization(
            ctx, start.credentials, code=code, redirect_uri=REDIRECT
        )
    finally:
        await adapter.aclose()
    external_id = f"ftg-{psu_slug(psu)}"
    today = dt.date.today()
    async with sm() as s:
        connection = BankConnection(
            id=uuid.uuid4(),
            company_id=company_id,
            bank_id="sandbox",
            account_type="business",
            status=ConnectionStatus.active,
            consent_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=89),
        )
        save_secrets(settings, connection, ConnectionSecrets(credentials=credentials, psu_id=psu))
        s.add(connection)
        await s.flush()
        s.add(
            BankAccount(
                id=uuid.uuid4(),
                company_id=company_id,
                connection_id=connection.id,
                bank_id="sandbox",
                external_id=external_id,
                identity_key=f"{external_id}:{uuid.uuid4().hex[:6]}",
                currency="SEK",
                name="Företagskonto",
                ledger_account="1930",
                sync_from=today - dt.timedelta(days=60),
                booked_watermark=today - dt.timedelta(days=3),
                next_sync_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
                status=AccountStatus.active,
            )
        )
        await s.commit()


async def run(accounts: int = 2000, workers: int = 2, max_jobs: int = 20) -> dict[str, Any]:
    """``workers`` arq worker processes on the one queue, ``max_jobs // workers`` jobs each: the
    concurrency the ideal divides by stays ``max_jobs`` (20) whatever the number of processes."""
    queue = unique_queue()
    bank_port = free_port()
    base_url = f"http://127.0.0.1:{bank_port}"
    async with scratch_database("fleet") as db:
        # Production refuses the development secrets: a JWT secret and an encryption key of this run,
        # the same in this process (which stores the consents) and the workers (which read them).
        jwt_secret, key = secrets.token_urlsafe(32), "bench:" + base64.b64encode(os.urandom(32)).decode()
        settings = bench_settings(
            db,
            queue,
            banks={"sandbox": BankEndpointSettings(base_url=base_url)},
            auth={"jwt_secret": jwt_secret},
            security={"encryption_keys": key},
        )
        settings.sync.per_bank_concurrency = accounts  # one pass schedules the whole fleet, no deferral
        engine = create_engine(db.url)
        sm = create_sessionmaker(engine)
        env = server_env(db, queue, BENCH_BANK_LATENCY=str(LATENCY))
        bank_args = [
            sys.executable, "-m", "uvicorn", "bench.bank_server:create_bench_bank", "--factory",
            "--host", "127.0.0.1", "--port", str(bank_port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        redis = await create_pool(RedisSettings.from_dsn(REDIS_URL))
        try:
            with serve(bank_args, env, bank_port):
                started = time.perf_counter()
                companies = [uuid.uuid4() for _ in range(max(1, accounts // 10))]
                async with sm() as s:
                    for cid in companies:
                        s.add(Company(id=cid, name=f"Bench {cid.hex[:6]} AB", plan=Plan.business))
                    await s.commit()
                gate = asyncio.Semaphore(64)
                browser = httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=64))

                async def link(i: int) -> None:
                    async with gate:
                        await _link_account(settings, sm, browser, companies[i % len(companies)], f"fleet{i}")

                try:
                    await asyncio.gather(*(link(i) for i in range(accounts)))
                finally:
                    await browser.aclose()
                log(f"fleet: {accounts} accounts linked in {time.perf_counter() - started:.1f}s")

                load_all_tasks()
                set_dispatcher(ArqDispatcher(redis, queue_name=queue))
                scheduled = await schedule_due_accounts(
                    ServiceEnv(settings=settings, sessionmaker=sm, redis=redis)
                )
                assert scheduled == accounts, scheduled
                async with httpx.AsyncClient(base_url=base_url) as bank:
                    (await bank.post("/bench/calls/reset")).raise_for_status()
                    worker_env = server_env(
                        db,
                        queue,
                        LEDGERLINK_SANDBOX="true",
                        LEDGERLINK_BANKS__SANDBOX__BASE_URL=base_url,
                        LEDGERLINK_LOG_LEVEL="WARNING",
                        LEDGERLINK_AUTH__JWT_SECRET=jwt_secret,
                        LEDGERLINK_SECURITY__ENCRYPTION_KEYS=key,
                    )
                    log(f"fleet: {scheduled} runs scheduled; {workers} worker process(es) starting")
                    worker_env["BENCH_MAX_JOBS"] = str(max_jobs // workers)

                    def one_worker() -> dict[str, Any]:
                        out = subprocess.run(
                            [sys.executable, "-m", "bench.fleet_worker"],
                            env=worker_env,
                            cwd=ROOT,
                            check=True,
                            capture_output=True,
                            text=True,
                        )
                        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
                        return result

                    processes = await asyncio.gather(*(asyncio.to_thread(one_worker) for _ in range(workers)))
                    worker: dict[str, Any] = {
                        "processes": processes,
                        "wall_s": max(p["wall_s"] for p in processes),
                        "cpu_s": round(sum(p["cpu_s"] for p in processes), 3),
                        "max_jobs": sum(p["max_jobs"] for p in processes),
                        "jobs_complete": sum(p["jobs_complete"] for p in processes),
                        "jobs_failed": sum(p["jobs_failed"] for p in processes),
                    }
                    calls = int((await bank.get("/bench/calls")).json()["calls"])
            async with sm() as s:
                by_status = dict(
                    (await s.execute(select(SyncRun.status, func.count()).group_by(SyncRun.status))).all()
                )
                first, last, fetched = (
                    await s.execute(
                        select(
                            func.min(SyncRun.started_at),
                            func.max(SyncRun.finished_at),
                            func.sum(SyncRun.fetched),
                        )
                    )
                ).one()
        finally:
            await redis.aclose()
            await engine.dispose()
    succeeded = by_status.get(SyncStatus.succeeded, 0)
    wall = (last - first).total_seconds() if first and last else 0.0
    concurrency = int(worker["max_jobs"])
    ideal = calls * LATENCY / concurrency
    fetched = int(fetched or 0)
    sequential = calls * LATENCY  # one account after another, one call at a time
    cpu_ms_per_account = round(worker["cpu_s"] * 1000 / accounts, 1)
    ratio = round(ideal / wall, 3) if wall else 0.0
    return {
        "accounts": accounts,
        "latency_s": LATENCY,
        "worker_concurrency": concurrency,
        "worker_processes": workers,
        "runs": {str(k.value if hasattr(k, "value") else k): v for k, v in by_status.items()},
        "succeeded": succeeded,
        "bank_calls": calls,
        "calls_per_account": round(calls / accounts, 2),
        "transactions_fetched": fetched,
        "wall_s": round(wall, 2),
        "worker_process_wall_s": worker["wall_s"],
        "ideal_s": round(ideal, 2),
        "ideal_to_wall_ratio": ratio,
        "ideal_ratio_goal": IDEAL_RATIO_GOAL,
        "ideal_ratio_met": succeeded == accounts and wall > 0 and ratio >= IDEAL_RATIO_GOAL,
        "sequential_importer_s": round(sequential, 2),
        "sequential_speedup": round(sequential / wall, 1) if wall else 0.0,
        "worker_cpu_s": worker["cpu_s"],
        "worker_cpu_s_per_1000_tx": round(worker["cpu_s"] / (fetched / 1000), 3) if fetched else None,
        "worker_cpu_ms_per_account": cpu_ms_per_account,
        "cpu_ms_per_account_goal": CPU_MS_PER_ACCOUNT_GOAL,
        "cpu_ms_per_account_met": cpu_ms_per_account <= CPU_MS_PER_ACCOUNT_GOAL,
        "worker": worker,
        "goal": f"ideal / wall >= {IDEAL_RATIO_GOAL} and worker CPU <= {CPU_MS_PER_ACCOUNT_GOAL} ms / account",
        "met": succeeded == accounts
        and wall > 0
        and ratio >= IDEAL_RATIO_GOAL
        and cpu_ms_per_account <= CPU_MS_PER_ACCOUNT_GOAL,
    }
