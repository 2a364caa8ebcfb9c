"""Hot read statements built ONCE with bind parameters (used by repositories only).

A :class:`Prebuilt` holds a Core ``select`` whose values are all ``bindparam``s. On PostgreSQL
(asyncpg) it is compiled once to its ``$n`` SQL and run on the session connection's own asyncpg
connection (asyncpg prepares and caches it): no statement building, cache key, execution context or
result processing per request; rows come back as asyncpg records (UUIDs, dates, Decimals, plain
strings for string-backed enums). Anywhere else (SQLite, ``make run``) the same ``select`` is executed
through SQLAlchemy Core with the same parameters, so both give the same columns in the same order.

Errors keep the app's contract: a connection found dead (killed backend, database restart) is
invalidated in the pool and raised as :class:`DatabaseUnavailable` (503 problem+json with a short
Retry-After); any other database error is raised as SQLAlchemy's ``DBAPIError`` carrying the driver's
error (so the app's ``DBAPIError`` handler treats it exactly as it treats SQLAlchemy's own).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ledgerlink.errors import DatabaseUnavailable


def is_disconnect(exc: BaseException) -> bool:
    """An asyncpg error that means the connection is gone (not a query's own error). An
    ``InternalClientError`` is the protocol found in a state no query can continue from (seen when the
    backend was terminated while the connection sat in the pool: "another operation is in progress")."""
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | ConnectionError
        | OSError,
    ):
        return True
    state = getattr(exc, "sqlstate", None)
    # 57P01..57P03: admin shutdown / crash shutdown / cannot connect now; 08xxx: connection exception.
    return isinstance(state, str) and (state.startswith("57P") or state.startswith("08"))


class Prebuilt:
    """One Core select with bind parameters, compiled for asyncpg once (lazily) and run by :meth:`rows`."""

    __slots__ = ("_pg", "_pg_statement", "statement")

    def __init__(self, statement: Select[Any], *, postgresql: Select[Any] | None = None) -> None:
        """``postgresql``: the same query written for PostgreSQL where the portable one cannot be
        compiled once (an expanding ``IN`` list there becomes ``= ANY`` of one array parameter)."""
        self.statement = statement
        self._pg_statement = postgresql if postgresql is not None else statement
        self._pg: tuple[str, tuple[str, ...]] | None = None

    @property
    def postgresql(self) -> tuple[str, tuple[str, ...]]:
        """The PostgreSQL (asyncpg) SQL text and the names of its ``$1..$n`` parameters, in order."""
        if self._pg is None:
            from sqlalchemy.dialects.postgresql.asyncpg import dialect

            compiled = self._pg_statement.compile(dialect=dialect())  # type: ignore[no-untyped-call]
            self._pg = (compiled.string, tuple(compiled.positiontup or ()))
        return self._pg

    async def rows(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any]:
        connection = await session.connection()
        if connection.dialect.name == "postgresql" and connection.dialect.driver == "asyncpg":
            return await self._fetch_asyncpg(connection, params)
        result = await connection.execute(self.statement, dict(params))
        rows: Sequence[Any] = result.all()
        return rows

    async def _fetch_asyncpg(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Sequence[Any]:
        sql, names = self.postgresql
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        args = [params[n] for n in names]
        try:
            rows: Sequence[Any] = await raw.fetch(sql, *args)
        except Exception as exc:
            if is_disconnect(exc):
                await connection.invalidate(exc)
                raise DatabaseUnavailable() from exc
            raise DBAPIError(sql, args, exc) from exc
        return rows
