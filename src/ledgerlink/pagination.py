"""Lists: ``?limit=`` (1..500, default 50) and an opaque keyset ``?cursor=``; ``{items, next_cursor}``.

Every list pages through ONE codec, :class:`Keyset`: a list declares the kinds of its keyset values
once (``Keyset("closings", Instant, uuid.UUID)``), cuts a page and makes its ``next_cursor`` with
:meth:`Keyset.cut` and reads ``?cursor=`` with :meth:`Keyset.decode`. A cursor names the list that made it, so a cursor of
another list, one we did not make, or one of the right list with values of the wrong type or out of
range is a 422 naming the ``cursor`` parameter, never a value that reaches the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from ledgerlink.errors import Unprocessable

T = TypeVar("T")
R = TypeVar("R")

Limit = Annotated[int, Query(ge=1, le=500, description="Page size (1..500)")]
Cursor = Annotated[str | None, Query(max_length=500, description="Opaque cursor from next_cursor")]

#: A keyset value's kind: ``Instant`` (an aware timestamp, kept in UTC), ``dt.date``, ``uuid.UUID``,
#: ``int`` (within PostgreSQL's BIGINT) or ``str`` (short, printable).
KeyKind = type
MAX_TEXT = 100
_INT_RANGE = range(-(2**63), 2**63)


class Instant(dt.datetime):
    """Marker kind for a timestamp keyset value (the decoded value is a plain aware ``datetime``)."""


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"

    def __init__(self, why: str) -> None:
        super().__init__(f"cursor is not valid: {why}", loc=["query", "cursor"], code="invalid_cursor")


def _as_utc(value: dt.datetime) -> dt.datetime:
    # Timestamps are stored in UTC; SQLite hands them back naive.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _dump(kind: KeyKind, value: Any) -> Any:
    if kind is Instant:
        return _as_utc(value).isoformat()
    if kind is dt.date:
        return value.isoformat()
    if kind is uuid.UUID:
        return str(value)
    return value


def _load(kind: KeyKind, value: Any) -> Any:
    """One keyset value of ``kind`` from its JSON form; ValueError/TypeError/OverflowError when it is not."""
    if kind is Instant:
        if not isinstance(value, str) or "T" not in value:
            raise TypeError("a timestamp is an ISO 8601 date and time")
        return _as_utc(dt.datetime.fromisoformat(value))
    if kind is dt.date:
        if not isinstance(value, str) or len(value) != 10:
            raise TypeError("a date is YYYY-MM-DD")
        return dt.date.fromisoformat(value)
    if kind is uuid.UUID:
        if not isinstance(value, str):
            raise TypeError("an id is a string")
        return uuid.UUID(value)
    if kind is int:
        if type(value) is not int or value not in _INT_RANGE:
            raise ValueError("an integer out of range")
        return value
    if kind is str:
        if not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable():
            raise ValueError("a short printable text")
        return value
    raise AssertionError(f"no cursor kind {kind!r}")  # a programming error, caught by any list's test


class Keyset:
    """The cursor codec of one list: its name and the kinds of its keyset values, in order."""

    def __init__(self, list_name: str, *kinds: KeyKind) -> None:
        self.list_name = list_name
        self.kinds = kinds

    def encode(self, *values: Any) -> str:
        if len(values) != len(self.kinds):
            raise ValueError(f"{self.list_name}: {len(self.kinds)} keyset values, got {len(values)}")
        document = {"l": self.list_name, "v": [_dump(k, v) for k, v in zip(self.kinds, values, strict=True)]}
        raw = json.dumps(document, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def cut(
        self, rows: Sequence[R], limit: int, key: Callable[[R], tuple[Any, ...]]
    ) -> tuple[list[R], str | None]:
        """A page of ``rows`` read with ``limit + 1`` (the one more tells whether a page follows): the
        first ``limit`` rows and the cursor after the last of them (``key`` gives its keyset values),
        or None when nothing follows."""
        page = list(rows[:limit])
        return page, self.encode(*key(page[-1])) if len(rows) > limit else None

    def decode(self, cursor: str | None) -> tuple[Any, ...] | None:
        """The keyset values of ``cursor`` (None for the first page); 422 for any cursor this list did
        not make."""
        if cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4))
            document = json.loads(raw)
        except (ValueError, UnicodeError, binascii.Error, RecursionError) as exc:
            raise InvalidCursor("not a cursor of this service") from exc
        if not isinstance(document, dict) or not isinstance(document.get("v"), list):
            raise InvalidCursor("not a cursor of this service")
        if document.get("l") != self.list_name:
            raise InvalidCursor("a cursor of another list")
        values = document["v"]
        if len(values) != len(self.kinds):
            raise InvalidCursor("a cursor of another shape")
        try:
            return tuple(_load(k, v) for k, v in zip(self.kinds, values, strict=True))
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursor("a value of the wrong type or out of range") from exc
