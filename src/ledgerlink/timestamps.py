"""The one JSON form of a timestamp: RFC 3339 in UTC with ``Z`` (``2026-03-01T12:00:00Z``).

Response schemas annotate instants as :data:`Timestamp`, so a value is written the same whether it was
just computed (in any zone) or read back from the database (PostgreSQL answers UTC; SQLite naive UTC).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema


def utc_z(value: dt.datetime) -> str:
    """``value`` in UTC as RFC 3339 with ``Z``; a naive value is UTC (how SQLite gives them back)."""
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return aware.isoformat().replace("+00:00", "Z")


Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(utc_z, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
