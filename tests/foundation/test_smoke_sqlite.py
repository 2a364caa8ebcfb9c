"""The embedded default (what `make run` starts): SQLite, in-process jobs, the sandbox mounted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.sqlite
def test_make_run_way_serves_healthz_docs_and_company_with_dev_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env.update(
        LEDGERLINK_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db", LEDGERLINK_SANDBOX="true"
    )
    port = _free_port()
    env["LEDGERLINK_PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", "migrate"], env=env, check=True, cwd=ROOT, timeout=120
    )
    subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", "seed-dev"], env=env, check=True, cwd=ROOT, timeout=60
    )
    token = subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", "dev-token"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    server = subprocess.Popen(
        [sys.executable, "-m", "ledgerlink.cli", "api", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the API did not start")
        assert httpx.get(f"{base}/docs").status_code == 200
        company = httpx.get(f"{base}/v1/company", headers={"Authorization": f"Bearer {token}"})
        assert company.status_code == 200, company.text
        assert company.json()["entitlements"]["automatic_bank_import"]["enabled"] is True
        assert httpx.get(f"{base}/readyz").json()["queue"] == "in-process"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
