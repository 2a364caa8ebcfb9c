"""The hourly maintenance of Fortnox connections (``fortnox.refresh_due``): refresh access tokens in use,
expire connections idle past their validity, and warn ahead with the ``fortnox_expiring`` to-do."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import Settings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.fortnox.authorization import revoke_quietly
from ledgerlink.fortnox.client import FortnoxOAuth, TokenSet
from ledgerlink.fortnox.errors import FortnoxAuthError, FortnoxError
from ledgerlink.fortnox.repository import (
    FortnoxConnectionRepository,
    FortnoxTodos,
)
from ledgerlink.fortnox.settings import effective_fortnox_settings, require_configured
from ledgerlink.fortnox.token_store import (
    ROW_LOCK_TIMEOUT_MS,
    DbTokenProvider,
    aware,
    clear_tokens,
    open_tokens,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.fortnox import FortnoxConnectionStatus
from ledgerlink.security import SecretBox

log = get_logger(__name__)

REFRESH_AHEAD = dt.timedelta(minutes=65)
"""The hourly cron refreshes access tokens that would expire before its next run."""


async def upsert_expiring_todo(session: AsyncSession, company_id: uuid.UUID, expires_at: dt.datetime) -> None:
    await FortnoxTodos(session).open_expiring(company_id, {"expires_at": aware(expires_at).isoformat()})
    await session.flush()


async def maintain_connection(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> str:
    """One company's share of ``fortnox.refresh_due``; returns what happened (for logs and tests).

    Past ``expires_at`` the connection becomes ``expired``: tokens deleted here and revoked at Fortnox
    (best effort), the ``fortnox_expiring`` to-do stays open until the user connects again. From
    ``expiry_warning_days`` before, the to-do is opened (or updated); otherwise it is resolved. An access
    token expiring before the next run is refreshed through :class:`DbTokenProvider` (same lock rules).
    """
    now = now or utcnow()
    box = SecretBox.from_settings(settings.security)
    fx = effective_fortnox_settings(settings)
    to_revoke: TokenSet | None = None
    to_refresh: TokenSet | None = None
    async with session_scope(sessionmaker) as session:
        connection = await FortnoxConnectionRepository(session).for_company_locked(
            company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS
        )
        if connection is None or connection.status != FortnoxConnectionStatus.active:
            return "skipped"
        expires_at = aware(connection.expires_at)
        if now > expires_at:
            to_revoke = open_tokens(box, connection) if connection.secrets is not None else None
            clear_tokens(connection, FortnoxConnectionStatus.expired)
            await upsert_expiring_todo(session, company_id, expires_at)
        else:
            if expires_at - now <= dt.timedelta(days=settings.fortnox.expiry_warning_days):
                await upsert_expiring_todo(session, company_id, expires_at)
            else:
                await FortnoxTodos(session).resolve_expiring(company_id)
            access_expires = connection.access_expires_at
            if connection.secrets is not None and (
                access_expires is None or aware(access_expires) - now <= REFRESH_AHEAD
            ):
                to_refresh = open_tokens(box, connection)
    if to_revoke is not None:
        log.info("fortnox.connection.expired", company_id=str(company_id))
        await revoke_quietly(fx, transport, company_id, to_revoke.refresh_token)
        return "expired"
    if to_refresh is None:
        return "ok"
    require_configured(fx)
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    provider = DbTokenProvider(
        sessionmaker=sessionmaker, box=box, oauth=oauth, company_id=company_id, tokens=to_refresh, redis=redis
    )
    try:
        await provider.refresh_access_token(to_refresh.access_token)
    except FortnoxAuthError:
        return "reauth_required"
    except FortnoxError as exc:
        log.warning("fortnox.refresh.failed", company_id=str(company_id), error=type(exc).__name__)
        return "refresh_failed"
    finally:
        await oauth.aclose()
    return "refreshed"


async def active_company_ids(sessionmaker: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    async with sessionmaker() as session:
        return list(await FortnoxConnectionRepository(session).active_ids())


__all__ = ["REFRESH_AHEAD", "active_company_ids", "maintain_connection", "upsert_expiring_todo"]
