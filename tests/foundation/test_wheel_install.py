"""The way the image runs: the wheel installed (non-editable) into a fresh virtualenv outside the
repository, started from another directory, migrates a fresh PostgreSQL database and becomes ready."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN, REDIS_URL, _sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args[:3]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"ledgerlink_wheel_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _sqlalchemy_url(name)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def installed_wheel(tmp_path: Path) -> Path:
    """A virtualenv outside the repository with the built wheel and the locked runtime dependencies.
    Nothing is downloaded: the wheel is built with the project environment's hatchling (a dev
    dependency) and the dependencies come from the local uv cache. Returns the venv's ``bin``."""
    if UV is None:
        pytest.skip("uv is not on PATH")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    _run(
        [UV, "build", "--wheel", "--quiet", "--offline", "--no-build-isolation", "--out-dir", dist],
        cwd=ROOT,
        env=env,
    )
    # The locked runtime dependencies by their locked URLs (what the Dockerfile's `uv sync` does), then the
    # wheel alone: neither needs the package index, so the uv cache is enough offline.
    _run(
        [UV, "sync", "--frozen", "--no-dev", "--no-install-project", "--offline", "--quiet"],
        cwd=ROOT,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable},
    )
    (wheel,) = dist.glob("ledgerlink-*.whl")
    _run(
        [
            UV,
            "pip",
            "install",
            "--quiet",
            "--offline",
            "--no-deps",
            "--python",
            venv / "bin" / "python",
            wheel,
        ],
        cwd=tmp_path,
        env=env,
    )
    return venv / "bin"


def test_the_installed_wheel_migrates_and_serves_from_another_directory(
    installed_wheel: Path, fresh_database: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERLINK_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        LEDGERLINK_DATABASE_URL=fresh_database,
        LEDGERLINK_REDIS_URL=REDIS_URL,
        LEDGERLINK_QUEUE_NAME=f"ledgerlink-wheel:{uuid.uuid4().hex[:8]}",
    )
    python, ledgerlink = installed_wheel / "python", installed_wheel / "ledgerlink"

    where = _run([python, "-c", "import ledgerlink; print(ledgerlink.__file__)"], cwd=elsewhere, env=env)
    assert Path(where.strip()).is_relative_to(installed_wheel.parent), where
    assert not Path(where.strip()).is_relative_to(ROOT)
    assert _run([ledgerlink, "--version"], cwd=elsewhere, env=env).startswith("ledgerlink ")

    port = _free_port()
    api = subprocess.Popen(
        [str(ledgerlink), "api", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the installed API did not start")

        before = httpx.get(f"{base}/readyz", timeout=10)
        assert before.status_code == 503
        assert before.json()["schema"] == "outdated"

        _run([ledgerlink, "migrate"], cwd=elsewhere, env=env)

        after = httpx.get(f"{base}/readyz", timeout=10)
        assert after.status_code == 200, after.text
        assert after.json() == {"status": "ok", "database": "ok", "schema": "ok", "queue": "ok"}
    finally:
        api.send_signal(signal.SIGINT)
        api.wait(timeout=30)
