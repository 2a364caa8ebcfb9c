"""The Fortnox authorization is bound to the login that started it: its state, relayed by another user
of the same company, is refused and burns nothing; the user who started it completes it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from ledgerlink.auth.tokens import issue_dev_token
from ledgerlink.config import Settings
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.fortnox import test_connection_api as api
from tests.fortnox.test_connection_api import approve, start

settings = api.settings
sandbox_app = api.sandbox_app
sandbox = api.sandbox
transport = api.transport
client = api.client


def headers_for(settings: Settings, company_id: uuid.UUID, user: str) -> dict[str, str]:
    token = issue_dev_token(settings, company_id=company_id, scopes="closing", user_id=user)
    return {"Authorization": f"Bearer {token}"}


async def test_a_code_is_completed_only_by_the_login_that_asked_for_it(
    client: httpx.AsyncClient,
    settings: Settings,
    company_id: uuid.UUID,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    alice = headers_for(settings, company_id, "alice")
    mallory = headers_for(settings, company_id, "mallory")  # same company, another user
    started = await start(client, alice)
    redirect = await approve(transport, started["authorization_url"])
    body: dict[str, Any] = {"code": redirect["code"], "state": redirect["state"]}

    relayed = await client.post("/v1/fortnox/authorization/callback", json=body, headers=mallory)
    assert relayed.status_code == 400, relayed.text
    assert relayed.json()["code"] == "state_mismatch"
    assert sandbox.counters.token_requests == 0  # the code never reached Fortnox

    own = await client.post("/v1/fortnox/authorization/callback", json=body, headers=alice)
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "active"

    mine = await client.get("/v1/fortnox/connection", headers=mallory)
    assert mine.json()["status"] == "active"  # the company's connection, visible to its users
