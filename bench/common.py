"""Shared plumbing of the benchmarks: a scratch PostgreSQL database, settings, medians, free ports,
subprocesses and the machine description."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from ledgerlink.config import AuthSettings, SecuritySettings, Settings
from ledgerlink.db.migrate import upgrade

PG_ADMIN_DSN = os.environ.get("LEDGERLINK_TEST_PG_DSN", "postgresql://postgres@localhost:5432/postgres")
REDIS_URL = os.environ.get("LEDGERLINK_TEST_REDIS_URL", "redis://localhost:6379/0")
ROOT = Path(__file__).resolve().parent.parent


def log(message: str) -> None:
    """Progress on stderr (the figures go to stdout)."""
    sys.stderr.write(f"[bench {dt.datetime.now():%H:%M:%S}] {message}\n")
    sys.stderr.flush()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(value: float, limit: float) -> float:
    return round(value / limit, 3) if limit else 0.0


@dataclass(frozen=True)
class ScratchDb:
    name: str
    url: str  # SQLAlchemy (postgresql+asyncpg://)
    dsn: str  # asyncpg (postgresql://)


@contextlib.asynccontextmanager
async def scratch_database(label: str) -> AsyncIterator[ScratchDb]:
    """A fresh database migrated to head with ``ledgerlink.db.migrate.upgrade``; dropped afterwards."""
    name = f"ledgerlink_bench_{label}_{uuid.uuid4().hex[:6]}"
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await asyncio.to_thread(upgrade, "head", url)
            yield ScratchDb(name, url, dsn)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def unique_queue() -> str:
    return f"ledgerlink-bench:{uuid.uuid4().hex[:8]}"


#: Production refuses the development secrets: a bench run has a JWT secret and an encryption key of its
#: own, the same for this process (:func:`bench_settings`) and the servers it starts (:func:`server_env`).
RUN_JWT_SECRET = secrets.token_urlsafe(32)
RUN_ENCRYPTION_KEYS = f"bench:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def bench_settings(db: ScratchDb, queue_name: str, **overrides: Any) -> Settings:
    """Settings for the scratch database and a queue of our own (no .env, no LEDGERLINK_* leaking in
    from the Makefile's SQLite default: every field that matters is given)."""
    values: dict[str, Any] = {
        "_env_file": None,
        "env": "production",
        "auth": AuthSettings(jwt_secret=RUN_JWT_SECRET),
        "security": SecuritySettings(encryption_keys=RUN_ENCRYPTION_KEYS),
        "database_url": db.url,
        "redis_url": REDIS_URL,
        "queue_name": queue_name,
        "sandbox": True,
        "log_level": "WARNING",
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)


def server_env(db: ScratchDb, queue_name: str, **extra: str) -> dict[str, str]:
    """Environment for a server subprocess pointing at the scratch database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env.update(
        {
            "LEDGERLINK_ENV": "production",
            "LEDGERLINK_DATABASE_URL": db.url,
            "LEDGERLINK_REDIS_URL": REDIS_URL,
            "LEDGERLINK_QUEUE_NAME": queue_name,
            "LEDGERLINK_LOG_LEVEL": "WARNING",
            "LEDGERLINK_AUTH__JWT_SECRET": RUN_JWT_SECRET,
            "LEDGERLINK_SECURITY__ENCRYPTION_KEYS": RUN_ENCRYPTION_KEYS,
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


@contextlib.contextmanager
def serve(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server subprocess until the block ends (terminated by its own pid)."""
    process = subprocess.Popen(args, env=env, cwd=ROOT)
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


async def server_versions() -> dict[str, str]:
    from redis.asyncio import Redis

    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        pg = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    redis = Redis.from_url(REDIS_URL)
    try:
        info = await redis.info("server")
        rv = str(info.get("redis_version", "?"))
    finally:
        await redis.aclose()
    return {"postgresql": pg.split()[0], "redis": rv}
