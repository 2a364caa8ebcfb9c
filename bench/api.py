"""API: ``GET /v1/transactions`` (a page of 100 filtered by account and status) on a table of 1,000,000
transactions, served by uvicorn on loopback in its own process, under load from another process
(``wrk`` when installed, else :mod:`bench.loadgen`) at 32 and 128 connections. The limit is
:mod:`bench.api_limit` (Starlette + asyncpg + orjson running the same SQL for the same page and
answering the same bytes), run as its own server interleaved with the real one: with one process
each, then (32 connections) with one process per core each, as operators run the API.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import random
import secrets
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


def _uvicorn(app: str, port: int, workers: int) -> list[str]:
    args = [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    return args


def _real_server(port: int, workers: int) -> list[str]:
    """The API as operators run it: ``ledgerlink api`` (one process, or ``--workers N``: one per core)."""
    args = [sys.executable, "-m", "ledgerlink.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    if workers == 1:  # the bench server: the same app, plus BENCH_PROFILE for profiling
        return _uvicorn("bench.api_server:create_bench_app", port, 1)
    return [*args, "--workers", str(workers)]


async def _same_bytes(real: int, limit: int, paths: list[str], token: str) -> None:
    """The limit route answers byte-for-byte what the real one does (first page, then the next)."""
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient() as client:
        for path in paths:
            page = await client.get(f"http://127.0.0.1:{real}{path}", headers=auth)
            page.raise_for_status()
            assert len(page.json()["items"]) > 0, page.text
            other = await client.get(f"http://127.0.0.1:{limit}{path}")
            assert other.content == page.content, (path, page.content[:300], other.content[:300])


async def _interleaved(
    servers: dict[str, tuple[int, list[int]]],
    paths: dict[str, str],
    headers: list[str],
    connection_counts: tuple[int, ...],
    repetitions: int,
    duration: float,
    label: str,
) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Real and limit runs one after the other, per repetition and connection count; ``servers`` maps
    a name to (port, pids of its processes)."""
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {name: {} for name in servers}
    for rep in range(repetitions):
        for connections in connection_counts:
            for name, (port, pids) in servers.items():
                cpu = sum(process_cpu_seconds(p) for p in pids)
                result = await asyncio.to_thread(_load, port, paths[name], headers, connections, duration)
                cpu = sum(process_cpu_seconds(p) for p in pids) - cpu
                warmup = float(result.get("warmup_s", 0.0))  # loadgen warms up 1 s, wrk not
                served = result["requests"] * (1 + warmup / duration)
                result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, served), 3)
                result["server_cpu_share"] = round(cpu / (duration + warmup), 2)
                assert result["non2xx"] == 0 and result["errors"] == 0, result
                runs[name].setdefault(connections, []).append(result)
                log(
                    f"api {label} rep {rep + 1} {name} c={connections}: {result['requests_per_s']} req/s, "
                    f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, server CPU "
                    f"{result['server_cpu_ms_per_request']} ms/request ({result['server_cpu_share']} core)"
                )
    return runs


def _tree(pid: int) -> list[int]:
    """``pid`` and its child processes (uvicorn's workers), from ``/proc``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _summary_row(runs: dict[str, dict[int, list[dict[str, Any]]]], connections: int) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in ("real", "limit"):
        results = runs[name][connections]
        row[f"{name}_rps"] = round(median([r["requests_per_s"] for r in results]), 1)
        row[f"{name}_p50_ms"] = round(median([r["p50_ms"] for r in results]), 2)
        row[f"{name}_p99_ms"] = round(median([r["p99_ms"] for r in results]), 2)
        row[f"{name}_server_cpu_ms"] = median([r["server_cpu_ms_per_request"] for r in results])
    row["ratio"] = ratio(row["real_rps"], row["limit_rps"])  # throughput, goal >= 0.7
    row["cpu_ratio"] = ratio(row["limit_server_cpu_ms"], row["real_server_cpu_ms"])  # goal >= 0.7
    row["p99_ratio"] = ratio(row["real_p99_ms"], row["limit_p99_ms"])
    return row


async def run(
    rows: int = 1_000_000,
    repetitions: int = 3,
    duration: float = 5.0,
    connection_counts: tuple[int, ...] = (32, 128),
    server_extra_env: dict[str, str] | None = None,
    per_core: bool = True,
) -> dict[str, Any]:
    queue = unique_queue()
    cores = os.cpu_count() or 1
    async with scratch_database("api") as db:
        started = time.perf_counter()
        company_id, accounts = await _fill(db.dsn, rows)
        log(f"api: {rows} rows copied in {time.perf_counter() - started:.1f}s")
        # Production refuses the development secrets: the servers get a secret and a key of this run.
        secret = secrets.token_urlsafe(32)
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        run_secrets = {
            "LEDGERLINK_AUTH__JWT_SECRET": secret,
            "LEDGERLINK_SECURITY__ENCRYPTION_KEYS": f"bench:{key}",
        }
        settings = Settings(_env_file=None, auth=AuthSettings(jwt_secret=secret))
        token = issue_dev_token(settings, company_id=company_id, scopes="banking")
        headers = [f"Authorization: Bearer {token}"]
        path = f"/v1/transactions?bank_account_id={accounts[3]}&status=unbooked&limit=100"
        paths = {"real": path, "limit": path}
        env = server_env(
            db,
            queue,
            BENCH_DSN=db.dsn,
            BENCH_COMPANY_ID=str(company_id),
            **run_secrets,
            **(server_extra_env or {}),
        )
        layouts = [("one process", 1, connection_counts)]
        if per_core and cores > 1:
            layouts.append(("one process per core", cores, (32,)))
        all_runs: dict[str, Any] = {}
        for label, workers, counts in layouts:
            real_port, limit_port = free_port(), free_port()
            with (
                serve(_real_server(real_port, workers), env, real_port) as real,
                serve(
                    _uvicorn("bench.api_limit:create_limit_app", limit_port, workers), env, limit_port
                ) as limit,
            ):
                cursor_path = await _second_page(real_port, path, token)
                await _same_bytes(real_port, limit_port, [path, cursor_path], token)
                if workers > 1:
                    await _warm(real_port, limit_port, path, token, workers)
                servers = {"real": (real_port, _tree(real.pid)), "limit": (limit_port, _tree(limit.pid))}
                all_runs[label] = await _interleaved(
                    servers, paths, headers, counts, repetitions, duration, label
                )
    one = all_runs["one process"]
    summary: dict[str, Any] = {
        "rows": rows,
        "page": "limit=100, bank_account_id=<one of 20>, status=unbooked",
        "repetitions": repetitions,
        "duration_s": duration,
        "tool": one["real"][connection_counts[0]][0]["tool"],
        "limit_route": "Starlette + asyncpg pool (16) + orjson, the repositories' SQL, same JSON bytes",
        "runs": all_runs,
    }
    for connections in connection_counts:
        summary[f"c{connections}"] = _summary_row(one, connections)
    c32 = summary["c32"] if 32 in connection_counts else None
    met = bool(c32 and c32["ratio"] >= 0.7 and c32["cpu_ratio"] >= 0.7)
    if "one process per core" in all_runs:
        per = _summary_row(all_runs["one process per core"], 32)
        per["processes"] = cores
        summary["c32_per_core"] = per
        met = met and per["p99_ratio"] <= 1.5
    summary["goal"] = (
        "one process, 32 connections: real req/s >= 0.7 x limit and limit CPU/req >= 0.7 x real; "
        "one process per core (both), 32 connections: real p99 <= 1.5 x limit p99"
    )
    summary["met"] = met
    return summary


async def _second_page(port: int, path: str, token: str) -> str:
    async with httpx.AsyncClient() as client:
        page = await client.get(
            f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        page.raise_for_status()
        cursor = page.json()["next_cursor"]
        assert cursor, "the bench page has a next page"
        return f"{path}&cursor={cursor}"


async def _warm(real: int, limit: int, path: str, token: str, workers: int) -> None:
    """A few requests on many connections, so every worker process has served before timing."""
    auth = {"Authorization": f"Bearer {token}"}
    for port, headers in ((real, auth), (limit, {})):
        clients = [httpx.AsyncClient() for _ in range(workers * 4)]
        try:
            for _ in range(3):
                await asyncio.gather(
                    *(c.get(f"http://127.0.0.1:{port}{path}", headers=headers) for c in clients)
                )
        finally:
            for c in clients:
                await c.aclose()
