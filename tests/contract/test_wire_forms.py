"""One wire form: timestamps in UTC with Z whether just written or read back."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel

from ledgerlink.timestamps import Timestamp

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class _Stamped(BaseModel):
    at: Timestamp


def test_a_timestamp_in_any_zone_or_naive_is_written_in_utc_with_z() -> None:
    winter = dt.datetime(2026, 1, 15, 13, 0, 0, 250000, tzinfo=STOCKHOLM)  # +01:00
    assert _Stamped(at=winter).model_dump(mode="json") == {"at": "2026-01-15T12:00:00.250000Z"}
    naive_utc = dt.datetime(2026, 1, 15, 12, 0)
    assert _Stamped(at=naive_utc).model_dump(mode="json") == {"at": "2026-01-15T12:00:00Z"}
    assert _Stamped.model_json_schema(mode="serialization")["properties"]["at"]["format"] == "date-time"


async def test_a_resource_answers_the_same_timestamp_when_written_and_when_read(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"financial_year_start": "2025-01-01", "financial_year_end": "2025-12-31", "data_source": "sie"}
    created = await client.post("/v1/closings", json=body, headers=auth_headers)
    assert created.status_code == 201, created.text
    read = await client.get(f"/v1/closings/{created.json()['id']}", headers=auth_headers)
    written_at, read_at = created.json()["created_at"], read.json()["created_at"]
    assert written_at.endswith("Z")
    assert read_at == written_at
