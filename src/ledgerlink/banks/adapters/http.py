"""Shared HTTP plumbing for adapters: one client per adapter, transport errors and generic statuses
mapped onto the adapter error family, and strict parsers that name the bank and the field.

A protocol family (Berlin Group, OBIE, aggregator) subclasses :class:`HttpAdapter` and overrides
:meth:`HttpAdapter.map_error_response` for the error bodies it knows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import ssl
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import parse_qsl, urlsplit

import httpx

from ledgerlink.banks.adapters.base import (
    AdapterError,
    BankUnavailable,
    CertificateInvalid,
    ConnectionContext,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
)
from ledgerlink.banks.adapters.parsing import PayloadReader
from ledgerlink.banks.adapters.signing import (
    HttpSignatureProfile,
    RequestSigner,
    SigningAlg,
    looks_like_private_key,
    sign_jwt,
    signer_for,
)
from ledgerlink.banks.adapters.tls import probe_refusal, tls_context, tls_failure
from ledgerlink.clock import today_stockholm

if TYPE_CHECKING:
    from ledgerlink.banks.adapters.registry import BankEntry
    from ledgerlink.config import BankEndpointSettings

DEFAULT_RETRY_AFTER = dt.timedelta(hours=1)

#: Signs JWT claims (request objects, application JWTs) and returns the compact JWT.
JwtSigner = Callable[[dict[str, Any]], str]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_request_id() -> str:
    return str(uuid.uuid4())


def retry_at_from(response: httpx.Response, *, default: dt.timedelta = DEFAULT_RETRY_AFTER) -> dt.datetime:
    """When to try again after a 429: ``Retry-After`` (seconds or HTTP date), else ``default`` from now."""
    value = response.headers.get("Retry-After") or response.headers.get("X-RateLimit-Reset")
    now = utcnow()
    if value:
        value = value.strip()
        if value.isdigit():
            return now + dt.timedelta(seconds=int(value))
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return now + default


class HttpAdapter(PayloadReader):
    """Base for adapters that talk HTTP. Requests have timeouts; retries belong to the caller.

    The strict payload checks (``require``, ``parse_amount``, ``parse_date``...) come from
    :class:`~ledgerlink.banks.adapters.parsing.PayloadReader`; requests may be signed by a
    :class:`~ledgerlink.banks.adapters.signing.RequestSigner` (``self.signer``) built from the
    bank's QSealC settings (a family sets ``signature_profile``).

    The client's TLS context carries the bank's QWAC when one is configured (:mod:`.tls`); a refused
    handshake is :class:`CertificateInvalid`, never a retryable connection error."""

    #: How this family signs requests when a QSealC is configured (None: it does not sign).
    signature_profile: ClassVar[HttpSignatureProfile | None] = None

    def __init__(
        self,
        entry: BankEntry,
        endpoint: BankEndpointSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.entry = entry
        self.bank_id = entry.id
        self.endpoint = endpoint
        base_url = endpoint.base_url or entry.default_base_url
        if not base_url:
            raise BankUnavailable(entry.id, "no base URL configured")
        self.base_url = base_url.rstrip("/")
        #: The TLS context of the real network (None when a test injects a transport).
        self.tls: ssl.SSLContext | None = tls_context(entry.id, endpoint) if transport is None else None
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(endpoint.timeout_seconds, connect=min(10.0, endpoint.timeout_seconds)),
            transport=transport,
            verify=self.tls if self.tls is not None else True,
        )
        profile = self.signature_profile
        self.signer: RequestSigner | None = signer_for(entry.id, endpoint, profile) if profile else None
        self.setup()

    def setup(self) -> None:
        """Hook: a family's own state, set up once the entry, endpoint settings and client exist."""

    def jwt_signer(self, alg: SigningAlg, what: str) -> JwtSigner | None:
        """Signs JWT claims with the PEM private key configured as ``client_secret`` (kid = ``app_id``);
        None when no key is configured. A deployment with an HSM/KMS replaces the callable."""
        secret = self.endpoint.client_secret.get_secret_value() if self.endpoint.client_secret else None
        if secret is None or not looks_like_private_key(secret):
            return None
        key: str = secret

        def sign(claims: dict[str, Any]) -> str:
            try:
                return sign_jwt(claims, key, kid=self.endpoint.app_id, alg=alg)
            except ValueError as exc:
                raise BankUnavailable(self.bank_id, f"{what} is unusable") from exc

        return sign

    def fixed_params(self) -> dict[str, str]:
        """Hook: query parameters on every call (Swedbank's ``bic`` and ``app-id``)."""
        return {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Renew short-lived tokens before use. Banks without token rotation return them unchanged."""
        return credentials

    # -- requests ---------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        """Send one request (signed when the bank wants it); map transport failures and error statuses
        onto the adapter errors."""
        if fixed := self.fixed_params():
            url, params = _with_fixed_params(url, params, fixed)
        request = self.client.build_request(
            method,
            url,
            headers=headers,
            # None, not {}: httpx 0.28 replaces a URL's own query (a next-page href) with any params dict
            params={k: v for k, v in (params or {}).items() if v is not None} or None,
            json=json_body,
            data=data,
        )
        self.sign_request(request)
        try:
            response = await self.client.send(
                request, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT
            )
        except httpx.TimeoutException as exc:
            raise TemporaryFailure(self.bank_id, f"timeout on {method} {_path(url)}") from exc
        except httpx.TransportError as exc:
            if reason := tls_failure(exc) or await self._refused_after_handshake(request, exc):
                raise CertificateInvalid(self.bank_id, f"{reason} on {method} {_path(url)}") from exc
            raise TemporaryFailure(self.bank_id, f"connection error on {method} {_path(url)}") from exc
        if response.status_code >= 400:
            self.map_error_response(response)
            self.raise_generic(response)
        return response

    async def _refused_after_handshake(self, request: httpx.Request, exc: httpx.TransportError) -> str | None:
        """A connection that broke after TLS: did the bank refuse our client certificate? (see
        :func:`~ledgerlink.banks.adapters.tls.probe_refusal`)."""
        broken = isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError)
        if not broken or self.tls is None or request.url.scheme != "https" or not request.url.host:
            return None
        port = request.url.port or 443
        return await asyncio.to_thread(probe_refusal, request.url.host, port, self.tls)

    def code_to_exchange(self, credentials: Credentials, code: str | None) -> str | None:
        """The authorization code a redirect login came back with; None when a decoupled login already
        holds a token (nothing to exchange). A redirect without a code is InvalidResponse."""
        if credentials.access_token and code is None:
            return None
        if not code:
            self.fail("redirect came back without an authorization code", "code")
        return code

    def sign_request(self, request: httpx.Request) -> None:
        """Hook: add the bank's signature headers to a built request (the OBIE family signs with JWS)."""
        if self.signer is not None:
            self.signer.sign(request)

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.decode_json(await self.request("GET", url, **kwargs))

    def decode_json(self, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidResponse(self.bank_id, f"body of {response.request.url.path} is not JSON") from exc

    # -- error mapping ----------------------------------------------------------------------------

    def map_error_response(self, response: httpx.Response) -> None:
        """Hook: raise a specific adapter error for a bank's error body, or return to fall through."""

    def raise_generic(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        path = response.request.url.path
        if status == 429:
            raise RateLimited(self.bank_id, f"rate limited on {path}", retry_at_from(response))
        if status == 401:
            raise ReauthRequired(self.bank_id, f"unauthorised on {path}")
        if status in (502, 503, 504) or status >= 500:
            raise TemporaryFailure(self.bank_id, f"HTTP {status} on {path}")
        raise InvalidResponse(self.bank_id, f"unexpected HTTP {status} on {path}")


def _with_fixed_params(
    url: str, params: dict[str, Any] | None, fixed: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """``fixed`` added to the params; a link's own query is kept (moved into the params, since httpx
    replaces a URL's query with any params given)."""
    parts = urlsplit(url)
    if parts.query:
        url = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    merged: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    merged.update(params or {})
    merged.update(fixed)
    return url, merged


def _path(url: str) -> str:
    return url.split("?", 1)[0]


__all__ = ["AdapterError", "HttpAdapter", "new_request_id", "retry_at_from", "today_stockholm", "utcnow"]
