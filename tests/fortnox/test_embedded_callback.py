"""Connecting Fortnox in the embedded default (SQLite, no Redis), as ``make run`` serves it: the callback
with an Idempotency-Key completes (it was a 500 after 5 s, "database is locked") and replays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import ledgerlink.models  # noqa: F401  (every table on Base.metadata)
from ledgerlink.config import Settings
from ledgerlink.db.base import Base
from ledgerlink.db.session import create_engine
from ledgerlink.main import create_app
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.conftest import make_token
from tests.fortnox import test_connection_api as api
from tests.fortnox.test_connection_api import REDIRECT, SANDBOX_ROOT, approve, start

sandbox_app = api.sandbox_app
sandbox = api.sandbox


@pytest.fixture
async def embedded(tmp_path: Path, sandbox_app: FastAPI) -> AsyncIterator[tuple[Any, httpx.ASGITransport]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledgerlink.db"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()
    settings = Settings(database_url=url, redis_url=None, sandbox=True, allowed_redirect_uris=[REDIRECT])
    fortnox = httpx.ASGITransport(app=sandbox_app, root_path=SANDBOX_ROOT)
    app = create_app(settings, transports={"fortnox": fortnox}, start_cron=False)
    async with app.router.lifespan_context(app):
        yield app, fortnox


async def test_the_callback_with_an_idempotency_key_connects_and_replays(
    embedded: tuple[Any, httpx.ASGITransport], sandbox: SandboxFortnox
) -> None:
    app, fortnox = embedded
    company_id = uuid.uuid4()
    headers = {"Authorization": f"Bearer {make_token(app.state.settings, company_id, 'closing')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        started = await start(c, headers)
        back = await approve(fortnox, started["authorization_url"])
        body = {"code": back["code"], "state": back["state"]}
        keyed = {**headers, "Idempotency-Key": "connect-1"}
        first = await asyncio.wait_for(
            c.post("/v1/fortnox/authorization/callback", json=body, headers=keyed), 4
        )
        assert first.status_code == 200, first.text
        assert first.json()["status"] == "active"
        replay = await c.post("/v1/fortnox/authorization/callback", json=body, headers=keyed)
        assert replay.status_code == 200 and replay.json() == first.json()
        again = await c.post("/v1/fortnox/authorization/callback", json=body, headers=headers)
        assert again.status_code == 400 and again.json()["code"] == "state_mismatch"
    assert sandbox.counters.token_requests == 1


async def test_a_failed_callback_still_uses_up_its_state(
    embedded: tuple[Any, httpx.ASGITransport], sandbox: SandboxFortnox
) -> None:
    """The failure rolls the request back; the state is burnt again on its own, so it cannot be retried."""
    app, fortnox = embedded
    headers = {"Authorization": f"Bearer {make_token(app.state.settings, uuid.uuid4(), 'closing')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        started = await start(c, headers)
        back = await approve(fortnox, started["authorization_url"])
        keyed = {**headers, "Idempotency-Key": "connect-2"}
        wrong = {"code": "not-" + back["code"], "state": back["state"]}
        failed = await c.post("/v1/fortnox/authorization/callback", json=wrong, headers=keyed)
        assert failed.status_code == 422 and failed.json()["code"] == "authorization_code_invalid"
        retried = await c.post(
            "/v1/fortnox/authorization/callback", json={**wrong, "code": back["code"]}, headers=headers
        )
        assert retried.status_code == 400 and retried.json()["code"] == "state_mismatch"
        assert (await c.get("/v1/fortnox/connection", headers=headers)).json()["status"] == "not_connected"
