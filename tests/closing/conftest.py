"""Closing tests: the app with the sandbox Fortnox mounted as in dev, a connected Fortnox, helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from ledgerlink.config import Settings
from ledgerlink.sandbox.fortnox import SandboxFortnox, create_sandbox_fortnox_app
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from tests.conftest import REDIS_URL

REDIRECT = "https://app.example.test/callback"
SANDBOX_ROOT = "/sandbox/fortnox"
YEAR_START, YEAR_END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)


@pytest.fixture
def settings(database_url: str, queue_name: str) -> Settings:
    """Sandbox mode without a Fortnox client configured: the mounted sandbox Fortnox is used."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="testing",
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=queue_name,
        sandbox=True,
        log_json=True,
        allowed_redirect_uris=[REDIRECT],
    )


@pytest.fixture
def sandbox_company() -> SandboxCompany:
    return SandboxCompany.generate(seed=5, vouchers=150, year=2025)


@pytest.fixture
def sandbox_app(sandbox_company: SandboxCompany) -> FastAPI:
    return create_sandbox_fortnox_app(company=sandbox_company, enforce_rate_limit=False)


@pytest.fixture
def sandbox(sandbox_app: FastAPI) -> SandboxFortnox:
    state: SandboxFortnox = sandbox_app.state.fortnox
    return state


@pytest.fixture
def transport(sandbox_app: FastAPI, transports: dict[str, Any]) -> httpx.ASGITransport:
    t = httpx.ASGITransport(app=sandbox_app, root_path=SANDBOX_ROOT)
    transports["fortnox"] = t
    return t


@pytest.fixture
async def client(transport: httpx.ASGITransport, app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def connect_fortnox(
    client: httpx.AsyncClient, headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    """Connect Fortnox through its API: authorization, the user approves at the sandbox, callback."""
    started = await client.post("/v1/fortnox/authorization", json={"redirect_uri": REDIRECT}, headers=headers)
    assert started.status_code == 200, started.text
    async with httpx.AsyncClient(transport=transport) as browser:
        redirect = await browser.get(started.json()["authorization_url"] + "&approve=1")
    assert redirect.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    done = await client.post(
        "/v1/fortnox/authorization/callback",
        json={"code": query["code"], "state": query["state"]},
        headers=headers,
    )
    assert done.status_code == 200, done.text


@pytest.fixture
async def connected(
    client: httpx.AsyncClient, auth_headers: dict[str, str], transport: httpx.ASGITransport
) -> None:
    await connect_fortnox(client, auth_headers, transport)


async def create_closing(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    source: str = "fortnox",
    start: dt.date = YEAR_START,
    end: dt.date = YEAR_END,
) -> dict[str, Any]:
    response = await client.post(
        "/v1/closings",
        json={
            "financial_year_start": start.isoformat(),
            "financial_year_end": end.isoformat(),
            "data_source": source,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


RunJobs = Callable[..., Awaitable[Any]]


async def import_from_fortnox(
    client: httpx.AsyncClient, headers: dict[str, str], run_jobs: RunJobs, closing_id: str
) -> dict[str, Any]:
    started = await client.post(f"/v1/closings/{closing_id}/imports", headers=headers)
    assert started.status_code == 202, started.text
    await run_jobs()
    job = await client.get(f"/v1/closings/{closing_id}/imports/{started.json()['id']}", headers=headers)
    assert job.status_code == 200
    body: dict[str, Any] = job.json()
    return body


async def all_pages(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], *, limit: int = 500, **query: str
) -> list[dict[str, Any]]:
    """Every item of a paginated list, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **query, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
