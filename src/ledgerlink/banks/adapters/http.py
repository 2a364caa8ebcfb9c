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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import parse_qsl, urlsplit

import httpx

from ledgerlink.banks.adapters.base import (
    AdapterError,
    AuthorizationStatus,
    BankTransaction,
    BankUnavailable,
    CertificateInvalid,
    ConnectionContext,
    ConsentExpired,
    ConsentInfo,
    ConsentStatus,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
)
from ledgerlink.banks.adapters.keepalive import KeptAliveTransport
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

#: Query parameters of a request.
Query = dict[str, Any]
#: One request of a paged read: the URL and its query params (None: the URL carries its own query).
PageRequest = tuple[str, Query | None]


@dataclass(frozen=True, slots=True)
class Page:
    """Where a page of a transactions read stands: its request, its number (from 0) and how many rows
    the read had before it (a row's position names it in errors)."""

    request: PageRequest
    number: int
    rows_before: int


class EmptyWindow(Exception):
    """A bank's error answer that means "no rows in this window" (ICA Banken's "Transaction not found"):
    a family's ``map_error_response`` raises it and :meth:`HttpAdapter.fetch_transactions` reads it as
    the end of the rows. It never leaves the adapter."""


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


def token_expires_at(bank_id: str, token: Any, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When an OAuth token answer's access token ends (``expires_in`` seconds from ``now``); None when
    the answer states no lifetime, InvalidResponse when it states one we cannot read."""
    expires_in = token.get("expires_in") if isinstance(token, dict) else None
    if expires_in in (None, ""):
        return None
    try:
        return (now or utcnow()) + dt.timedelta(seconds=int(expires_in))
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(
            bank_id, f"unparseable expires_in {str(expires_in)[:20]!r}", "expires_in"
        ) from exc


def poll_interval_seconds(milliseconds: Any, default: int = 2) -> int:
    """A decoupled-SCA poll delay the bank states in milliseconds, in whole seconds (at least one)."""
    if isinstance(milliseconds, int) and not isinstance(milliseconds, bool) and milliseconds > 0:
        return max(1, milliseconds // 1000)
    return default


def split_link(href: str) -> tuple[str, dict[str, Any]]:
    """A link as (URL without its query, the query as params): :meth:`HttpAdapter.request` passes
    params, and httpx then replaces a query that is part of the URL itself."""
    parts = urlsplit(href)
    url = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return url, dict(parse_qsl(parts.query, keep_blank_values=True))


def date_windows(date_from: dt.date, date_to: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """Consecutive inclusive ranges of at most ``days`` days covering the window, oldest first
    (for banks that serve a limited range per transactions call)."""
    out = []
    start = date_from
    while start <= date_to:
        end = min(date_to, start + dt.timedelta(days=days - 1))
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


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
    #: Most pages one transactions query may take before the answer counts as unreadable.
    max_pages: ClassVar[int] = 500
    #: The field named when paging does not end (a page that links back, or too many pages).
    next_page_field: ClassVar[str] = "next"
    #: Longest range one transactions query may cover (Handelsbanken: 92 days, Crosskey: 90); a longer
    #: window is read in consecutive parts, oldest first. None: the whole window in one query.
    window_days: ClassVar[int | None] = None

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
        #: The TLS context of the real network (None when a test injects a transport; a kept-alive
        #: transport carries the bank's own).
        self.tls: ssl.SSLContext | None = (
            tls_context(entry.id, endpoint)
            if transport is None
            else transport.tls
            if isinstance(transport, KeptAliveTransport)
            else None
        )
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

    def today(self) -> dt.date:
        """Hook: the bank-local date today (tests move it)."""
        return today_stockholm()

    def fixed_params(self) -> dict[str, str]:
        """Hook: query parameters on every call (Swedbank's ``bic`` and ``app-id``)."""
        return {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Renew short-lived tokens before use. Banks without token rotation return them unchanged."""
        return credentials

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> AuthorizationStatus:
        """Hook: poll a decoupled SCA. A redirect-only bank keeps this: there is nothing to poll."""
        raise BankUnavailable(self.bank_id, "decoupled SCA is not offered by this bank")

    def refresh_token_of(self, credentials: Credentials) -> str:
        """The refresh token to renew the access with; ReauthRequired when there is none."""
        if not credentials.refresh_token:
            raise ReauthRequired(self.bank_id, "no refresh token")
        return credentials.refresh_token

    async def probe_consent(
        self, valid_until: dt.date | None, probe: Callable[[], Awaitable[Any]]
    ) -> ConsentInfo:
        """Consent status of a bank without a consent resource: expired past the validity the bank
        granted, else what one authorised read (``probe``) says (expired, revoked or valid)."""
        if valid_until is not None and valid_until < self.today():
            return ConsentInfo(status=ConsentStatus.expired, valid_until=valid_until)
        try:
            await probe()
        except ConsentExpired:
            return ConsentInfo(status=ConsentStatus.expired, valid_until=valid_until)
        except ReauthRequired:
            return ConsentInfo(status=ConsentStatus.revoked, valid_until=valid_until)
        return ConsentInfo(status=ConsentStatus.valid, valid_until=valid_until)

    # -- transactions: one paged read per window ----------------------------------------------------

    async def fetch_transactions(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        account_id: str,
        date_from: dt.date,
        date_to: dt.date,
    ) -> Sequence[BankTransaction]:
        """Booked and pending rows of the window, every page, in the bank's order. A family says where
        a query starts (:meth:`transactions_request`), reads a resource (:meth:`get_resource`) and a page
        (:meth:`read_page`: its rows and the next page's request, None after the last)."""
        date_from, date_to = self.transaction_window(ctx, credentials, date_from, date_to)
        days = self.window_days
        out: list[BankTransaction] = []
        for start, end in date_windows(date_from, date_to, days) if days else [(date_from, date_to)]:
            first = self.transactions_request(ctx, account_id, start, end)
            out.extend(await self._read_query(ctx, credentials, first, len(out)))
        return out

    async def _read_query(
        self, ctx: ConnectionContext, credentials: Credentials, request: PageRequest, rows_before: int
    ) -> list[BankTransaction]:
        """Every page of one transactions query; a page that links back, or more than ``max_pages``
        pages, is InvalidResponse naming ``next_page_field``."""
        out: list[BankTransaction] = []
        seen = {_page_key(request)}
        for number in range(self.max_pages):
            try:
                body = await self.get_resource(ctx, credentials, *request)
            except EmptyWindow:
                return out
            rows, following = self.read_page(ctx, body, Page(request, number, rows_before + len(out)))
            out.extend(rows)
            if following is None:
                return out
            if _page_key(following) in seen:
                self.fail("paging does not terminate", self.next_page_field)
            seen.add(_page_key(following))
            request = following
        self.fail(f"more than {self.max_pages} pages", self.next_page_field)

    def transaction_window(
        self, ctx: ConnectionContext, credentials: Credentials, date_from: dt.date, date_to: dt.date
    ) -> tuple[dt.date, dt.date]:
        """Hook: the window actually asked for (a bank may serve only part of the requested history, or
        refuse it before any call)."""
        return date_from, date_to

    def transactions_request(
        self, ctx: ConnectionContext, account_id: str, date_from: dt.date, date_to: dt.date
    ) -> PageRequest:
        """Hook: the first page's request of a transactions query over ``date_from``..``date_to``."""
        raise NotImplementedError

    async def get_resource(
        self, ctx: ConnectionContext, credentials: Credentials, url: str, params: Query | None = None
    ) -> Any:
        """Hook: one authorised account-information read for this connection (the decoded JSON body);
        the family adds its headers and token."""
        raise NotImplementedError

    def read_page(
        self, ctx: ConnectionContext, body: Any, page: Page
    ) -> tuple[list[BankTransaction], PageRequest | None]:
        """Hook: the page's rows and the next page's request (None after the last page)."""
        raise NotImplementedError

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

    def required_code(self, code: str | None) -> str:
        """The authorization code of a redirect login; ReauthRequired when the bank sent none (the
        user cancelled or was refused at the bank)."""
        if not code:
            raise ReauthRequired(self.bank_id, "the bank returned no authorisation code")
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
    url, merged = split_link(url)
    merged.update(params or {})
    merged.update(fixed)
    return url, merged


def _page_key(request: PageRequest) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A page's identity for loop detection: its path and sorted query, wherever the query was given."""
    url = httpx.URL(request[0], params=request[1]) if request[1] is not None else httpx.URL(request[0])
    return url.path, tuple(sorted(url.params.multi_items()))


def _path(url: str) -> str:
    return url.split("?", 1)[0]


__all__ = [
    "AdapterError",
    "EmptyWindow",
    "HttpAdapter",
    "Page",
    "PageRequest",
    "Query",
    "date_windows",
    "new_request_id",
    "poll_interval_seconds",
    "retry_at_from",
    "split_link",
    "today_stockholm",
    "token_expires_at",
    "utcnow",
]
