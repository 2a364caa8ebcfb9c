"""The UK Open Banking (OBIE) v3.1 Account Information adapter shared by Revolut, Danske Bank and
Ålandsbanken (Crosskey).

Flow: a client-credentials token creates an ``account-access-consent``; the user is redirected to the
bank's authorisation endpoint with the consent id as ``openbanking_intent_id`` inside a signed request
object; the returned ``code`` is exchanged for an access/refresh token that reads ``/accounts``,
``/accounts/{id}/balances`` and ``/accounts/{id}/transactions`` (following ``Links.Next``).
A bank module overrides only class attributes and the hooks marked as such.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import urllib.parse
from typing import Any

import httpx

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, ScaMethod
from ledgerlink.banks.adapters.http import (
    HttpAdapter,
    JwtSigner,
    Page,
    PageRequest,
    Query,
    new_request_id,
    token_expires_at,
    utcnow,
)
from ledgerlink.banks.adapters.obie import normalize
from ledgerlink.banks.adapters.signing import (
    SigningAlg,
    detached_jws,
    looks_like_private_key,
    signing_material,
)

RequestObjectSigner = JwtSigner

PERMISSIONS = (
    "ReadAccountsDetail",
    "ReadBalances",
    "ReadTransactionsDetail",
    "ReadTransactionsCredits",
    "ReadTransactionsDebits",
)

# ErrorCodes (OBExternalStatusReason / bank variants) meaning the consent no longer carries access.
CONSENT_ERROR_CODES = frozenset(
    {
        "UK.OBIE.Resource.InvalidConsentStatus",
        "UK.OBIE.Resource.ConsentMismatch",
        "UK.OBIE.Resource.NotFound",
    }
)
# OAuth 2 token-endpoint errors: the user's grant is gone vs. our client is misconfigured.
GRANT_ERRORS = frozenset({"invalid_grant", "access_denied", "consent_required", "login_required"})
CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_scope"})

TOKEN_LEEWAY = dt.timedelta(seconds=30)
#: ``http://openbanking.org.uk/tan`` of the detached JWS: the trust anchor of our signing certificate.
JWS_TRUST_ANCHOR = "openbanking.org.uk"


class _AlreadyGone(base.InvalidResponse):
    """A DELETE answered 404: the resource is already gone (only :meth:`ObieAdapter.revoke` sees it)."""


def _query_time(value: dt.datetime) -> str:
    # OBIE query date-times are UTC without a zone ("ASPSPs must ignore the timezone component").
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


class ObieAdapter(HttpAdapter):
    """OBIE v3.1 AIS. Bank modules set the class attributes and override the hooks they need."""

    #: Path of the AIS resources below ``base_url`` (e.g. ``/open-banking/v3.1/aisp``).
    aisp_path: str = ""
    #: ``x-fapi-financial-id`` of the bank, when it publishes one.
    financial_id: str | None = None
    #: OAuth/OIDC host when ``endpoint.auth_base_url`` is unset (``None`` = the API host).
    default_auth_base_url: str | None = None
    token_path: str = "/token"
    authorize_path: str = "/authorize"
    #: Absolute authorisation URL when it does not live on the auth host (Revolut's consent UI).
    authorize_url_override: str | None = None
    client_credentials_scope: str = "accounts"
    authorize_scope: str = "openid accounts"
    response_type: str = "code id_token"
    permissions: tuple[str, ...] = PERMISSIONS
    #: Whether the bank insists on a signed request object (OBIE FAPI profile: all three do).
    requires_request_object: bool = True
    request_object_alg: SigningAlg = "PS256"
    #: Read each account's balance while listing accounts (one balances read per account).
    balances_in_account_list: bool = True
    next_page_field = "Links.Next"

    def setup(self) -> None:
        auth_base = self.endpoint.auth_base_url or self.default_auth_base_url or self.base_url
        self.auth_base_url = auth_base.rstrip("/")
        self._client_tokens: dict[str, tuple[str, dt.datetime]] = {}
        self._refreshed: dict[str, Credentials] = {}
        #: Hook: signs the authorisation request object (the configured PEM key, kid = ``app_id``).
        self.request_object_signer: RequestObjectSigner | None = self.jwt_signer(
            self.request_object_alg, "request-object signing key"
        )
        #: The QSealC that signs request bodies as a detached JWS (``x-jws-signature``), when set.
        self.jws_material = signing_material(self.bank_id, self.endpoint)

    def sign_request(self, request: httpx.Request) -> None:
        """OBIE: a resource request with a JSON body carries its detached JWS in ``x-jws-signature``
        (token requests are form posts and are not signed)."""
        body = request.read()
        json_body = request.headers.get("content-type", "").startswith("application/json")
        if self.jws_material is None or not body or not json_body:
            return
        request.headers["x-jws-signature"] = detached_jws(
            body,
            self.jws_material,
            kid=self.endpoint.app_id or self.jws_material.key_id,
            issuer=self.endpoint.client_id or self.bank_id,
            trust_anchor=JWS_TRUST_ANCHOR,
            iat=int(utcnow().timestamp()),
        )

    # -- URLs and headers -----------------------------------------------------------------------

    def aisp_url(self, path: str) -> str:
        return f"{self.aisp_path}{path}"

    async def oidc_endpoints(self, ctx: ConnectionContext) -> tuple[str, str]:
        """Hook: ``(authorization_endpoint, token_endpoint)`` for this user's account type."""
        authorize = self.authorize_url_override or f"{self.auth_base_url}{self.authorize_path}"
        return authorize, f"{self.auth_base_url}{self.token_path}"

    def extra_headers(self) -> dict[str, str]:
        """Hook: bank-specific headers on every AIS call (e.g. Crosskey's API key)."""
        return {}

    def fapi_headers(self, ctx: ConnectionContext, bearer: str) -> dict[str, str]:
        """FAPI headers; ``x-fapi-customer-ip-address`` only when the user is present (RTS Art. 36(5))."""
        headers = {
            "Authorization": f"Bearer {bearer}",
            "Accept": "application/json",
            "x-fapi-interaction-id": new_request_id(),
        }
        if self.financial_id:
            headers["x-fapi-financial-id"] = self.financial_id
        if ctx.user_present and ctx.psu_ip_address:
            headers["x-fapi-customer-ip-address"] = ctx.psu_ip_address
        headers.update(self.extra_headers())
        return headers

    # -- tokens ---------------------------------------------------------------------------------

    def _token_client_auth(self, form: dict[str, str]) -> httpx.Auth | None:
        """client_secret_basic when a plain secret is configured; else ``client_id`` in the form
        (``tls_client_auth``: the mTLS certificate lives in the injected transport)."""
        client_id = self.endpoint.client_id
        if not client_id:
            raise base.BankUnavailable(self.bank_id, "no client_id configured")
        secret = self.endpoint.client_secret.get_secret_value() if self.endpoint.client_secret else None
        if secret and not looks_like_private_key(secret):
            return httpx.BasicAuth(client_id, secret)
        form["client_id"] = client_id
        return None

    async def _token_request(self, ctx: ConnectionContext, form: dict[str, str]) -> dict[str, Any]:
        _, token_url = await self.oidc_endpoints(ctx)
        auth = self._token_client_auth(form)
        response = await self.request(
            "POST", token_url, data=form, auth=auth, headers={"Accept": "application/json"}
        )
        body = self.decode_json(response)
        if not isinstance(body, dict) or not body.get("access_token"):
            self.fail("token response without access_token", "access_token")
        return body

    async def client_credentials_token(self, ctx: ConnectionContext) -> str:
        """The application's own token (consents are created, read and deleted with it)."""
        _, token_url = await self.oidc_endpoints(ctx)
        cached = self._client_tokens.get(token_url)
        if cached and cached[1] - TOKEN_LEEWAY > utcnow():
            return cached[0]
        body = await self._token_request(
            ctx, {"grant_type": "client_credentials", "scope": self.client_credentials_scope}
        )
        expires = token_expires_at(self.bank_id, body) or utcnow() + dt.timedelta(minutes=5)
        self._client_tokens[token_url] = (str(body["access_token"]), expires)
        return str(body["access_token"])

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Exchange the refresh token for a new access token (and a rotated refresh token, if any).

        Not part of the Protocol: the data methods call it transparently when the access token has
        expired; a caller that wants to persist rotated tokens calls it itself.
        """
        body = await self._token_request(
            ctx, {"grant_type": "refresh_token", "refresh_token": self.refresh_token_of(credentials)}
        )
        return dataclasses.replace(
            credentials,
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or credentials.refresh_token),
            token_expires_at=token_expires_at(self.bank_id, body),
        )

    async def user_token(self, ctx: ConnectionContext, credentials: Credentials) -> str:
        if not credentials.access_token:
            raise base.ReauthRequired(self.bank_id, "no access token: authorisation not completed")
        expires = credentials.token_expires_at
        if expires is None or expires - TOKEN_LEEWAY > utcnow():
            return credentials.access_token
        key = credentials.refresh_token or ""
        cached = self._refreshed.get(key)
        if cached is None or (cached.token_expires_at and cached.token_expires_at - TOKEN_LEEWAY <= utcnow()):
            cached = await self.refresh_credentials(ctx, credentials)
            self._refreshed[key] = cached
        assert cached.access_token is not None
        return cached.access_token

    async def get_resource(
        self, ctx: ConnectionContext, credentials: Credentials, url: str, params: Query | None = None
    ) -> Any:
        token = await self.user_token(ctx, credentials)
        return await self.get_json(url, headers=self.fapi_headers(ctx, token), params=params)

    # -- consent and SCA ------------------------------------------------------------------------

    def consent_request_body(self, ctx: ConnectionContext) -> dict[str, Any]:
        """Hook: the ``OBReadConsent1`` body (permissions and the expiry we ask for)."""
        expires = utcnow() + dt.timedelta(days=self.entry.consent_max_days)
        return {
            "Data": {
                "Permissions": list(self.permissions),
                "ExpirationDateTime": expires.replace(microsecond=0).isoformat(),
            },
            "Risk": {},
        }

    def request_object_claims(
        self, *, consent_id: str, redirect_uri: str, state: str, nonce: str, authorize_url: str
    ) -> dict[str, Any]:
        """Hook: claims of the OIDC request object carrying the consent id as ``openbanking_intent_id``."""
        now = utcnow()
        intent = {"value": consent_id, "essential": True}
        return {
            "iss": self.endpoint.client_id,
            "aud": self.request_object_audience(authorize_url),
            "iat": int(now.timestamp()),
            "exp": int((now + dt.timedelta(minutes=10)).timestamp()),
            "response_type": self.response_type,
            "client_id": self.endpoint.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.authorize_scope,
            "state": state,
            "nonce": nonce,
            "claims": {
                "userinfo": {"openbanking_intent_id": intent},
                "id_token": {
                    "openbanking_intent_id": intent,
                    "acr": {"essential": True, "values": ["urn:openbanking:psd2:sca"]},
                },
            },
        }

    def request_object_audience(self, authorize_url: str) -> str:
        """Hook: the ``aud`` of the request object (the OIDC issuer)."""
        return self.auth_base_url

    async def authorization_url(
        self, ctx: ConnectionContext, *, consent_id: str, redirect_uri: str, state: str
    ) -> str:
        authorize_url, _ = await self.oidc_endpoints(ctx)
        nonce = secrets.token_urlsafe(16)
        params = {
            "response_type": self.response_type,
            "client_id": self.endpoint.client_id or "",
            "redirect_uri": redirect_uri,
            "scope": self.authorize_scope,
            "state": state,
            "nonce": nonce,
        }
        if self.request_object_signer is not None:
            claims = self.request_object_claims(
                consent_id=consent_id,
                redirect_uri=redirect_uri,
                state=state,
                nonce=nonce,
                authorize_url=authorize_url,
            )
            params["request"] = self.request_object_signer(claims)
        separator = "&" if "?" in authorize_url else "?"
        return authorize_url + separator + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> base.AuthorizationStart:
        if self.requires_request_object and self.request_object_signer is None:
            # Checked before creating a consent we could never send the user to.
            raise base.BankUnavailable(self.bank_id, "no request-object signing key configured")
        token = await self.client_credentials_token(ctx)
        body = self.decode_json(
            await self.request(
                "POST",
                self.aisp_url("/account-access-consents"),
                headers=self.fapi_headers(ctx, token),
                json_body=self.consent_request_body(ctx),
            )
        )
        data = self.require(body, "Data")
        consent_id = str(self.require(data, "ConsentId", "Data.ConsentId"))
        url = await self.authorization_url(ctx, consent_id=consent_id, redirect_uri=redirect_uri, state=state)
        return base.AuthorizationStart(
            method="redirect", credentials=Credentials(consent_id=consent_id), url=url
        )

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        form = {
            "grant_type": "authorization_code",
            "code": self.required_code(code),
            "redirect_uri": redirect_uri,
        }
        body = await self._token_request(ctx, form)
        refresh = body.get("refresh_token")
        return dataclasses.replace(
            credentials,
            access_token=str(body["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            token_expires_at=token_expires_at(self.bank_id, body),
            extra={**credentials.extra, "authorised_at": utcnow().isoformat()},
        )

    def _consent_id(self, credentials: Credentials) -> str:
        if not credentials.consent_id:
            raise base.ReauthRequired(self.bank_id, "no consent id stored")
        return credentials.consent_id

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> base.ConsentInfo:
        consent_id = self._consent_id(credentials)
        token = await self.client_credentials_token(ctx)
        body = await self.get_json(
            self.aisp_url(f"/account-access-consents/{urllib.parse.quote(consent_id, safe='')}"),
            headers=self.fapi_headers(ctx, token),
        )
        return normalize.consent_info(self, body, now=utcnow())

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        consent_id = self._consent_id(credentials)
        token = await self.client_credentials_token(ctx)
        try:
            await self.request(
                "DELETE",
                self.aisp_url(f"/account-access-consents/{urllib.parse.quote(consent_id, safe='')}"),
                headers=self.fapi_headers(ctx, token),
            )
        except _AlreadyGone:
            return

    # -- data -----------------------------------------------------------------------------------

    async def list_accounts(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> list[base.BankAccountInfo]:
        body = await self.get_resource(ctx, credentials, self.aisp_url("/accounts"))
        accounts = [
            normalize.account(self, raw, i)
            for i, raw in enumerate(normalize.data_list(self, body, "Account"))
        ]
        if not self.balances_in_account_list:
            return accounts
        return [
            dataclasses.replace(acc, balance=await self.fetch_balance(ctx, credentials, acc.external_id))
            for acc in accounts
        ]

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> base.Balance:
        url = self.aisp_url(f"/accounts/{urllib.parse.quote(account_id, safe='')}/balances")
        return normalize.balance(self, await self.get_resource(ctx, credentials, url))

    def _next_link(self, body: Any) -> str | None:
        links = body.get("Links") if isinstance(body, dict) else None
        nxt = links.get("Next") if isinstance(links, dict) else None
        if not nxt:
            return None
        if not isinstance(nxt, str):
            self.fail("not a URL", "Links.Next")
        url = httpx.URL(nxt)
        if url.is_absolute_url and url.host != httpx.URL(self.base_url).host:
            # Never send the user's token to a host other than the bank's API.
            self.fail("next page on a foreign host", "Links.Next")
        return nxt

    def transactions_request(
        self, ctx: ConnectionContext, account_id: str, date_from: dt.date, date_to: dt.date
    ) -> PageRequest:
        start = dt.datetime.combine(date_from, dt.time.min, base.STOCKHOLM)
        end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, base.STOCKHOLM)
        url = self.aisp_url(f"/accounts/{urllib.parse.quote(account_id, safe='')}/transactions")
        return url, {
            "fromBookingDateTime": _query_time(start),
            "toBookingDateTime": _query_time(end - dt.timedelta(seconds=1)),
        }

    def read_page(
        self, ctx: ConnectionContext, body: Any, page: Page
    ) -> tuple[list[base.BankTransaction], PageRequest | None]:
        rows = [
            normalize.transaction(self, raw, f"page {page.number + 1} Data.Transaction[{i}]")
            for i, raw in enumerate(normalize.data_list(self, body, "Transaction"))
        ]
        nxt = self._next_link(body)
        if nxt is None:
            return [tx for tx in rows if tx is not None], None
        # The query goes in as params: HttpAdapter.request always passes params, and httpx then drops a
        # query that is part of the URL itself.
        next_url = httpx.URL(nxt)
        params = {key: next_url.params.get_list(key) for key in next_url.params}
        return [tx for tx in rows if tx is not None], (str(next_url.copy_with(query=None)), params)

    # -- errors ---------------------------------------------------------------------------------

    def map_error_response(self, response: httpx.Response) -> None:
        """OBIE ``{Code, Message, Errors:[{ErrorCode, Message, Path}]}`` and OAuth ``{error}`` bodies."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        codes: set[str] = set()
        texts: list[str] = []
        if isinstance(body, dict):
            for key in ("Code", "error"):
                if isinstance(body.get(key), str):
                    codes.add(body[key])
            for key in ("Message", "error_description"):
                if isinstance(body.get(key), str):
                    texts.append(body[key])
            for err in body.get("Errors") or []:
                if isinstance(err, dict):
                    if isinstance(err.get("ErrorCode"), str):
                        codes.add(err["ErrorCode"])
                    if isinstance(err.get("Message"), str):
                        texts.append(err["Message"])
        else:
            texts.append(response.text[:500])
        text = " ".join(texts).casefold()
        path = response.request.url.path

        if response.request.method == "DELETE" and status == 404:
            raise _AlreadyGone(self.bank_id, f"already gone: {path}")
        if status == 503 and "maintenance" in text:
            raise base.BankUnavailable(self.bank_id, f"down for maintenance ({path})")
        if codes & CLIENT_ERRORS:
            raise base.BankUnavailable(self.bank_id, "the bank rejected our client credentials")
        consent_problem = bool(codes & (CONSENT_ERROR_CODES | GRANT_ERRORS)) and status in (
            400,
            401,
            403,
            404,
        )
        if status in (401, 403) or consent_problem:
            if "expired" in text and ("consent" in text or "authori" in text):
                raise base.ConsentExpired(self.bank_id, f"consent expired ({path})")
            raise base.ReauthRequired(self.bank_id, f"access refused with HTTP {status} on {path}")
