"""Processes for the soak and load tests: ASGI apps under uvicorn on loopback (in the test's event loop),
and the real arq worker / API as subprocesses with their output captured to files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn

from ledgerlink.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[uvicorn.Server]:
    """Serve ``app`` on 127.0.0.1:``port`` inside the running event loop."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for ``ledgerlink worker``/``api`` pointing at the test database, Redis and queue."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERLINK_")}
    env.update(
        LEDGERLINK_ENV="testing",
        LEDGERLINK_DATABASE_URL=settings.database_url,
        LEDGERLINK_REDIS_URL=settings.redis_url or "",
        LEDGERLINK_QUEUE_NAME=settings.queue_name,
        LEDGERLINK_LOG_JSON="true",
        LEDGERLINK_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Proc:
    """A subprocess we started (its own session), output to ``log``; killed only by its pid."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("ab")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no lock release, in-flight jobs lost mid-write."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)
        self._out.close()

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._out.close()

    def alive(self) -> bool:
        return self.popen.poll() is None


def start_worker(env: dict[str, str], log: Path) -> Proc:
    return Proc([sys.executable, "-m", "tests.resilience.clocked_worker"], env, log)


def start_api(env: dict[str, str], log: Path, port: int, *, workers: int = 1) -> Proc:
    """``ledgerlink api``; ``workers`` > 1 runs that many processes (``--workers``, needs Redis)."""
    return Proc(
        [sys.executable, "-m", "ledgerlink.cli", "api", "--port", str(port), "--workers", str(workers)],
        env,
        log,
    )
