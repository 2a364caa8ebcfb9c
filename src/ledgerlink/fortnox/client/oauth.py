"""Fortnox OAuth2 (authorization-code flow with rotating, single-use refresh tokens).

:class:`FortnoxOAuth` wraps authlib's ``AsyncOAuth2Client``: it builds the authorize URL and talks to
the token and revoke endpoints with HTTP Basic client authentication. It keeps no token state: the
caller persists every :class:`TokenSet` (a refresh returns a new refresh token and invalidates the old
one, so the new pair must be stored before the new access token is used).

:class:`TokenProvider` is what :class:`~ledgerlink.fortnox.client.api.FortnoxClient` asks for tokens;
:class:`InMemoryTokenProvider` implements it for tests, benchmarks and scripts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from ledgerlink.config import FortnoxSettings
from ledgerlink.fortnox.client.scopes import requested_scopes
from ledgerlink.fortnox.errors import FortnoxAuthError, FortnoxError, FortnoxTransientError

MAX_REFRESH_MARGIN_SECONDS = 60.0
REFRESH_MARGIN_SHARE = 0.10
"""An access token is renewed this early: 60 s, or 10 % of its lifetime when that is shorter (a token
living 30 s would otherwise count as expired from birth and every call would refresh it)."""

# OAuth errors that mean "this grant is dead, ask the user again".
_REAUTH_ERRORS = frozenset(
    {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied", "invalid_scope"}
)


@dataclass(frozen=True, slots=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: dt.datetime
    """Aware UTC."""
    scope: str = ""
    lifetime_seconds: float = 3600.0
    """``expires_in`` as Fortnox granted it (what the refresh margin is relative to)."""

    def __repr__(self) -> str:  # never print tokens
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"

    def expires_within(self, seconds: float, *, now: dt.datetime | None = None) -> bool:
        now = now or dt.datetime.now(dt.UTC)
        return self.expires_at - now <= dt.timedelta(seconds=seconds)

    @property
    def refresh_margin_seconds(self) -> float:
        return min(MAX_REFRESH_MARGIN_SECONDS, REFRESH_MARGIN_SHARE * max(self.lifetime_seconds, 0.0))

    def needs_refresh(self, *, now: dt.datetime | None = None) -> bool:
        """True once the access token is within its refresh margin of expiring (or past it)."""
        return self.expires_within(self.refresh_margin_seconds, now=now)

    @classmethod
    def from_token_response(cls, data: Mapping[str, Any], *, now: dt.datetime | None = None) -> TokenSet:
        now = now or dt.datetime.now(dt.UTC)
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        if not access or not refresh:
            raise FortnoxAuthError("token response without access_token/refresh_token")
        try:
            expires_in = float(data.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_in = 3600.0
        return cls(
            access_token=str(access),
            refresh_token=str(refresh),
            expires_at=now + dt.timedelta(seconds=expires_in),
            scope=str(data.get("scope") or ""),
            lifetime_seconds=expires_in,
        )


class FortnoxOAuth:
    """Authorize URL, code exchange, refresh and revoke against ``settings.auth_base_url``."""

    def __init__(
        self,
        *,
        settings: FortnoxSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not settings.client_id or settings.client_secret is None:
            raise FortnoxError("Fortnox client_id/client_secret are not configured")
        self.settings = settings
        self.base_url = settings.auth_base_url.rstrip("/")
        self._client = AsyncOAuth2Client(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            token_endpoint_auth_method="client_secret_basic",
            revocation_endpoint_auth_method="client_secret_basic",
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds)),
            transport=transport,
        )

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    async def aclose(self) -> None:
        await self._client.aclose()

    def authorization_url(self, redirect_uri: str, state: str) -> str:
        url, _ = self._client.create_authorization_url(
            f"{self.base_url}/auth",
            state=state,
            redirect_uri=redirect_uri,
            scope=requested_scopes(self.settings.scopes),
            access_type="offline",
            response_type="code",
        )
        return str(url)

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        data = await self._call(
            self._client.fetch_token(
                self.token_url, grant_type="authorization_code", code=code, redirect_uri=redirect_uri
            ),
            "token",
        )
        return TokenSet.from_token_response(data)

    async def refresh(self, refresh_token: str) -> TokenSet:
        """A new pair; ``refresh_token`` is invalid afterwards (even if this call then fails to return)."""
        data = await self._call(
            self._client.refresh_token(self.token_url, refresh_token=refresh_token), "token"
        )
        return TokenSet.from_token_response(data)

    async def revoke(self, refresh_token: str) -> None:
        response = await self._call(
            self._client.revoke_token(
                f"{self.base_url}/revoke", token=refresh_token, token_type_hint="refresh_token"
            ),
            "revoke",
        )
        if isinstance(response, httpx.Response) and response.status_code >= 400:
            error = _oauth_error(response)
            if response.status_code >= 500:
                raise FortnoxTransientError(
                    f"revoke failed with HTTP {response.status_code}",
                    endpoint="revoke",
                    status=response.status_code,
                )
            if error != "invalid_grant":  # an already invalid token is as revoked as it gets
                raise FortnoxAuthError(
                    f"revoke refused ({error or response.status_code})",
                    error=error,
                    endpoint="revoke",
                    status=response.status_code,
                )

    async def _call(self, call: Awaitable[Any], endpoint: str) -> Any:
        try:
            return await call
        except OAuthError as exc:
            error = str(getattr(exc, "error", "") or "")
            description = str(getattr(exc, "description", "") or "")
            if error in _REAUTH_ERRORS:
                raise FortnoxAuthError(
                    f"Fortnox rejected the grant: {error}: {description}".rstrip(": "),
                    error=error,
                    endpoint=endpoint,
                ) from None
            raise FortnoxError(f"OAuth error from Fortnox: {error}", endpoint=endpoint) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status >= 500 or status == 429:
                raise FortnoxTransientError(
                    f"token endpoint answered HTTP {status}", endpoint=endpoint, status=status
                ) from None
            raise FortnoxAuthError(
                f"token endpoint answered HTTP {status}", endpoint=endpoint, status=status
            ) from None
        except (httpx.TransportError, ValueError) as exc:
            raise FortnoxTransientError(
                f"token endpoint unreachable or unreadable: {type(exc).__name__}", endpoint=endpoint
            ) from None


def _oauth_error(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("error")) if isinstance(data, dict) and data.get("error") else None


class TokenProvider(Protocol):
    """Where :class:`FortnoxClient` gets its bearer token.

    ``refresh_access_token(rejected_token)`` is called after Fortnox answered 401 to
    ``rejected_token``. An implementation refreshes at most once per rejected token (under a lock),
    stores the new pair before returning the new access token, and, when ``rejected_token`` is no
    longer the current token (someone refreshed meanwhile), just returns the current one.
    Raises :class:`FortnoxAuthError` when the connection needs a new authorization.
    """

    async def get_access_token(self) -> str: ...

    async def refresh_access_token(self, rejected_token: str) -> str: ...


class InMemoryTokenProvider:
    """A :class:`TokenProvider` holding one :class:`TokenSet` in memory, with the same single-use
    refresh semantics as the database-backed one: one refresh at a time, never an old refresh token.

    ``on_refresh`` (optional) is awaited with every new pair, e.g. to persist it.
    """

    def __init__(
        self,
        oauth: FortnoxOAuth,
        tokens: TokenSet,
        *,
        on_refresh: Callable[[TokenSet], Awaitable[None]] | None = None,
    ) -> None:
        self._oauth = oauth
        self._tokens = tokens
        self._lock = asyncio.Lock()
        self.on_refresh = on_refresh
        self.refresh_count = 0

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    async def get_access_token(self) -> str:
        if self._tokens.needs_refresh():
            return await self.refresh_access_token(self._tokens.access_token)
        return self._tokens.access_token

    async def refresh_access_token(self, rejected_token: str) -> str:
        async with self._lock:
            current = self._tokens
            if current.access_token != rejected_token and not current.needs_refresh():
                return current.access_token
            new = await self._oauth.refresh(current.refresh_token)
            self._tokens = new
            self.refresh_count += 1
            if self.on_refresh is not None:
                await self.on_refresh(new)
            return new.access_token


__all__ = ["FortnoxOAuth", "InMemoryTokenProvider", "TokenProvider", "TokenSet"]
