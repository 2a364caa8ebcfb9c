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

from ledgerlink.db.fair_pool import FairAsyncQueuePool


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


#: How long a SQLite write waits for the one writer before it fails "database is locked" (SQLite's own
#: default is 5 s); the API takes ``LEDGERLINK_DATABASE_SQLITE_BUSY_TIMEOUT_SECONDS``.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, **kwargs.get("connect_args", {})}
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
    kwargs.setdefault("poolclass", FairAsyncQueuePool)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    ping = kwargs.pop("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if ping:
        event.listen(engine.sync_engine, "checkout", _ping_on_checkout)
    return engine


def api_pool_options(database_url: str, pool_size: int, sqlite_busy_timeout: float) -> dict[str, Any]:
    """The API's PostgreSQL pool: ``pool_size`` connections kept open, no overflow (an overflow
    connection is opened for a burst and closed when returned: a connect on the request path) and no
    ping on every checkout (a round trip per request); the app pings only connections idle for a second
    or more (:func:`ledgerlink.db.idle_ping.ping_when_idle`). A connection found dead when used is
    dropped by the pool and answered 503 with a short Retry-After (:mod:`ledgerlink.errors`,
    :mod:`ledgerlink.db.prebuilt`). SQLite (``make run``) keeps the pool's defaults; a write there waits
    ``sqlite_busy_timeout`` seconds for the one writer, then its request is answered 503 ``database_busy``."""
    if database_url.startswith("sqlite"):
        return {"connect_args": {"timeout": sqlite_busy_timeout}}
    return {"pool_size": pool_size, "max_overflow": 0, "pool_pre_ping": False}


def _ping_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """The pessimistic disconnect check of ``pool_pre_ping`` on every checkout (:func:`ping`)."""
    ping(dbapi_connection)


def ping(dbapi_connection: Any) -> None:
    """A disconnect check in ONE round trip: SQLAlchemy's asyncpg ping wraps its ``;`` in BEGIN …
    ROLLBACK (for pgbouncer's transaction mode), three round trips. A dead connection raises
    DisconnectionError, on which the pool discards it and checks out another (as pre-ping does)."""
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
    """A session for read-only endpoints, never to write (writes go through :data:`SessionDep`, the unit
    of work). On PostgreSQL its connection runs in autocommit, so a request pays neither BEGIN nor
    COMMIT: the same reads as in a transaction, since PostgreSQL's READ COMMITTED (the default, which
    this service uses) takes a new snapshot for every statement inside a transaction too. On SQLite
    (``make run``), where a transaction is one snapshot, it is an ordinary session whose transaction is
    rolled back at the end (it wrote nothing)."""
    state = request.app.state
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(state, "read_sessionmaker", None)
    if sessionmaker is None:
        engine: AsyncEngine = state.engine
        if engine.dialect.name == "sqlite":
            sessionmaker = state.sessionmaker
        else:
            sessionmaker = create_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        state.read_sessionmaker = sessionmaker
    assert sessionmaker is not None
    async with sessionmaker() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
