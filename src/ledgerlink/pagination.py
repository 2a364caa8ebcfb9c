"""Lists: ``?limit=`` (1..500, default 50) and an opaque keyset ``?cursor=``; ``{items, next_cursor}``."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from ledgerlink.errors import Unprocessable

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size (1..500)")]
Cursor = Annotated[str | None, Query(max_length=500, description="Opaque cursor from next_cursor")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None, size: int) -> list[Any] | None:
    """The keyset values in a cursor, or None for the first page; 422 for a cursor we did not make."""
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable("cursor is not valid", loc=["query", "cursor"], code="invalid_cursor") from exc
    if not isinstance(values, list) or len(values) != size:
        raise Unprocessable("cursor is not valid", loc=["query", "cursor"], code="invalid_cursor")
    return values
