"""The Fortnox connection: OAuth authorization, the encrypted token store, the 30-day validity and
the one way to get a :class:`FortnoxClient` for a company (:func:`open_client`).

For the closing feature (imports and exports)::

    async with open_client(settings=ctx["settings"], sessionmaker=ctx["sessionmaker"], redis=ctx["redis"],
                           company_id=company_id, transport=ctx["transports"].get("fortnox")) as fortnox:
        sie = await fortnox.sie_export(year_id)
    async with session_scope(ctx["sessionmaker"]) as session:
        await renew(session, company_id, settings=ctx["settings"])   # every import or export

Token refreshes commit in their own short transaction (a rotated refresh token must survive a rollback
of the calling job), so call :func:`renew` after the Fortnox calls, not before them in a transaction
that is still open while the client runs (it locks the same row).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import FortnoxSettings, Settings, get_settings
from ledgerlink.db.base import utcnow
from ledgerlink.db.session import session_scope
from ledgerlink.errors import AppError, ServiceUnavailable, Unprocessable
from ledgerlink.fortnox.client import (
    CompanyInformation,
    FinancialYear,
    FortnoxClient,
    FortnoxOAuth,
    InMemoryTokenProvider,
    TokenSet,
    VoucherSeries,
)
from ledgerlink.fortnox.errors import (
    AuthorizationDenied,
    FortnoxAuthError,
    FortnoxError,
    FortnoxExpired,
    FortnoxNotConnected,
    FortnoxReauthRequired,
    FortnoxRequestError,
    FortnoxTransientError,
    FortnoxUpstream,
)
from ledgerlink.fortnox.repository import (
    OAUTH_PURPOSE,
    FortnoxConnectionRepository,
    FortnoxTodoRepository,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import OAuthState
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.oauth.service import check_redirect_uri, consume_state, issue_state
from ledgerlink.ratelimit import Limiter, SlidingWindowLimiter
from ledgerlink.security import DecryptionError, SecretBox

log = get_logger(__name__)

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # the public sandbox's well-known secret
ACCESS_LEEWAY_SECONDS = 60.0
REFRESH_REJECTED = "refresh_rejected"
"""``last_error`` of a connection whose refresh token Fortnox refused (``invalid_grant``)."""
ROW_LOCK_TIMEOUT_MS = 15_000


# -- settings ---------------------------------------------------------------------------------------


def effective_fortnox_settings(settings: Settings) -> FortnoxSettings:
    """``settings.fortnox``, or, in sandbox mode without a configured client, the mounted sandbox
    Fortnox at ``{public_base_url}/sandbox/fortnox`` with its well-known client."""
    fx = settings.fortnox
    if settings.sandbox and not fx.client_id:
        base = f"{settings.public_base_url.rstrip('/')}/sandbox/fortnox"
        return fx.model_copy(
            update={
                "api_base_url": base,
                "auth_base_url": f"{base}/oauth-v1",
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SecretStr(SANDBOX_CLIENT_SECRET),
            }
        )
    return fx


def _require_configured(fx: FortnoxSettings) -> None:
    if not fx.client_id or fx.client_secret is None:
        raise ServiceUnavailable("Fortnox is not configured on this server", code="fortnox_not_configured")


# -- tokens at rest ---------------------------------------------------------------------------------


def _box(settings: Settings) -> SecretBox:
    return SecretBox.from_settings(settings.security)


def seal_tokens(box: SecretBox, connection_id: uuid.UUID, tokens: TokenSet) -> bytes:
    value = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat(),
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
        expires_at=_aware(dt.datetime.fromisoformat(data["expires_at"])),
        scope=data.get("scope", ""),
    )


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _tenant_id(access_token: str, info: CompanyInformation | None) -> str | None:
    """Fortnox's ``tenantId`` claim (the JWT is read, not verified: only Fortnox can verify it), else
    ``DatabaseNumber`` from the company information, which Fortnox documents as the same id."""
    parts = access_token.split(".")
    if len(parts) == 3:
        try:
            payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            tenant = payload.get("tenantId") if isinstance(payload, dict) else None
            if tenant:
                return str(tenant)
        except (ValueError, UnicodeDecodeError):
            pass
    return info.database_number or None if info is not None else None


# -- the rate limiter -------------------------------------------------------------------------------


class InProcessLimiter:
    """:class:`SlidingWindowLimiter` semantics in one process (the embedded default without Redis):
    at most ``limit`` starts within any ``window_seconds + margin_seconds``."""

    _windows: dict[str, deque[float]] = {}

    def __init__(self, key: str, limit: int, window_seconds: float, *, margin_seconds: float = 0.25) -> None:
        self.limit, self.window_seconds = limit, window_seconds + margin_seconds
        self._starts = self._windows.setdefault(key, deque())

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            while self._starts and now - self._starts[0] >= self.window_seconds:
                self._starts.popleft()
            if len(self._starts) < self.limit:
                self._starts.append(now)  # no await between the check and the grant: atomic
                return
            await asyncio.sleep(self._starts[0] + self.window_seconds - now)


def build_limiter(settings: Settings, redis: Any | None, company_id: uuid.UUID) -> Limiter:
    """The company's Fortnox budget, shared by every worker (Redis) or by this process (no Redis)."""
    fx = effective_fortnox_settings(settings)
    key = f"fortnox:rl:{fx.client_id}:{company_id}"
    if redis is not None:
        return SlidingWindowLimiter(redis, key, fx.requests_per_window, fx.window_seconds)
    return InProcessLimiter(key, fx.requests_per_window, fx.window_seconds)


# -- the database-backed token provider ---------------------------------------------------------------


class DbTokenProvider:
    """A :class:`~ledgerlink.fortnox.client.TokenProvider` over the ``fortnox_connection`` row.

    A refresh runs under the Redis lock ``fortnox:refresh:{company_id}`` (when Redis is available) and
    always under ``SELECT ... FOR UPDATE`` on the row, taken before Fortnox is called; it re-reads the
    row first, so a token another worker already rotated is reused, never refreshed again. The new pair
    is committed in its own transaction before the new access token is returned. ``invalid_grant``
    marks the connection expired (``last_error="refresh_rejected"``) and raises
    :class:`FortnoxAuthError`.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        box: SecretBox,
        oauth: FortnoxOAuth,
        company_id: uuid.UUID,
        tokens: TokenSet,
        redis: Any | None = None,
        leeway_seconds: float = ACCESS_LEEWAY_SECONDS,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.box = box
        self.oauth = oauth
        self.company_id = company_id
        self.redis = redis
        self.leeway_seconds = leeway_seconds
        self._tokens = tokens
        self.refresh_count = 0
        """Refresh grants this provider sent to Fortnox."""

    async def get_access_token(self) -> str:
        if self._tokens.expires_within(self.leeway_seconds):
            return await self.refresh_access_token(self._tokens.access_token)
        return self._tokens.access_token

    async def refresh_access_token(self, rejected_token: str) -> str:
        async with self._refresh_lock():
            return await self._refresh_locked(rejected_token)

    @contextlib.asynccontextmanager
    async def _refresh_lock(self) -> AsyncIterator[None]:
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
            if current.access_token != rejected_token and not current.expires_within(self.leeway_seconds):
                self._tokens = current  # someone else refreshed meanwhile
                await session.rollback()
                return current.access_token
            try:
                new = await self.oauth.refresh(current.refresh_token)
            except FortnoxAuthError as exc:
                if exc.error == "invalid_grant":
                    connection.status = FortnoxConnectionStatus.expired
                    connection.secrets = None
                    connection.access_expires_at = None
                    connection.last_error = REFRESH_REJECTED
                    await session.commit()
                    log.warning("fortnox.refresh.rejected", company_id=str(self.company_id))
                raise
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


# -- the client factory -----------------------------------------------------------------------------


def connection_status(connection: FortnoxConnection | None, now: dt.datetime | None = None) -> str:
    """``active|expired|revoked|not_connected`` as the API reports it (expired once ``now > expires_at``)."""
    if connection is None:
        return "not_connected"
    if connection.status == FortnoxConnectionStatus.active and (now or utcnow()) > _aware(
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

    The client shares the company's rate limit with every worker (``fortnox:rl:{client_id}:{company_id}``
    in Redis; an in-process window without Redis) and refreshes tokens through :class:`DbTokenProvider`.
    It does not renew the 30-day validity: call :func:`renew` after an import or export.
    ``transport`` is ``app.state.transports.get("fortnox")`` / ``ctx["transports"].get("fortnox")``.
    """
    fx = effective_fortnox_settings(settings)
    _require_configured(fx)
    box = _box(settings)
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
        await FortnoxTodoRepository(session).resolve_expiring(company_id, now=now)
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


# -- the authorization flow -------------------------------------------------------------------------


@dataclass(frozen=True)
class FortnoxAuthorization:
    authorization_url: str
    state: str


async def start_authorization(
    session: AsyncSession,
    *,
    settings: Settings,
    company_id: uuid.UUID,
    redirect_uri: str,
    now: dt.datetime | None = None,
) -> FortnoxAuthorization:
    """A single-use ``state`` (its SHA-256 stored, bound to the company, 15 minutes) and Fortnox's
    authorize URL (``access_type=offline``, scopes from settings)."""
    check_redirect_uri(settings, redirect_uri)
    fx = effective_fortnox_settings(settings)
    _require_configured(fx)
    state = await issue_state(
        session, company_id=company_id, purpose=OAUTH_PURPOSE, redirect_uri=redirect_uri, now=now
    )
    oauth = FortnoxOAuth(settings=fx)
    try:
        url = oauth.authorization_url(redirect_uri, state)
    finally:
        await oauth.aclose()
    return FortnoxAuthorization(authorization_url=url, state=state)


async def _consume_state(
    sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID, state: str, now: dt.datetime
) -> OAuthState:
    """Burn the state in its own committed transaction: it stays used even when the callback then fails."""
    async with sessionmaker() as own:
        try:
            return await consume_state(own, state, company_id=company_id, purpose=OAUTH_PURPOSE, now=now)
        finally:
            await own.commit()


async def complete_authorization(
    session: AsyncSession,
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    state: str,
    code: str | None,
    error: str | None = None,
    error_description: str | None = None,
) -> FortnoxConnection:
    """The callback: check and burn the state, exchange the code, read the company, store the tokens."""
    now = utcnow()
    state_row = await _consume_state(sessionmaker, company_id, state, now)
    if error:
        raise AuthorizationDenied(
            "the authorization was declined at Fortnox"
            if error == "access_denied"
            else f"Fortnox returned {error[:60]!r}",
            extra={"fortnox_error": error[:60]},
        )
    if not code:
        raise Unprocessable("code is required", loc=["body", "code"], code="validation_error")
    fx = effective_fortnox_settings(settings)
    _require_configured(fx)
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    try:
        try:
            tokens = await oauth.exchange_code(code, state_row.redirect_uri)
        except FortnoxAuthError as exc:
            if exc.error == "invalid_grant":
                raise Unprocessable(
                    "Fortnox refused the authorization code (expired, used or for another redirect URI)",
                    loc=["body", "code"],
                    code="authorization_code_invalid",
                ) from None
            raise FortnoxUpstream(f"Fortnox refused the code exchange ({exc.error or 'error'})") from None
        except FortnoxError:
            raise FortnoxUpstream(
                "Fortnox did not answer the code exchange; try again", code="fortnox_unavailable"
            ) from None
        provider = InMemoryTokenProvider(oauth, tokens)
        info: CompanyInformation | None = None
        async with FortnoxClient(
            settings=fx,
            token_provider=provider,
            limiter=build_limiter(settings, redis, company_id),
            transport=transport,
        ) as client:
            try:
                info = await client.company_information()
            except FortnoxError as exc:  # the connection is still good without a name
                log.warning("fortnox.company_information.failed", company_id=str(company_id), error=str(exc))
        tokens = provider.tokens
    finally:
        await oauth.aclose()

    repo = FortnoxConnectionRepository(session)
    connection = await repo.for_company_locked(company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS)
    replaced: TokenSet | None = None
    if connection is None:
        connection = FortnoxConnection(id=uuid.uuid4(), company_id=company_id)
        session.add(connection)
    elif connection.secrets is not None:
        with contextlib.suppress(AppError, DecryptionError):  # unreadable old tokens: nothing to revoke
            replaced = open_tokens(_box(settings), connection)
    connection.status = FortnoxConnectionStatus.active
    connection.secrets = seal_tokens(_box(settings), connection.id, tokens)
    connection.access_expires_at = tokens.expires_at
    connection.scopes = tokens.scope or fx.scopes
    connection.tenant_id = _tenant_id(tokens.access_token, info)
    if info is not None:
        connection.fortnox_company_name = info.company_name or None
        connection.org_number = info.organization_number or None
    connection.connected_at = now
    connection.last_used_at = now
    connection.expires_at = now + dt.timedelta(days=settings.fortnox.validity_days)
    connection.last_refreshed_at = None
    connection.last_error = None
    await session.flush()
    await FortnoxTodoRepository(session).resolve_expiring(company_id, now=now)
    await session.flush()
    if replaced is not None and replaced.refresh_token != tokens.refresh_token:
        # a reconnect while connected: the previous grant is of no further use, so it must not stay valid
        await _revoke_quietly(fx, transport, company_id, replaced.refresh_token)
    log.info("fortnox.connected", company_id=str(company_id))
    return connection


async def _revoke_quietly(
    fx: FortnoxSettings, transport: httpx.AsyncBaseTransport | None, company_id: uuid.UUID, refresh_token: str
) -> None:
    """Revoke a refresh token at Fortnox, best effort (a failure is logged, never raised)."""
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    try:
        await oauth.revoke(refresh_token)
    except FortnoxError as exc:
        log.warning("fortnox.revoke.failed", company_id=str(company_id), error=type(exc).__name__)
    finally:
        await oauth.aclose()


async def get_connection(session: AsyncSession, company_id: uuid.UUID) -> FortnoxConnection | None:
    return await FortnoxConnectionRepository(session).for_company(company_id)


async def disconnect(
    session: AsyncSession,
    *,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
) -> None:
    """Revoke the refresh token at Fortnox (best effort), delete the tokens here, status ``revoked``."""
    repo = FortnoxConnectionRepository(session)
    connection = await repo.for_company_locked(company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS)
    if connection is None:
        return
    if connection.secrets is not None:
        try:
            tokens = open_tokens(_box(settings), connection)
        except (AppError, DecryptionError) as exc:
            log.warning("fortnox.revoke.failed", company_id=str(company_id), error=type(exc).__name__)
        else:
            await _revoke_quietly(
                effective_fortnox_settings(settings), transport, company_id, tokens.refresh_token
            )
    connection.status = FortnoxConnectionStatus.revoked
    connection.secrets = None
    connection.access_expires_at = None
    connection.last_error = None
    await FortnoxTodoRepository(session).resolve_expiring(company_id, now=utcnow())
    await session.flush()
    log.info("fortnox.disconnected", company_id=str(company_id))


async def financial_years(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
) -> list[FinancialYear]:
    """Fortnox's financial years. Does not renew the validity (only imports and exports do)."""
    with translate_fortnox_errors():
        async with open_client(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            company_id=company_id,
            transport=transport,
        ) as client:
            return await client.financial_years()


async def voucher_series(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    financial_year_id: int,
) -> list[VoucherSeries]:
    """The voucher series of one financial year. Does not renew the validity."""
    with translate_fortnox_errors():
        async with open_client(
            settings=settings,
            sessionmaker=sessionmaker,
            redis=redis,
            company_id=company_id,
            transport=transport,
        ) as client:
            return await client.voucher_series(financial_year_id)


# -- the scheduled refresh and the expiry warning -----------------------------------------------------


async def upsert_expiring_todo(session: AsyncSession, company_id: uuid.UUID, expires_at: dt.datetime) -> None:
    repo = FortnoxTodoRepository(session)
    todo = await repo.open_expiring(company_id)
    data = {"expires_at": _aware(expires_at).isoformat()}
    if todo is None or todo.data != data:
        await repo.upsert_expiring(company_id, data)


REFRESH_AHEAD = dt.timedelta(minutes=65)
"""The hourly cron refreshes access tokens that would expire before its next run."""


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
    box = _box(settings)
    fx = effective_fortnox_settings(settings)
    to_revoke: TokenSet | None = None
    to_refresh: TokenSet | None = None
    async with session_scope(sessionmaker) as session:
        connection = await FortnoxConnectionRepository(session).for_company_locked(
            company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS
        )
        if connection is None or connection.status != FortnoxConnectionStatus.active:
            return "skipped"
        expires_at = _aware(connection.expires_at)
        if now > expires_at:
            to_revoke = open_tokens(box, connection) if connection.secrets is not None else None
            connection.status = FortnoxConnectionStatus.expired
            connection.secrets = None
            connection.access_expires_at = None
            await upsert_expiring_todo(session, company_id, expires_at)
        else:
            if expires_at - now <= dt.timedelta(days=settings.fortnox.expiry_warning_days):
                await upsert_expiring_todo(session, company_id, expires_at)
            else:
                await FortnoxTodoRepository(session).resolve_expiring(company_id, now=now)
            access_expires = connection.access_expires_at
            if connection.secrets is not None and (
                access_expires is None or _aware(access_expires) - now <= REFRESH_AHEAD
            ):
                to_refresh = open_tokens(box, connection)
    if to_revoke is not None:
        log.info("fortnox.connection.expired", company_id=str(company_id))
        if fx.client_id and fx.client_secret is not None:
            oauth = FortnoxOAuth(settings=fx, transport=transport)
            try:
                await oauth.revoke(to_revoke.refresh_token)
            except FortnoxError as exc:
                log.warning("fortnox.revoke.failed", company_id=str(company_id), error=type(exc).__name__)
            finally:
                await oauth.aclose()
        return "expired"
    if to_refresh is None:
        return "ok"
    _require_configured(fx)
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


__all__ = [
    "DbTokenProvider",
    "InProcessLimiter",
    "build_limiter",
    "connection_status",
    "effective_fortnox_settings",
    "maintain_connection",
    "open_client",
    "renew",
    "translate_fortnox_errors",
]
