"""API: ``GET /v1/transactions`` (a page of 100 filtered by account and status) on a table of 1,000,000
transactions, served by uvicorn on loopback in its own process, under load from another process
(``wrk`` when installed, else :mod:`bench.loadgen`) at 32 and 128 connections; the limit is
``GET /bench/bare`` on the same server, returning the same page's JSON from memory.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import (
    ROOT,
    free_port,
    log,
    median,
    process_cpu_seconds,
    ratio,
    scratch_database,
    serve,
    server_env,
    unique_queue,
)
from ledgerlink.auth.tokens import issue_dev_token
from ledgerlink.config import AuthSettings, Settings
from ledgerlink.inbox.repository import WRITE_COLUMNS

ACCOUNTS = 20
STATUSES = ("unbooked",) * 14 + ("booked",) * 5 + ("ignored",)  # 70 / 25 / 5 %


async def _fill(dsn: str, rows: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """One business company with ``ACCOUNTS`` accounts sharing ``rows`` transactions, by COPY."""
    company_id = uuid.uuid4()
    accounts = [uuid.uuid4() for _ in range(ACCOUNTS)]
    conn = await asyncpg.connect(dsn)
    try:
        now = dt.datetime.now(dt.UTC)
        await conn.execute(
            "INSERT INTO company (id, name, plan, created_at, modified_at) VALUES ($1, 'Bench AB', 'business', $2, $2)",
            company_id,
            now,
        )
        connection_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO bank_connection (id, company_id, bank_id, account_type, status, created_at, modified_at) "
            "VALUES ($1, $2, 'sandbox', 'business', 'active', $3, $3)",
            connection_id,
            company_id,
            now,
        )
        for i, account_id in enumerate(accounts):
            await conn.execute(
                "INSERT INTO bank_account (id, company_id, connection_id, bank_id, external_id, identity_key, "
                "currency, sync_from, status, created_at, modified_at) "
                "VALUES ($1, $2, $3, 'sandbox', $4, $4, 'SEK', '2020-01-01', 'active', $5, $5)",
                account_id,
                company_id,
                connection_id,
                f"acc-{i}",
                now,
            )
        rng = random.Random(9)
        start = dt.date(2021, 1, 1)
        chunk = 100_000
        for base in range(0, rows, chunk):
            records = []
            for i in range(base, min(rows, base + chunk)):
                day = start + dt.timedelta(days=(i // ACCOUNTS) // 200)
                records.append(
                    (
                        uuid.uuid4(),
                        company_id,
                        accounts[i % ACCOUNTS],
                        f"T{i:012d}",
                        f"T{i:012d}",
                        "booked",
                        day,
                        day,
                        Decimal(rng.randint(-500000, 500000)) / 100,
                        "SEK",
                        "ICA Supermarket Hornstull",
                        f"Kortköp {i}",
                        f"{i:010d}",
                        STATUSES[rng.randrange(len(STATUSES))],
                        None,
                        now,
                        now,
                    )
                )
            await conn.copy_records_to_table("bank_transaction", records=records, columns=WRITE_COLUMNS)
        await conn.execute("VACUUM ANALYZE bank_transaction")
    finally:
        await conn.close()
    return company_id, accounts


def _load(port: int, path: str, headers: list[str], connections: int, duration: float) -> dict[str, Any]:
    """One load run from a separate process: wrk when installed, else bench.loadgen."""
    wrk = shutil.which("wrk")
    if wrk:
        return _wrk(wrk, port, path, headers, connections, duration)
    args = [sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path", path]
    for h in headers:
        args += ["--header", h]
    args += ["--connections", str(connections), "--duration", str(duration), "--warmup", "1"]
    out = subprocess.run(args, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    result: dict[str, Any] = json.loads(out)
    result["tool"] = "bench.loadgen"
    result["warmup_s"] = 1.0
    return result


_WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"non2xx\\": %d, \\"errors\\": %d, \\"p50_us\\": %d, \\"p99_us\\": %d, \\"duration_us\\": %d}\\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def _wrk(
    wrk: str, port: int, path: str, headers: list[str], connections: int, duration: float
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_LUA)
    # wrk counts a response slower than its timeout (default 2 s) as a socket error; at 128
    # connections the real route's tail passes 2 s, so the timeout is raised to measure it as latency
    # (as bench.loadgen does, which has none).
    args = [wrk, "-t", "1", "-c", str(connections), "-d", f"{int(duration)}s", "--timeout", "30s"]
    args += ["-s", script.name]
    for h in headers:
        args += ["-H", h]
    args.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    raw = json.loads(line[5:])
    seconds = raw["duration_us"] / 1e6
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "non2xx": raw["non2xx"],
        "errors": raw["errors"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


async def run(
    rows: int = 1_000_000,
    repetitions: int = 3,
    duration: float = 5.0,
    connection_counts: tuple[int, ...] = (32, 128),
    server_extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    queue = unique_queue()
    async with scratch_database("api") as db:
        started = time.perf_counter()
        company_id, accounts = await _fill(db.dsn, rows)
        log(f"api: {rows} rows copied in {time.perf_counter() - started:.1f}s")
        settings = Settings(_env_file=None, auth=AuthSettings())  # the dev secret
        token = issue_dev_token(settings, company_id=company_id, scopes="banking")
        headers = [f"Authorization: Bearer {token}"]
        real_path = f"/v1/transactions?bank_account_id={accounts[3]}&status=unbooked&limit=100"
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            bare_file = Path(tmp) / "page.json"
            env = server_env(db, queue, BENCH_BARE_FILE=str(bare_file), **(server_extra_env or {}))
            args = [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.api_server:create_bench_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
                "--proxy-headers",
            ]
            with serve(args, env, port) as server:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    page = await client.get(real_path, headers={"Authorization": f"Bearer {token}"})
                    page.raise_for_status()
                    body = page.json()
                    assert len(body["items"]) == 100, body
                    bare_file.write_bytes(page.content)
                    bare = await client.get("/bench/bare")
                    assert bare.content == page.content
                runs: dict[str, dict[int, list[dict[str, Any]]]] = {"real": {}, "bare": {}}
                for rep in range(repetitions):
                    for connections in connection_counts:
                        for name, path in (("real", real_path), ("bare", "/bench/bare")):
                            cpu = process_cpu_seconds(server.pid)
                            result = await asyncio.to_thread(
                                _load, port, path, headers, connections, duration
                            )
                            cpu = process_cpu_seconds(server.pid) - cpu
                            warmup = float(result.get("warmup_s", 0.0))  # loadgen warms up 1 s, wrk not
                            served = result["requests"] * (1 + warmup / duration)
                            result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, served), 3)
                            result["server_cpu_share"] = round(cpu / (duration + warmup), 2)
                            assert result["non2xx"] == 0 and result["errors"] == 0, result
                            runs[name].setdefault(connections, []).append(result)
                            log(
                                f"api rep {rep + 1} {name} c={connections}: {result['requests_per_s']} req/s, "
                                f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, server CPU "
                                f"{result['server_cpu_ms_per_request']} ms/request ({result['server_cpu_share']} core)"
                            )
    summary: dict[str, Any] = {
        "rows": rows,
        "page": "limit=100, bank_account_id=<one of 20>, status=unbooked",
        "repetitions": repetitions,
        "duration_s": duration,
        "tool": runs["real"][connection_counts[0]][0]["tool"],
        "runs": runs,
    }
    met = True
    for connections in connection_counts:
        row: dict[str, Any] = {}
        for name in ("real", "bare"):
            results = runs[name][connections]
            row[f"{name}_rps"] = round(median([r["requests_per_s"] for r in results]), 1)
            row[f"{name}_p50_ms"] = round(median([r["p50_ms"] for r in results]), 2)
            row[f"{name}_p99_ms"] = round(median([r["p99_ms"] for r in results]), 2)
            row[f"{name}_server_cpu_ms"] = median([r["server_cpu_ms_per_request"] for r in results])
        row["ratio"] = ratio(row["real_rps"], row["bare_rps"])
        summary[f"c{connections}"] = row
        if connections == 32:
            met = row["ratio"] >= 0.7 and row["real_p99_ms"] < 50
    summary["goal"] = "real req/s >= 0.7 x bare, p99 < 50 ms at 32 connections"
    summary["met"] = met
    return summary
