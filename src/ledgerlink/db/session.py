"""Engine and session factories, and the per-request session that commits or rolls back at the edge."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy import types as sa_types
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_


class _SQLiteAwareDateTime(SQLITE_DATETIME):
    """SQLite has no time zones: ``DateTime(timezone=True)`` is stored as UTC text and read back as an
    aware UTC datetime, as PostgreSQL's ``timestamptz`` would (naive values are taken as UTC)."""

    def bind_processor(self, dialect: Dialect) -> Any:
        inner = super().bind_processor(dialect)
        if not self.timezone:
            return inner

        def process(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            return inner(value) if inner is not None else value

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        inner = super().result_processor(dialect, coltype)
        if not self.timezone:
            return inner

        def process(value: Any) -> Any:
            value = inner(value) if inner is not None else value
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value

        return process


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        dialect = engine.dialect
        dialect.colspecs = {**dialect.colspecs, sa_types.DateTime: _SQLiteAwareDateTime}

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
            # SQLite's own lower()/upper() fold ASCII only, so ILIKE would miss "SJÖBERG" for "Sjöberg";
            # Python's are Unicode-aware, like PostgreSQL's.
            dbapi_conn.create_function("lower", 1, _lower, deterministic=True)
            dbapi_conn.create_function("upper", 1, _upper, deterministic=True)

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    ping = kwargs.pop("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if ping:
        event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pessimistic disconnect check of ``pool_pre_ping``, in ONE round trip: SQLAlchemy's asyncpg
    ping wraps its ``;`` in BEGIN … ROLLBACK (for pgbouncer's transaction mode), three round trips on
    every checkout. A dead connection raises DisconnectionError, on which the pool discards it and
    checks out another (as pre-ping does)."""
    try:
        await_(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as exc:
        raise DisconnectionError(f"connection failed its checkout ping: {type(exc).__name__}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class UnitOfWorkListener(Protocol):
    """Told how a unit of work ended: after its commit, or after its rollback."""

    async def after_commit(self) -> None: ...

    def after_rollback(self) -> None: ...


#: Opens a listener for one unit of work (entered around it, exited after the commit or rollback).
UnitOfWorkHook = Callable[[], AbstractAsyncContextManager[UnitOfWorkListener]]

_unit_of_work_hooks: list[UnitOfWorkHook] = []


def on_unit_of_work(hook: UnitOfWorkHook) -> None:
    """Register a listener factory for every unit of work of this process (once per hook). The worker
    layer registers its job buffer here, so jobs enqueued in a unit of work are sent after its commit
    and dropped with its rollback, while this module knows nothing of jobs."""
    if hook not in _unit_of_work_hooks:
        _unit_of_work_hooks.append(hook)


@asynccontextmanager
async def _unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session, AsyncExitStack() as stack:
        listeners = [await stack.enter_async_context(hook()) for hook in _unit_of_work_hooks]
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            for listener in listeners:
                listener.after_rollback()
            raise
        for listener in listeners:
            await listener.after_commit()


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A unit of work for jobs and scripts: commit on success, roll back on error; the registered
    listeners (:func:`on_unit_of_work`: the buffered jobs) hear of it after the commit or rollback."""
    async with _unit_of_work(sessionmaker) as session:
        yield session


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the endpoint returns (before the response is sent), rolled
    back if it raises. Jobs the endpoint enqueued are sent after the commit."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with _unit_of_work(sessionmaker) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for read-only endpoints: its connection runs in autocommit, so a request pays neither
    BEGIN nor COMMIT (each statement is its own snapshot: use it for endpoints that read with ONE
    statement, and never to write; writes go through :data:`SessionDep`, the unit of work)."""
    state = request.app.state
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(state, "read_sessionmaker", None)
    if sessionmaker is None:
        engine: AsyncEngine = state.engine
        sessionmaker = create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        state.read_sessionmaker = sessionmaker
    async with sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
