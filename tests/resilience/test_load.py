"""Load: concurrent clients on the main read endpoints (``/v1/transactions``, ``/v1/bank-accounts``,
``/v1/todos``, ``/v1/company``) against the real API under uvicorn on loopback (``ledgerlink api``
in a subprocess; the clients in another, :mod:`tests.resilience.load_client`) while the real arq worker
(a third) keeps syncing accounts from the sandbox bank. No 5xx, no connection errors, and every sync finishes (no deadlock). The latency p99 is reported
(stdout and a JSON file in the suite's output directory), not asserted.

The API runs as operators are told to run it, one process per core (``LEDGERLINK_LOAD_API_PROCESSES``
to change). Size: 40 clients for 15 s (CI); 200 clients for 60 s with ``LEDGERLINK_SOAK=full``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.models import BankAccount, SyncTrigger
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sync.errors import SyncInProgress
from ledgerlink.sync.service import schedule_sync
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.runner import ArqDispatcher
from ledgerlink.worker.settings import load_all_tasks
from tests.conftest import make_token
from tests.resilience.conftest import FULL, OUTPUT_DIR
from tests.resilience.load_client import PATHS
from tests.resilience.procs import ROOT, Proc, free_port, serve, service_env, start_api, start_worker
from tests.resilience.test_fault_soak import settle
from tests.sync.factories import make_account, make_company

pytestmark = pytest.mark.resilience

CLIENTS = 200 if FULL else 40
SECONDS = 60.0 if FULL else 15.0
COMPANIES = 10
#: The API as operators are told to run it: one process per core (``ledgerlink api --workers N``).
API_PROCESSES = int(os.environ.get("LEDGERLINK_LOAD_API_PROCESSES", os.cpu_count() or 1))
ACCOUNTS_PER_COMPANY = 4


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its live children (uvicorn's worker processes; Linux
    /proc, 0.0 elsewhere)."""
    pids = [pid]
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and fields[1] == str(pid):
            pids.append(int(entry.name))
    ticks = 0
    for each in pids:
        if (fields := _stat(each)) is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q + 0.5) - 1)] if ordered else float("nan")


async def wait_ready(url: str, proc: Proc, limit: float = 60.0) -> None:
    started = time.monotonic()
    async with httpx.AsyncClient() as c:
        while time.monotonic() - started < limit:
            assert proc.alive(), proc.log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError):
                if (await c.get(url + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError("the API did not become ready")


async def test_read_endpoints_under_load_while_the_worker_syncs(
    settings: Settings, sessionmaker: Any, arq_redis: Any, tmp_path: Path
) -> None:
    load_all_tasks()
    set_dispatcher(ArqDispatcher(arq_redis, queue_name=settings.queue_name))
    bank_app = create_sandbox_bank_app(slow_seconds=0.0, latency_seconds=0.02)
    bank = Starlette(routes=[Mount("/sandbox/bank", app=bank_app)])
    bank_port, api_port = free_port(), free_port()
    env = service_env(
        settings,
        LEDGERLINK_SANDBOX="true",
        LEDGERLINK_BANKS__SANDBOX__BASE_URL=f"http://127.0.0.1:{bank_port}/sandbox/bank",
        LEDGERLINK_PUBLIC_BASE_URL=f"http://127.0.0.1:{api_port}",
        LEDGERLINK_SYNC__PER_BANK_CONCURRENCY="100",
    )
    api_url = f"http://127.0.0.1:{api_port}"
    procs: list[Proc] = []
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    by_path: dict[str, list[float]] = {p: [] for p in PATHS}
    syncs_scheduled = 0
    try:
        async with serve(bank, bank_port):
            onboarding = httpx.ASGITransport(app=bank)
            tokens: list[str] = []
            accounts: list[BankAccount] = []
            for c in range(COMPANIES):
                company_id = uuid.uuid4()
                await make_company(sessionmaker, company_id)
                tokens.append(make_token(settings, company_id, "banking"))
                for a in range(ACCOUNTS_PER_COMPANY):
                    accounts.append(
                        await make_account(
                            sessionmaker,
                            settings,
                            onboarding,
                            company_id,
                            psu=f"load{c}x{a}",
                            sync_from=dt.date.today() - dt.timedelta(days=60),
                        )
                    )
            procs.append(start_api(env, tmp_path / "api.log", api_port, workers=API_PROCESSES))
            procs.append(start_worker(env, tmp_path / "worker.log"))
            await wait_ready(api_url, procs[0])

            stop = asyncio.Event()

            async def keep_syncing() -> None:
                """The worker is never idle: every account gets a new sync as soon as one finishes."""
                nonlocal syncs_scheduled
                while not stop.is_set():
                    for account in accounts:
                        try:
                            async with session_scope(sessionmaker) as s:
                                await schedule_sync(s, account, trigger=SyncTrigger.manual, user_present=True)
                            syncs_scheduled += 1
                        except SyncInProgress:
                            pass
                    await asyncio.sleep(0.5)

            # the clients run in a process of their own (see load_client): this loop serves the bank
            out = tmp_path / "load.json"
            cpu_before = {name: cpu_seconds(p.pid) for name, p in (("api", procs[0]), ("worker", procs[1]))}
            cpu_before["test"] = time.process_time()
            syncer = asyncio.create_task(keep_syncing())
            clients = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.resilience.load_client",
                api_url,
                str(out),
                "--clients",
                str(CLIENTS),
                "--seconds",
                str(SECONDS),
                cwd=ROOT,
                env={**os.environ, "LOAD_TOKENS": ",".join(tokens)},
            )
            try:
                assert await asyncio.wait_for(clients.wait(), SECONDS + 120) == 0, "the load clients failed"
            finally:
                if clients.returncode is None:
                    clients.kill()
                    await clients.wait()
                stop.set()
                await syncer
            cpu = {
                name: cpu_seconds(p.pid) - cpu_before[name]
                for name, p in (("api", procs[0]), ("worker", procs[1]))
            }
            cpu["test"] = time.process_time() - cpu_before["test"]
            measured = json.loads(out.read_text())
            outcomes.update(measured["outcomes"])
            for path, values in measured["latencies"].items():
                by_path[path].extend(values)
                latencies.extend(values)
            # no deadlock: every sync queued during the load finishes
            remaining = await settle(sessionmaker, stall_seconds=60.0, limit_seconds=180.0)
    finally:
        for p in procs:
            p.stop()

    latencies.sort()
    p99 = percentile(latencies, 0.99)
    report = {
        "size": "full" if FULL else "ci",
        "clients": CLIENTS,
        "api_processes": API_PROCESSES,
        "seconds": SECONDS,
        "requests": len(latencies),
        "rps": round(len(latencies) / SECONDS, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "statuses": dict(outcomes),
        "p99_ms_by_path": {p: round(percentile(v, 0.99) * 1000, 1) for p, v in by_path.items() if v},
        "syncs_scheduled_during_load": syncs_scheduled,
        # CPU seconds each process used during the load (the clients' own process not counted)
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "api_cpu_ms_per_request": round(cpu["api"] * 1000 / len(latencies), 2) if latencies else None,
    }
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / f"load-{report['size']}.json").write_text(json.dumps(report, indent=2))
    print("\nload:", json.dumps(report))
    assert latencies, "no request completed"
    assert set(outcomes) == {"200"}, outcomes
    assert syncs_scheduled >= len(accounts)
    assert remaining == 0, f"{remaining} syncs never finished"
    api_log = (tmp_path / "api.log").read_text(errors="replace")
    assert "http.unhandled_exception" not in api_log
