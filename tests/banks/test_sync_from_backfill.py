"""Moving ``sync_from`` earlier while the initial import is still queued: 409 naming that run and nothing
changed (the request rolls back); once it finished, the same PATCH schedules the backfill."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx

# the journey helpers' fixtures, reused here
from test_connect_journey import TODAY, business, connect_sandbox, link_account, sandbox_transport, transports  # noqa: F401


async def test_backfill_waits_for_the_initial_import_instead_of_doubling_it(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    business: uuid.UUID,  # noqa: F811
    sandbox_transport: httpx.ASGITransport,  # noqa: F811
    run_jobs: Any,
) -> None:
    connection = await connect_sandbox(client, auth_headers, sandbox_transport)
    account = (await link_account(client, auth_headers, connection["id"])).json()
    url = f"/v1/bank-accounts/{account['id']}"
    initial = await client.post(f"{url}/confirmation", headers=auth_headers)
    assert initial.status_code == 202

    earlier = (TODAY - dt.timedelta(days=100)).isoformat()
    busy = await client.patch(
        url, json={"sync_from": earlier, "display_name": "Huvudkonto"}, headers=auth_headers
    )
    assert busy.status_code == 409, busy.text
    assert busy.json()["run_id"] == initial.json()["id"]
    unchanged = (await client.get(url, headers=auth_headers)).json()
    assert unchanged["sync_from"] == account["sync_from"] and unchanged["name"] != "Huvudkonto"

    await run_jobs()
    moved = await client.patch(url, json={"sync_from": earlier}, headers=auth_headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["backfill"]["trigger"] == "backfill"
    runs = (await client.get(f"{url}/syncs", headers=auth_headers)).json()["items"]
    assert [(r["trigger"], r["status"]) for r in runs] == [("backfill", "queued"), ("initial", "succeeded")]
