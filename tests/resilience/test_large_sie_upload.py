"""A 100 MB SIE upload to the server ``make run`` starts (SQLite, the import in the API process): its memory
stays within a budget while ``/healthz`` keeps answering, through the upload and the whole import.

What is bounded is the server's peak resident memory (``VmHWM``) above its idle size; and every ``/healthz``
probe made while the work ran must pass the container health check's own test (an answer within its 2 s
timeout, ``docker-compose.yml``), so an orchestrator never sees the service unhealthy during an import. That
is the behaviour asserted, not a speed: the longest answer is printed, never compared. The budget holds because of the SIE limits (settings ``LEDGERLINK_LIMITS__SIE_*``): the upload
is streamed to a temporary file and stored in parts, and the import holds one small batch of vouchers.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.resilience.procs import ROOT, free_port

pytestmark = pytest.mark.sqlite

FILE_BYTES = 100 * 1_048_576
MEMORY_BUDGET = 200 * 1_048_576  # over the idle server: parts, batches, the chart; not the file
HEALTH_CHECK_TIMEOUT = 2.0  # seconds: docker-compose.yml's api health check (urlopen(..., timeout=2))
ROWS_PER_VOUCHER = 4


def _write_file(path: Path) -> int:
    """A valid SIE 4 file of about 100 MB: vouchers of a few rows with long row texts."""
    vouchers = 0
    text = "Leverantörsfaktura med lång text " * 6
    with path.open("wb") as out:
        out.write(
            "#FLAGGA 0\r\n#FORMAT PC8\r\n#SIETYP 4\r\n#RAR 0 20250101 20251231\r\n"
            '#KONTO 1930 "Bank"\r\n#KONTO 4010 "Inköp"\r\n#KONTO 2440 "Leverantörsskulder"\r\n'.encode(
                "cp437"
            )
        )
        while out.tell() < FILE_BYTES:
            block = []
            for _ in range(1000):
                vouchers += 1
                block.append(
                    f'#VER B {vouchers} 2025{1 + vouchers % 12:02d}14 "Faktura {vouchers}"\r\n{{\r\n'
                )
                for n in range(ROWS_PER_VOUCHER - 1):
                    block.append(f'#TRANS 4010 {{}} {n + 1}.25 20250114 "{text}{n}"\r\n')
                total = sum(n + 1.25 for n in range(ROWS_PER_VOUCHER - 1))
                block.append(f"#TRANS 2440 {{}} -{total:.2f}\r\n}}\r\n")
            out.write("".join(block).encode("cp437"))
    return vouchers


def _rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


async def _watch_healthz(base: str, stop: asyncio.Event, took: list[float]) -> None:
    """Probe like the container health check: a probe that times out is a failed health check."""
    async with httpx.AsyncClient(base_url=base, timeout=HEALTH_CHECK_TIMEOUT) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = await client.get("/healthz")
            except httpx.TimeoutException as exc:
                raise AssertionError(
                    f"/healthz failed the health check (no answer within {HEALTH_CHECK_TIMEOUT} s)"
                ) from exc
            took.append(time.monotonic() - started)
            assert response.status_code == 200
            await asyncio.sleep(0.05)


async def _keep_writing(client: httpx.AsyncClient, stop: asyncio.Event, created: list[int]) -> None:
    """Other requests write while the import runs (SQLite: it must not hold the database meanwhile)."""
    while not stop.is_set():
        response = await client.post(
            "/v1/closings",
            json={
                "financial_year_start": "2024-01-01",
                "financial_year_end": "2024-12-31",
                "data_source": "sie",
            },
        )
        created.append(response.status_code)
        await asyncio.sleep(2)


async def test_a_100_mb_upload_keeps_memory_within_budget_and_healthz_answering(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    port = free_port()
    env.update(
        LEDGERLINK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db",
        LEDGERLINK_SANDBOX="true",
        LEDGERLINK_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        LEDGERLINK_LOG_LEVEL="WARNING",
    )
    cli = [sys.executable, "-m", "ledgerlink.cli"]
    for command in (["migrate"], ["seed-dev"]):
        proc = await asyncio.create_subprocess_exec(*cli, *command, env=env, cwd=ROOT)
        assert await proc.wait() == 0
    token_proc = await asyncio.create_subprocess_exec(
        *cli, "dev-token", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    token = (await token_proc.communicate())[0].decode().strip()
    path = tmp_path / "big.se"
    vouchers = await asyncio.to_thread(_write_file, path)
    assert path.stat().st_size >= FILE_BYTES

    log = (tmp_path / "server.log").open("wb")
    server = await asyncio.create_subprocess_exec(
        *cli, "api", "--port", str(port), env=env, cwd=ROOT, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            closing = (
                await client.post(
                    "/v1/closings",
                    json={
                        "financial_year_start": "2025-01-01",
                        "financial_year_end": "2025-12-31",
                        "data_source": "sie",
                    },
                )
            ).json()
            idle = _rss(server.pid, "VmRSS")
            stop = asyncio.Event()
            took: list[float] = []
            writes: list[int] = []
            watcher = asyncio.create_task(_watch_healthz(base, stop, took))
            writer = asyncio.create_task(_keep_writing(client, stop, writes))
            try:
                with path.open("rb") as upload:
                    started = await client.post(
                        f"/v1/closings/{closing['id']}/imports/sie",
                        files={"file": ("big.se", upload, "application/octet-stream")},
                    )
                assert started.status_code == 202, started.text
                job_url = f"/v1/closings/{closing['id']}/imports/{started.json()['id']}"
                deadline = time.monotonic() + 900
                while True:
                    job = (await client.get(job_url)).json()
                    if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(1)
            finally:
                stop.set()
                await watcher
                await writer
            peak = _rss(server.pid, "VmHWM")
    finally:
        server.kill()
        await server.wait()
        log.close()

    sys.stdout.write(
        f"\n100 MB SIE: peak {peak >> 20} MB (idle {idle >> 20} MB), /healthz max {max(took) * 1000:.0f} ms "
        f"over {len(took)} probes\n"
    )
    assert job["status"] == "succeeded", job
    assert job["counts"]["vouchers"] == vouchers
    assert job["counts"]["transactions"] == vouchers * ROWS_PER_VOUCHER
    assert len(writes) > 5
    server_errors = [line for line in (tmp_path / "server.log").read_text().splitlines() if "rror" in line]
    assert set(writes) == {201}, (writes, server_errors[-20:])  # writes wait for the import's, never fail
    assert peak - idle < MEMORY_BUDGET, f"peak {peak >> 20} MB, idle {idle >> 20} MB"
    assert len(took) > 20  # the probes ran throughout (each passed the health check, see _watch_healthz)
