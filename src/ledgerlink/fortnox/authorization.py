"""Connecting Fortnox (OAuth2 authorization code) and disconnecting it.

Binding the code to the login that asked for it. Fortnox documents no PKCE: its authorize endpoint
takes ``client_id``, ``response_type``, ``state``, ``scope``, ``redirect_uri``, ``access_type`` and
``account_type``, its token endpoint ``grant_type``, ``code`` and ``redirect_uri``, and nothing says a
``code_challenge`` would be checked; sending one that Fortnox ignores would only look like protection.
What binds a code here instead:

* Fortnox is a confidential client: the code is redeemed only by this server, with the client secret
  (HTTP Basic) and the exact ``redirect_uri`` of the request, within 10 minutes, once.
* The ``state`` is random, single use, valid 15 minutes, and stored only as a hash of the company, the
  user who started the login (the JWT ``sub``) and the state: a callback from another company or
  another user of the same company matches nothing and is refused (400 ``state_mismatch``), so a code
  obtained in one user's login cannot be completed in another's session.
* The redirect URI must be on the server's allow-list, so codes are only ever delivered to our frontends.

What PKCE would add on top, a code stolen from the redirect and replayed by an attacker together with
a state of the attacker's own login, needs the victim's code from an allow-listed HTTPS redirect
within its 10 minutes; the residual risk is accepted until Fortnox supports PKCE.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.config import FortnoxSettings, Settings
from ledgerlink.db.base import utcnow
from ledgerlink.errors import AppError, Unprocessable
from ledgerlink.fortnox.client import (
    CompanyInformation,
    FortnoxClient,
    FortnoxOAuth,
    InMemoryTokenProvider,
    TokenSet,
)
from ledgerlink.fortnox.client.scopes import requested_scopes
from ledgerlink.fortnox.errors import AuthorizationDenied, FortnoxAuthError, FortnoxError, FortnoxUpstream
from ledgerlink.fortnox.repository import OAUTH_PURPOSE, FortnoxConnectionRepository, FortnoxTodos
from ledgerlink.fortnox.schemas import FortnoxAuthorizationCallback
from ledgerlink.fortnox.settings import build_limiter, effective_fortnox_settings, require_configured
from ledgerlink.fortnox.token_store import (
    ROW_LOCK_TIMEOUT_MS,
    clear_tokens,
    open_tokens,
    seal_tokens,
    tenant_id_of,
)
from ledgerlink.logging import get_logger
from ledgerlink.models.fortnox import FortnoxConnection, FortnoxConnectionStatus
from ledgerlink.oauth.errors import StateMismatch
from ledgerlink.oauth.service import check_redirect_uri, consume_state, issue_state
from ledgerlink.runtime import ServiceEnv
from ledgerlink.security import DecryptionError, SecretBox

log = get_logger(__name__)


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
    login: str | None = None,
    now: dt.datetime | None = None,
) -> FortnoxAuthorization:
    """A single-use ``state`` (its hash stored, bound to the company and ``login``, 15 minutes) and
    Fortnox's authorize URL (``access_type=offline``, every scope the client's endpoints need)."""
    check_redirect_uri(settings, redirect_uri)
    fx = effective_fortnox_settings(settings)
    require_configured(fx)
    state = await issue_state(
        session,
        company_id=company_id,
        purpose=OAUTH_PURPOSE,
        redirect_uri=redirect_uri,
        login=login,
        now=now,
    )
    oauth = FortnoxOAuth(settings=fx)
    try:
        url = oauth.authorization_url(redirect_uri, state)
    finally:
        await oauth.aclose()
    return FortnoxAuthorization(authorization_url=url, state=state)


async def _burn_after_failure(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    state: str,
    login: str | None,
    now: dt.datetime,
) -> None:
    """The callback failed after burning the state in the request's unit of work, which the edge now
    rolls back: burn it again in a transaction of its own, so a state is never usable twice. The
    request's transaction is rolled back first (SQLite has one writer: a second session would wait for
    it and fail with "database is locked")."""
    await session.rollback()
    async with sessionmaker() as own:
        with contextlib.suppress(StateMismatch):
            await consume_state(
                own, state, company_id=company_id, purpose=OAUTH_PURPOSE, login=login, now=now
            )
        await own.commit()


async def complete_authorization(
    session: AsyncSession,
    env: ServiceEnv,
    company_id: uuid.UUID,
    callback: FortnoxAuthorizationCallback,
    *,
    login: str | None = None,
) -> FortnoxConnection:
    """The callback (``code`` and ``state``, or ``error`` and ``state``): check and burn the state,
    exchange the code, read the company, store the tokens.

    The state is burnt in the request's unit of work (with the idempotency record and the connection,
    one writer in the embedded default); if anything then fails it is burnt on its own, so it stays used."""
    now = utcnow()
    state_row = await consume_state(
        session, callback.state, company_id=company_id, purpose=OAUTH_PURPOSE, login=login, now=now
    )
    try:
        return await _connect(
            session,
            settings=env.settings,
            redis=env.redis,
            transport=env.transports.get("fortnox"),
            company_id=company_id,
            redirect_uri=state_row.redirect_uri,
            code=callback.code,
            error=callback.error,
            now=now,
        )
    except Exception:
        await _burn_after_failure(session, env.sessionmaker, company_id, callback.state, login, now)
        raise


async def _connect(
    session: AsyncSession,
    *,
    settings: Settings,
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    redirect_uri: str,
    code: str | None,
    error: str | None,
    now: dt.datetime,
) -> FortnoxConnection:
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
    require_configured(fx)
    tokens, info = await _exchange(settings, fx, redis, transport, company_id, code, redirect_uri)
    box = SecretBox.from_settings(settings.security)
    repo = FortnoxConnectionRepository(session)
    connection = await repo.for_company_locked(company_id, lock_timeout_ms=ROW_LOCK_TIMEOUT_MS)
    replaced: TokenSet | None = None
    if connection is None:
        connection = FortnoxConnection(id=uuid.uuid4(), company_id=company_id)
        session.add(connection)
    elif connection.secrets is not None:
        with contextlib.suppress(AppError, DecryptionError):  # unreadable old tokens: nothing to revoke
            replaced = open_tokens(box, connection)
    connection.status = FortnoxConnectionStatus.active
    connection.secrets = seal_tokens(box, connection.id, tokens)
    connection.access_expires_at = tokens.expires_at
    connection.scopes = tokens.scope or requested_scopes(fx.scopes)
    connection.tenant_id = tenant_id_of(tokens.access_token, info)
    if info is not None:
        connection.fortnox_company_name = info.company_name or None
        connection.org_number = info.organization_number or None
    connection.connected_at = now
    connection.last_used_at = now
    connection.expires_at = now + dt.timedelta(days=settings.fortnox.validity_days)
    connection.last_refreshed_at = None
    connection.last_error = None
    await session.flush()
    await FortnoxTodos(session).resolve_expiring(company_id)
    await session.flush()
    if replaced is not None and replaced.refresh_token != tokens.refresh_token:
        # a reconnect while connected: the previous grant is of no further use, so it must not stay valid
        await revoke_quietly(fx, transport, company_id, replaced.refresh_token)
    log.info("fortnox.connected", company_id=str(company_id))
    return connection


async def _exchange(
    settings: Settings,
    fx: FortnoxSettings,
    redis: Any | None,
    transport: httpx.AsyncBaseTransport | None,
    company_id: uuid.UUID,
    code: str,
    redirect_uri: str,
) -> tuple[TokenSet, CompanyInformation | None]:
    """The code exchange and the company's information (a connection is still good without a name)."""
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    try:
        try:
            tokens = await oauth.exchange_code(code, redirect_uri)
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
            except FortnoxError as exc:
                log.warning("fortnox.company_information.failed", company_id=str(company_id), error=str(exc))
        return provider.tokens, info
    finally:
        await oauth.aclose()


async def revoke_quietly(
    fx: FortnoxSettings, transport: httpx.AsyncBaseTransport | None, company_id: uuid.UUID, refresh_token: str
) -> None:
    """Revoke a refresh token at Fortnox, best effort (a failure is logged, never raised)."""
    if not fx.client_id or fx.client_secret is None:
        return
    oauth = FortnoxOAuth(settings=fx, transport=transport)
    try:
        await oauth.revoke(refresh_token)
    except FortnoxError as exc:
        log.warning("fortnox.revoke.failed", company_id=str(company_id), error=type(exc).__name__)
    finally:
        await oauth.aclose()


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
            tokens = open_tokens(SecretBox.from_settings(settings.security), connection)
        except (AppError, DecryptionError) as exc:
            log.warning("fortnox.revoke.failed", company_id=str(company_id), error=type(exc).__name__)
        else:
            await revoke_quietly(
                effective_fortnox_settings(settings), transport, company_id, tokens.refresh_token
            )
    clear_tokens(connection, FortnoxConnectionStatus.revoked)
    connection.last_error = None
    await FortnoxTodos(session).resolve_expiring(company_id)
    await session.flush()
    log.info("fortnox.disconnected", company_id=str(company_id))


__all__ = [
    "FortnoxAuthorization",
    "complete_authorization",
    "disconnect",
    "revoke_quietly",
    "start_authorization",
]
