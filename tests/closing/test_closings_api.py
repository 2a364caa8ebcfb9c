"""Closings: create, read, list, change the data source; validation; tenancy and scope."""

from __future__ import annotations

import uuid

import httpx

from ledgerlink.config import Settings
from tests.closing.conftest import create_closing
from tests.conftest import make_token


async def test_create_read_and_patch_a_closing(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    created = await create_closing(client, auth_headers)

    read = await client.get(f"/v1/closings/{created['id']}", headers=auth_headers)
    patched = await client.patch(
        f"/v1/closings/{created['id']}", json={"data_source": "sie"}, headers=auth_headers
    )

    assert read.status_code == 200
    assert read.json()["financial_year_start"] == "2025-01-01"
    assert read.json()["data_source"] == "fortnox"
    assert read.json()["current_import_id"] is None
    assert patched.status_code == 200
    assert (await client.get(f"/v1/closings/{created['id']}", headers=auth_headers)).json()[
        "data_source"
    ] == "sie"


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    ids = [(await create_closing(client, auth_headers))["id"] for _ in range(3)]

    first = (await client.get("/v1/closings?limit=2", headers=auth_headers)).json()
    second = (
        await client.get(f"/v1/closings?limit=2&cursor={first['next_cursor']}", headers=auth_headers)
    ).json()

    assert [c["id"] for c in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None


async def test_the_year_must_start_before_it_ends(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/closings",
        json={
            "financial_year_start": "2025-12-31",
            "financial_year_end": "2025-01-01",
            "data_source": "fortnox",
        },
        headers=auth_headers,
    )

    assert response.status_code == 422
    assert response.json()["code"] == "financial_year_invalid"


async def test_a_year_longer_than_18_months_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    too_long = {
        "financial_year_start": "2024-07-01",
        "financial_year_end": "2026-01-01",
        "data_source": "sie",
    }
    longest = {"financial_year_start": "2024-07-01", "financial_year_end": "2025-12-31", "data_source": "sie"}

    rejected = await client.post("/v1/closings", json=too_long, headers=auth_headers)
    accepted = await client.post("/v1/closings", json=longest, headers=auth_headers)

    assert rejected.status_code == 422
    assert "18 months" in rejected.json()["detail"]
    assert accepted.status_code == 201


async def test_an_unknown_data_source_is_422(client: httpx.AsyncClient, auth_headers: dict[str, str]) -> None:
    response = await client.post(
        "/v1/closings",
        json={
            "financial_year_start": "2025-01-01",
            "financial_year_end": "2025-12-31",
            "data_source": "visma",
        },
        headers=auth_headers,
    )

    assert response.status_code == 422


async def test_another_companys_closing_is_404(
    client: httpx.AsyncClient, auth_headers: dict[str, str], settings: Settings
) -> None:
    created = await create_closing(client, auth_headers)
    other = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"}

    assert (await client.get(f"/v1/closings/{created['id']}", headers=other)).status_code == 404
    assert (await client.get(f"/v1/closings/{created['id']}/adjustments", headers=other)).status_code == 404
    assert (await client.get("/v1/closings", headers=other)).json()["items"] == []


async def test_the_closing_scope_is_required(client: httpx.AsyncClient, settings: Settings) -> None:
    banking_only = {"Authorization": f"Bearer {make_token(settings, uuid.uuid4(), scopes='banking')}"}

    assert (await client.get("/v1/closings", headers=banking_only)).status_code == 403
    assert (await client.get("/v1/closings")).status_code == 401


async def test_the_same_idempotency_key_creates_one_closing(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"}
    headers = {**auth_headers, "Idempotency-Key": "closing-1"}

    first = await client.post("/v1/closings", json=body, headers=headers)
    second = await client.post("/v1/closings", json=body, headers=headers)

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert len((await client.get("/v1/closings", headers=auth_headers)).json()["items"]) == 1


async def test_reading_data_before_an_import_is_409(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    created = await create_closing(client, auth_headers)

    for path in ("accounts", "vouchers", "specifications"):
        response = await client.get(f"/v1/closings/{created['id']}/{path}", headers=auth_headers)
        assert response.status_code == 409, path
        assert response.json()["code"] == "closing_not_imported"
