"""The Fortnox tokens at rest (AES-GCM sealed in ``fortnox_connection.secrets``) and the database-backed
:class:`~ledgerlink.fortnox.client.TokenProvider` that refreshes them.

Fortnox refresh tokens are single use: a refresh returns a new pair and kills the old refresh token,
so two refreshes with the same token lose the connection. Every refresh of a company is therefore
serialised in every mode, by locks taken in this order:

1. an ``asyncio.Lock`` per company in this process (the embedded default has no Redis, and SQLite
   ignores ``FOR UPDATE``: this lock is what serialises it);
2. the Redis lock ``fortnox:refresh:{company_id}`` when Redis is there (several workers);
3. ``SELECT ... FOR UPDATE`` on the connection row (PostgreSQL, with or without Redis).

Under the locks the row is read again: a token another request already rotated is reused, never
refreshed again, so a refresh token is sent at most once. The new pair is committed in its own
transaction before the new access token is used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import InitVar, dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.db.base import utcnow
from ledgerlink.fortnox.client import CompanyInformation, FortnoxOAuth, TokenSet
from ledgerlink.fortnox.client.metrics import REFRESHES
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxError,
    FortnoxNotConnected,
    FortnoxTransientError,
)
from ledgerlink.fortnox.repository import FortnoxConnectionRepository
from ledgerlink.logging import get_logger
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.security import SecretBox

log = get_logger(__name__)

REFRESH_REJECTED = "refresh_rejected"
"""``last_error`` of a connection whose refresh token Fortnox refused (``invalid_grant``)."""
ROW_LOCK_TIMEOUT_MS = 15_000


# -- tokens at rest ---------------------------------------------------------------------------------


def seal_tokens(box: SecretBox, connection_id: uuid.UUID, tokens: TokenSet) -> bytes:
    value = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat(),
        "lifetime_seconds": tokens.lifetime_seconds,
        "scope": tokens.scope,
    }
    return box.encrypt_json(value, context=str(connection_id))


def open_tokens(box: SecretBox, connection: FortnoxConnection) -> TokenSet:
    if connection.secrets is None:
        raise FortnoxNotConnected("the Fortnox connection has no tokens")
    data = box.decrypt_json(connection.secrets, context=str(connection.id))
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data["refresh_token"],
        expires_at=aware(dt.datetime.fromisoformat(data["expires_at"])),
        scope=data.get("scope", ""),
        lifetime_seconds=float(data.get("lifetime_seconds", 3600.0)),
    )


def clear_tokens(connection: FortnoxConnection, status: FortnoxConnectionStatus) -> None:
    """Forget the tokens of a connection that ends (expired, refused or revoked)."""
    connection.status = status
    connection.secrets = None
    connection.access_expires_at = None


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def tenant_id_of(access_token: str, info: CompanyInformation | None) -> str | None:
    """Fortnox's ``tenantId`` claim (the JWT is read, not verified: only Fortnox can verify it), else
    ``DatabaseNumber`` from the company information, which Fortnox documents as the same id."""
    parts = access_token.split(".")
    if len(parts) == 3:
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            tenant = payload.get("tenantId") if isinstance(payload, dict) else None
            if tenant:
                return str(tenant)
        except (ValueError, UnicodeDecodeError, RecursionError):
            pass
    return info.database_number or None if info is not None else None


# -- the per-company refresh lock of this process -----------------------------------------------------

_process_locks: weakref.WeakValueDictionary[tuple[int, uuid.UUID], asyncio.Lock] = (
    weakref.WeakValueDictionary()
)


def process_refresh_lock(company_id: uuid.UUID) -> asyncio.Lock:
    """The one lock of this event loop for refreshing ``company_id``'s tokens (alive while in use)."""
    key = (id(asyncio.get_running_loop()), company_id)
    lock = _process_locks.get(key)
    if lock is None:
        lock = asyncio.Lock()
        _process_locks[key] = lock
    return lock


# -- the database-backed token provider ---------------------------------------------------------------


@dataclass(kw_only=True, eq=False)
class DbTokenProvider:
    """A :class:`~ledgerlink.fortnox.client.TokenProvider` over the ``fortnox_connection`` row (see the
    module docstring for the locks), starting from ``tokens``. ``invalid_grant`` marks the connection
    expired (``last_error="refresh_rejected"``) and raises :class:`FortnoxAuthError`."""

    sessionmaker: async_sessionmaker[AsyncSession]
    box: SecretBox
    oauth: FortnoxOAuth
    company_id: uuid.UUID
    tokens: InitVar[TokenSet]
    redis: Any | None = None
    #: Refresh grants this provider sent to Fortnox.
    refresh_count: int = field(default=0, init=False)

    def __post_init__(self, tokens: TokenSet) -> None:
        self._tokens = tokens

    async def get_access_token(self) -> str:
        if self._tokens.needs_refresh():
            return await self.refresh_access_token(self._tokens.access_token)
        return self._tokens.access_token

    async def refresh_access_token(self, rejected_token: str) -> str:
        async with process_refresh_lock(self.company_id), self._redis_lock():
            return await self._refresh_locked(rejected_token)

    @contextlib.asynccontextmanager
    async def _redis_lock(self) -> AsyncIterator[None]:
        if self.redis is None:
            yield
            return
        from redis.exceptions import LockError

        hold = self.oauth.settings.timeout_seconds + 30
        lock = self.redis.lock(f"fortnox:refresh:{self.company_id}", timeout=hold, blocking_timeout=hold)
        try:
            acquired = await lock.acquire()
        except LockError:
            acquired = False
        if not acquired:
            raise FortnoxTransientError("another worker is refreshing the Fortnox token", endpoint="token")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):
                await lock.release()

    async def _refresh_locked(self, rejected_token: str) -> str:
        async with self.sessionmaker() as session:
            repo = FortnoxConnectionRepository(session)
            try:
                connection = await repo.for_company_locked(
                    self.company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS
                )
            except DBAPIError:
                raise FortnoxTransientError("the Fortnox connection row is busy", endpoint="token") from None
            if (
                connection is None
                or connection.status != FortnoxConnectionStatus.active
                or connection.secrets is None
            ):
                raise FortnoxAuthError("the Fortnox connection is no longer active", endpoint="token")
            current = open_tokens(self.box, connection)
            if current.access_token != rejected_token and not current.needs_refresh():
                self._tokens = current  # someone else refreshed meanwhile
                await session.rollback()
                return current.access_token
            try:
                new = await self.oauth.refresh(current.refresh_token)
            except FortnoxAuthError as exc:
                REFRESHES.labels("rejected").inc()
                if exc.error == "invalid_grant":
                    clear_tokens(connection, FortnoxConnectionStatus.expired)
                    connection.last_error = REFRESH_REJECTED
                    await session.commit()
                    log.warning("fortnox.refresh.rejected", company_id=str(self.company_id))
                raise
            except FortnoxError:
                REFRESHES.labels("failed").inc()
                raise
            REFRESHES.labels("ok").inc()
            connection.secrets = seal_tokens(self.box, connection.id, new)
            connection.access_expires_at = new.expires_at
            connection.last_refreshed_at = utcnow()
            if new.scope:
                connection.scopes = new.scope
            await session.commit()
        self._tokens = new
        self.refresh_count += 1
        log.info("fortnox.refresh.done", company_id=str(self.company_id))
        return new.access_token


__all__ = [
    "REFRESH_REJECTED",
    "ROW_LOCK_TIMEOUT_MS",
    "DbTokenProvider",
    "aware",
    "clear_tokens",
    "open_tokens",
    "process_refresh_lock",
    "seal_tokens",
    "tenant_id_of",
]
