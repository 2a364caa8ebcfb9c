"""The checkout ping of the worker's and the API's PostgreSQL pools: only for a connection that sat idle.

The engine's own ping (:func:`ledgerlink.db.session.create_engine`) spends a round trip on EVERY
checkout; a sync run checks out a connection 6–7 times, each a few milliseconds after the previous
checkin. :func:`ping_when_idle` pings only a connection that has been idle for ``idle_seconds`` or
longer (or whose idle time is unknown): a database restart or a connection killed while the process
was quiet is still caught on checkout and the connection replaced, as before. A connection that dies
within ``idle_seconds`` of its last use is met by the statement itself: SQLAlchemy sees the disconnect,
invalidates the pool (every connection from before it is replaced on its next checkout) and raises a
``DBAPIError`` with ``connection_invalidated`` set, which the sync job turns into a retry
(:func:`is_lost_connection`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerlink.db.session import ping

#: A connection idle for this long or longer is pinged on checkout.
IDLE_PING_SECONDS = 1.0
_CHECKED_IN_AT = "ledgerlink_checked_in_at"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping (one round trip, ``;``) on checkout only the connections idle for ``idle_seconds`` or more.
    Use on an engine created with ``pool_pre_ping=False``."""

    def checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN_AT] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is not None and time.monotonic() - checked_in_at < idle_seconds:
            return
        ping(dbapi_connection)

    event.listen(engine.sync_engine, "checkin", checkin)
    event.listen(engine.sync_engine, "checkout", checkout)


def is_lost_connection(exc: BaseException) -> bool:
    """The database connection broke under a statement (the pool has replaced it): worth a retry."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
