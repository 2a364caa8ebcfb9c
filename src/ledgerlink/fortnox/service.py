"""The Fortnox connection as the rest of the service uses it: the one way to get a
:class:`FortnoxClient` for a company (:func:`open_client`), the 30-day validity (:func:`renew`), the
connection's status and the lists the export dialog reads.

For the closing feature (imports and exports)::

    async with client_for(env, company_id) as fortnox:      # env: the job's or the app's ServiceEnv
        sie = await fortnox.sie_export(year_id)
    async with session_scope(env.sessionmaker) as session:
        await renew(session, company_id, settings=env.settings)   # every import or export

Token refreshes commit in their own short transaction (a rotated refresh token must survive a rollback
of the calling job), so call :func:`renew` after the Fortnox calls, not before them in a transaction
that is still open while the client runs (it locks the same row).

Elsewhere in the package: :mod:`~ledgerlink.fortnox.authorization` (connect, disconnect),
:mod:`~ledgerlink.fortnox.token_store` (tokens at rest, refresh), :mod:`~ledgerlink.fortnox.maintenance`
(the hourly cron), :mod:`~ledgerlink.fortnox.settings` (effective settings, the rate budget).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings, get_settings
from ledgerlink.db.base import utcnow
from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxError,
    FortnoxExpired,
    FortnoxNotConnected,
    FortnoxReauthRequired,
    FortnoxRequestError,
    FortnoxTransientError,
    FortnoxUpstream,
)
from ledgerlink.fortnox.repository import FortnoxConnectionRepository, FortnoxTodos
from ledgerlink.fortnox.settings import build_limiter, effective_fortnox_settings, require_configured
from ledgerlink.fortnox.token_store import REFRESH_REJECTED, DbTokenProvider, aware, open_tokens
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.runtime import ServiceEnv
from ledgerlink.security import SecretBox

T = TypeVar("T")


def connection_status(connection: FortnoxConnection | None, now: dt.datetime | None = None) -> str:
    """``active|expired|revoked|not_connected`` as the API reports it (expired once ``now > expires_at``)."""
    if connection is None:
        return "not_connected"
    if connection.status == FortnoxConnectionStatus.active and (now or utcnow()) > aware(
        connection.expires_at
    ):
        return FortnoxConnectionStatus.expired.value
    return connection.status.value


def _ensure_usable(connection: FortnoxConnection | None, now: dt.datetime) -> FortnoxConnection:
    status = connection_status(connection, now)
    if status == "expired":
        if connection is not None and connection.last_error == REFRESH_REJECTED:
            raise FortnoxReauthRequired("Fortnox rejected the stored authorization; connect Fortnox again")
        raise FortnoxExpired("the Fortnox connection has expired; connect Fortnox again")
    if connection is None or status != "active" or connection.secrets is None:
        raise FortnoxNotConnected("this company has not connected Fortnox")
    return connection


@contextlib.asynccontextmanager
async def open_client(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    company_id: uuid.UUID,
    transport: httpx.AsyncBaseTransport | None,
) -> AsyncIterator[FortnoxClient]:
    """A :class:`FortnoxClient` for the company's Fortnox, closed when the block ends.

    Raises :class:`FortnoxNotConnected` (409) without a usable connection, :class:`FortnoxExpired` (409)
    past ``expires_at`` and :class:`FortnoxReauthRequired` (409, a subclass of ``FortnoxExpired``) when
    Fortnox refused the refresh token. Calls through the client may raise the ``FortnoxError`` tree
    (use :func:`translate_fortnox_errors` at an HTTP edge); a :class:`FortnoxAuthError` means the user
    must authorize again.

    The client shares the company's rate budget with every worker (``fortnox:rl:{client_id}:{company_id}``
    in Redis; an in-process window without Redis) and refreshes tokens through :class:`DbTokenProvider`.
    It does not renew the 30-day validity: call :func:`renew` after an import or export.
    ``transport`` is ``app.state.transports.get("fortnox")`` / ``ctx["transports"].get("fortnox")``.
    """
    fx = effective_fortnox_settings(settings)
    require_configured(fx)
    box = SecretBox.from_settings(settings.security)
    async with sessionmaker() as session:
        connection = _ensure_usable(
            await FortnoxConnectionRepository(session).for_company(company_id), utcnow()
        )
        tokens = open_tokens(box, connection)
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    provider = DbTokenProvider(
        sessionmaker=sessionmaker, box=box, oauth=oauth, company_id=company_id, tokens=tokens, redis=redis
    )
    client = FortnoxClient(
        settings=fx,
        token_provider=provider,
        limiter=build_limiter(settings, redis, company_id),
        transport=transport,
    )
    try:
        yield client
    finally:
        await client.aclose()
        await oauth.aclose()


def client_for(
    env: ServiceEnv, company_id: uuid.UUID
) -> contextlib.AbstractAsyncContextManager[FortnoxClient]:
    """:func:`open_client` with what ``env`` holds (its settings, sessions, Redis and Fortnox transport)."""
    return open_client(
        settings=env.settings,
        sessionmaker=env.sessionmaker,
        redis=env.redis,
        company_id=company_id,
        transport=env.transports.get("fortnox"),
    )


async def renew(
    session: AsyncSession,
    company_id: uuid.UUID,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Slide the validity: ``last_used_at = now``, ``expires_at = now + validity_days``; resolves the
    ``fortnox_expiring`` to-do. Call on every import and export (only those renew, per the API contract). A
    connection already expired or revoked stays so. Only flushes; the caller's unit of work commits."""
    settings = settings or get_settings()
    now = now or utcnow()
    expires_at = now + dt.timedelta(days=settings.fortnox.validity_days)
    if await FortnoxConnectionRepository(session).renew(company_id, now=now, expires_at=expires_at):
        await FortnoxTodos(session).resolve_expiring(company_id)
    await session.flush()


@contextlib.contextmanager
def translate_fortnox_errors() -> Iterator[None]:
    """At an HTTP edge: the ``FortnoxError`` tree as problem+json (409 reauth, 502 with Fortnox's message)."""
    try:
        yield
    except FortnoxAuthError:
        raise FortnoxReauthRequired("Fortnox needs a new authorization; connect Fortnox again") from None
    except FortnoxRequestError as exc:
        raise FortnoxUpstream(f"Fortnox: {exc.message}", extra={"fortnox_code": exc.code}) from None
    except FortnoxTransientError:
        raise FortnoxUpstream(
            "Fortnox did not answer; try again shortly", code="fortnox_unavailable"
        ) from None
    except FortnoxError as exc:
        raise FortnoxUpstream(f"Fortnox: {exc.message}") from None


async def get_connection(session: AsyncSession, company_id: uuid.UUID) -> FortnoxConnection | None:
    return await FortnoxConnectionRepository(session).for_company(company_id)


async def read_through_client(
    call: Callable[[FortnoxClient], Awaitable[T]], env: ServiceEnv, company_id: uuid.UUID
) -> T:
    """One read at an HTTP edge: ``call`` on the company's client, Fortnox errors as problem+json.
    Does not renew the validity (only imports and exports do)."""
    with translate_fortnox_errors():
        async with client_for(env, company_id) as client:
            return await call(client)


__all__ = [
    "client_for",
    "connection_status",
    "get_connection",
    "open_client",
    "read_through_client",
    "renew",
    "translate_fortnox_errors",
]
