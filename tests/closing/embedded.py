"""The embedded default driven in-process: a SQLite file, in-process jobs, the sandbox Fortnox as the
Fortnox transport (what ``make run`` runs, without a server process)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ledgerlink.config import Settings
from ledgerlink.db.migrate import upgrade
from ledgerlink.main import create_app
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from tests.closing.conftest import REDIRECT, SANDBOX_ROOT, connect_fortnox
from tests.conftest import make_token


@dataclass
class Embedded:
    client: httpx.AsyncClient
    app: Any
    sandbox: SandboxFortnox
    headers: dict[str, str]
    settings: Settings

    async def drain(self, seconds: float = 60.0) -> None:
        """Wait until the in-process runner has no job left (jobs may enqueue jobs)."""
        runner = self.app.state.runner
        deadline = asyncio.get_running_loop().time() + seconds
        while runner._tasks and asyncio.get_running_loop().time() < deadline:
            await runner.drain(max_seconds=seconds)


@contextlib.asynccontextmanager
async def embedded(tmp_path: Path, *, vouchers: int = 60, **overrides: Any) -> AsyncIterator[Embedded]:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db"
    await asyncio.to_thread(upgrade, "head", url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="testing",
        database_url=url,
        redis_url=None,
        sandbox=True,
        log_json=True,
        allowed_redirect_uris=[REDIRECT],
        **overrides,
    )
    sandbox_app = create_sandbox_fortnox_app(
        company=SandboxCompany.generate(seed=5, vouchers=vouchers, year=2025), enforce_rate_limit=False
    )
    transport = httpx.ASGITransport(app=sandbox_app, root_path=SANDBOX_ROOT)
    app = create_app(settings, transports={"fortnox": transport}, start_cron=False)
    headers = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        await connect_fortnox(client, headers, transport)
        yield Embedded(client, app, sandbox_app.state.fortnox, headers, settings)
