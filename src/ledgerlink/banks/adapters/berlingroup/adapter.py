"""The shared Berlin Group NextGenPSD2 adapter: the HTTP side (consents, redirect/decoupled SCA, AIS
reads, error answers). Payloads are read by :mod:`.parsing` (pure, no I/O; ``parser_class``).

See the package docstring for the override hooks a bank module uses.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.base import ConnectionContext, Credentials, ScaMethod
from ledgerlink.banks.adapters.berlingroup.errors import (
    EXPIRED_CODES,
    PERIOD_CODES,
    RATE_LIMIT_CODES,
    REAUTH_CODES,
    UNAVAILABLE_CODES,
    UNKNOWN_RESOURCE_CODES,
    PeriodInvalid,
    ResourceUnknown,
    first_code,
    tpp_messages,
)
from ledgerlink.banks.adapters.berlingroup.oauth import credentials_from_token, pkce_pair, with_query
from ledgerlink.banks.adapters.berlingroup.parsing import (
    SCA_FAILED,
    SCA_FINAL_OK,
    BerlinGroupParser,
    authorisation_id_from_link,
    autostart_token_from,
    link,
)
from ledgerlink.banks.adapters.http import (
    HttpAdapter,
    Page,
    PageRequest,
    Query,
    new_request_id,
    retry_at_from,
)
from ledgerlink.banks.adapters.parsing import blank_to_none
from ledgerlink.banks.adapters.signing import BERLIN_GROUP, HttpSignatureProfile

OAUTH_REAUTH_ERRORS = frozenset({"invalid_grant", "invalid_token", "access_denied", "unauthorized_client"})
#: 401 codes about our certificate or signature (an operator fixes settings; the user cannot).
CERTIFICATE_CODES = frozenset(
    {
        "CERTIFICATE_INVALID",
        "CERTIFICATE_EXPIRED",
        "CERTIFICATE_BLOCKED",
        "CERTIFICATE_REVOKED",
        "CERTIFICATE_MISSING",
        "ROLE_INVALID",
    }
)
SIGNATURE_CODES = frozenset({"SIGNATURE_INVALID", "SIGNATURE_MISSING"})

NextPage = PageRequest


class BerlinGroupAdapter(HttpAdapter):
    """Berlin Group NextGenPSD2 XS2A v1 AIS (docs/banks.md, "Berlin Group")."""

    #: Reads this bank's payloads (a bank with its own row quirks sets a subclass).
    parser_class: ClassVar[type[BerlinGroupParser]] = BerlinGroupParser
    #: Signed with a QSealC the Berlin Group way when one is configured.
    signature_profile: ClassVar[HttpSignatureProfile | None] = BERLIN_GROUP

    #: Paths relative to the base URL.
    consents_path: ClassVar[str] = "/v1/consents"
    accounts_path: ClassVar[str] = "/v1/accounts"
    #: Header that carries the request id (Bank Norwegian uses ``Request-ID``).
    request_id_header: ClassVar[str] = "X-Request-ID"
    #: ``bank_offered`` asks the PSU at the bank which accounts; ``all_accounts`` asks for all of them.
    consent_access_mode: ClassVar[Literal["bank_offered", "all_accounts"]] = "bank_offered"
    #: ``PSU-ID-Type`` sent with ``PSU-ID`` (LF: ``SSSN``), or None for none.
    psu_id_type: ClassVar[str | None] = None
    frequency_per_day: ClassVar[int] = 4
    max_pages: ClassVar[int] = 1000
    next_page_field: ClassVar[str] = "_links.next"
    #: Days back the transactions endpoint serves (Swedbank: 89); an older ``dateFrom`` is refused with
    #: :class:`PeriodInvalid` before any call spends quota. None: the bank says so itself.
    online_max_days: ClassVar[int | None] = None
    default_poll_interval_seconds: ClassVar[int] = 2

    def setup(self) -> None:
        self.parser = self.parser_class(self.bank_id)

    # -- paths (hooks) ----------------------------------------------------------------------------

    def consents_url(self) -> str:
        return self.consents_path

    def consent_url(self, consent_id: str) -> str:
        return f"{self.consents_path}/{consent_id}"

    def authorisations_url(self, consent_id: str) -> str:
        return f"{self.consents_path}/{consent_id}/authorisations"

    def authorisation_url(self, consent_id: str, authorisation_id: str) -> str:
        return f"{self.consents_path}/{consent_id}/authorisations/{authorisation_id}"

    def accounts_url(self) -> str:
        return self.accounts_path

    def transactions_url(self, account_id: str) -> str:
        return f"{self.accounts_path}/{account_id}/transactions"

    def balances_url(self, account_id: str) -> str:
        return f"{self.accounts_path}/{account_id}/balances"

    def resolve_link(self, href: str) -> str:
        """A ``_links.*.href`` as a URL for our client: absolute URLs as they are; a path that repeats
        the base URL's own path prefix has it removed (the client prepends the base URL)."""
        if "://" in href:
            return href
        base_path = urlsplit(self.base_url).path.rstrip("/")
        if base_path and href.startswith(base_path + "/"):
            return href[len(base_path) :]
        return href if href.startswith("/") else "/" + href

    # -- headers (hooks) --------------------------------------------------------------------------

    def base_headers(self, ctx: ConnectionContext, credentials: Credentials | None = None) -> dict[str, str]:
        """Headers on every call: request id, bearer token if any, PSU presence, corporate id."""
        headers = {self.request_id_header: new_request_id()}
        if credentials is not None and credentials.access_token:
            headers["Authorization"] = f"Bearer {credentials.access_token}"
        if ctx.user_present and ctx.psu_ip_address:
            headers["PSU-IP-Address"] = ctx.psu_ip_address
        if ctx.corporate_id:
            headers["PSU-Corporate-ID"] = ctx.corporate_id
        return headers

    def ais_headers(self, ctx: ConnectionContext, credentials: Credentials) -> dict[str, str]:
        """Headers on account-information calls (adds ``Consent-ID``)."""
        headers = self.base_headers(ctx, credentials)
        if credentials.consent_id:
            headers["Consent-ID"] = credentials.consent_id
        return headers

    async def get_resource(
        self, ctx: ConnectionContext, credentials: Credentials, url: str, params: Query | None = None
    ) -> Any:
        return await self.get_json(url, headers=self.ais_headers(ctx, credentials), params=params)

    def psu_headers(self, ctx: ConnectionContext) -> dict[str, str]:
        headers: dict[str, str] = {}
        if ctx.psu_id:
            headers["PSU-ID"] = ctx.psu_id
            if self.psu_id_type:
                headers["PSU-ID-Type"] = self.psu_id_type
        return headers

    def consent_headers(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod
    ) -> dict[str, str]:
        headers = self.base_headers(ctx)
        headers.update(self.psu_headers(ctx))
        if sca_method == "redirect":
            headers["TPP-Redirect-Preferred"] = "true"
            headers["TPP-Redirect-URI"] = with_query(redirect_uri, {"state": state})
            headers["TPP-Nok-Redirect-URI"] = with_query(redirect_uri, {"state": state, "error": "nok"})
        else:
            headers["TPP-Redirect-Preferred"] = "false"
            headers["TPP-Decoupled-Preferred"] = "true"
        return headers

    # -- consent body (hooks) ---------------------------------------------------------------------

    def consent_valid_until(self) -> dt.date:
        """The validity we ask for: the catalogue ceiling; the bank's answer is read back later."""
        return self.today() + dt.timedelta(days=self.entry.consent_max_days)

    def consent_access(self, ctx: ConnectionContext) -> dict[str, Any]:
        if self.consent_access_mode == "all_accounts":
            return {"allPsd2": "allAccounts"}
        return {"accounts": [], "balances": [], "transactions": []}

    def consent_body(self, ctx: ConnectionContext) -> dict[str, Any]:
        return {
            "access": self.consent_access(ctx),
            "recurringIndicator": True,
            "validUntil": self.consent_valid_until().isoformat(),
            "frequencyPerDay": self.frequency_per_day,
            "combinedServiceIndicator": False,
        }

    def default_sca_method(self) -> ScaMethod:
        return self.entry.sca_methods[0]

    # -- authorization ----------------------------------------------------------------------------

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> base.AuthorizationStart:
        method: ScaMethod = sca_method or self.default_sca_method()
        if method not in self.entry.sca_methods:
            raise base.BankUnavailable(self.bank_id, f"SCA method {method} is not offered")
        response = await self.request(
            "POST",
            self.consents_url(),
            headers=self.consent_headers(ctx, redirect_uri=redirect_uri, state=state, sca_method=method),
            json_body=self.consent_body(ctx),
        )
        body = self.expect_object(self.decode_json(response), "consent")
        consent_id = str(self.require(body, "consentId"))
        credentials = Credentials(consent_id=consent_id)
        if method == "decoupled":
            return await self.start_decoupled(ctx, credentials, body)
        return await self.start_redirect(ctx, credentials, body, redirect_uri=redirect_uri, state=state)

    async def start_redirect(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        consent: dict[str, Any],
        *,
        redirect_uri: str,
        state: str,
    ) -> base.AuthorizationStart:
        """The consent answer's ``scaRedirect``; if the bank wants an explicit authorisation first,
        start it and take the link from that answer."""
        url = link(consent, "scaRedirect")
        if url is None:
            start = link(consent, "startAuthorisation") or self.authorisations_url(
                str(credentials.consent_id)
            )
            response = await self.request(
                "POST",
                self.resolve_link(start),
                headers=self.consent_headers(
                    ctx, redirect_uri=redirect_uri, state=state, sca_method="redirect"
                ),
                json_body={},
            )
            auth = self.expect_object(self.decode_json(response), "authorisation")
            url = link(auth, "scaRedirect")
            if auth.get("authorisationId"):
                credentials = self.with_extra(credentials, authorisation_id=str(auth["authorisationId"]))
        if url is None:
            self.fail("consent answer has no SCA redirect link", "_links.scaRedirect")
        redirect = base.AuthorizationStart(method="redirect", credentials=credentials, url=url)
        return self.redirect_start(redirect, redirect_uri=redirect_uri, state=state)

    def redirect_start(
        self, start: base.AuthorizationStart, *, redirect_uri: str, state: str
    ) -> base.AuthorizationStart:
        """Hook: the redirect SCA as the user gets it (a bank with OAuth in front of its SCA page adds
        the authorize parameters here, see :meth:`oauth_authorize`)."""
        return start

    async def start_decoupled(
        self, ctx: ConnectionContext, credentials: Credentials, consent: dict[str, Any]
    ) -> base.AuthorizationStart:
        """Start the authorisation resource with the PSU id and read the BankID autostart token."""
        consent_id = str(credentials.consent_id)
        start = (
            link(consent, "startAuthorisationWithPsuIdentification")
            or link(consent, "startAuthorisation")
            or self.authorisations_url(consent_id)
        )
        headers = self.base_headers(ctx)
        headers.update(self.psu_headers(ctx))
        response = await self.request("POST", self.resolve_link(start), headers=headers, json_body={})
        auth = self.expect_object(self.decode_json(response), "authorisation")
        authorisation_id = blank_to_none(auth.get("authorisationId"))
        if authorisation_id is None:
            authorisation_id = authorisation_id_from_link(auth)
        if authorisation_id is None:
            self.fail("authorisation answer has no id", "authorisationId")
        token = autostart_token_from(auth) or autostart_token_from(consent)
        return base.AuthorizationStart(
            method="decoupled",
            credentials=self.with_extra(credentials, authorisation_id=authorisation_id),
            autostart_token=token,
            poll_interval_seconds=self.default_poll_interval_seconds,
        )

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> base.AuthorizationStatus:
        consent_id = self.consent_id_of(credentials)
        authorisation_id = credentials.extra.get("authorisation_id")
        if not authorisation_id:
            self.fail("credentials carry no authorisation id", "authorisation_id")
        body = await self.get_json(
            self.authorisation_url(consent_id, authorisation_id), headers=self.base_headers(ctx, credentials)
        )
        sca_status, message = self.parser.sca_status(body)
        if sca_status in SCA_FINAL_OK:
            return base.AuthorizationStatus(
                status="finalised", credentials=self.sca_finalised(credentials, body)
            )
        if sca_status in SCA_FAILED:
            return base.AuthorizationStatus(
                status="failed", credentials=credentials, message=message or sca_status
            )
        return base.AuthorizationStatus(status="pending", credentials=credentials)

    def sca_finalised(self, credentials: base.Credentials, body: Any) -> base.Credentials:
        """Hook: the credentials once a decoupled SCA is ``finalised`` (``body``: the SCA status answer;
        LF takes the authorisation code to exchange from it)."""
        return credentials

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Plain BG redirect: nothing to exchange; refuse a consent the PSU rejected at the bank."""
        info = await self.get_consent(ctx, credentials)
        if info.status in (base.ConsentStatus.rejected, base.ConsentStatus.revoked):
            raise base.ReauthRequired(self.bank_id, f"consent {info.status.value} at the bank")
        if info.status is base.ConsentStatus.expired:
            raise base.ConsentExpired(self.bank_id, "consent expired before use")
        return credentials

    # -- OAuth (banks that put an authorization-code flow in front of AIS) -------------------------

    def oauth_client(self) -> tuple[str, str | None]:
        """``(client_id, client_secret)`` from the endpoint settings; BankUnavailable if unset."""
        if not self.endpoint.client_id:
            raise base.BankUnavailable(self.bank_id, "no client_id configured")
        secret = self.endpoint.client_secret.get_secret_value() if self.endpoint.client_secret else None
        return self.endpoint.client_id, secret

    async def start_oauth_redirect(
        self,
        sca_method: ScaMethod | None,
        authorize_url: str,
        params: Mapping[str, str | None],
        *,
        pkce: bool = False,
    ) -> base.AuthorizationStart:
        """Redirect-only banks without a consent resource before SCA (ICA Banken, Skandia, N26): send
        the user to the bank's OAuth ``authorize_url`` with our client id, ``params`` (redirect URI,
        state, scope...) and, with ``pkce``, an S256 challenge whose verifier waits in the credentials."""
        if sca_method not in (None, "redirect"):
            raise base.BankUnavailable(self.bank_id, f"SCA method {sca_method} is not offered")
        url, extra = self.oauth_authorize(authorize_url, params, pkce=pkce)
        return base.AuthorizationStart(method="redirect", credentials=Credentials(extra=extra), url=url)

    def oauth_authorize(
        self, authorize_url: str, params: Mapping[str, str | None], *, pkce: bool
    ) -> tuple[str, dict[str, str]]:
        """``authorize_url`` with our client id, ``response_type=code``, ``params`` and, with ``pkce``, an
        S256 challenge; and what the credentials keep for the code exchange (the PKCE verifier)."""
        client_id, _ = self.oauth_client()
        query: dict[str, str | None] = {"client_id": client_id, "response_type": "code", **params}
        extra: dict[str, str] = {}
        if pkce:
            verifier, challenge = pkce_pair()
            query.update(code_challenge=challenge, code_challenge_method="S256")
            extra["code_verifier"] = verifier
        return with_query(authorize_url, query), extra

    async def exchange_code(
        self, token_url: str, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Authorization-code grant (with the stored PKCE verifier if any) → credentials with tokens."""
        code = self.required_code(code)
        client_id, client_secret = self.oauth_client()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
        }
        if client_secret:
            form["client_secret"] = client_secret
        if credentials.extra.get("code_verifier"):
            form["code_verifier"] = credentials.extra["code_verifier"]
        response = await self.request(
            "POST", token_url, headers={self.request_id_header: new_request_id()}, data=form
        )
        return credentials_from_token(self.bank_id, self.decode_json(response), credentials)

    async def refresh_tokens(
        self, token_url: str, credentials: base.Credentials, *, client_auth: bool = True
    ) -> base.Credentials:
        """Refresh-token grant (RFC 6749 section 6) → credentials with the new tokens (a refresh token the
        bank rotates replaces ours). ``client_auth``: send our client id (and secret, if set) in the form;
        off for banks that know us by the QWAC. Unchanged credentials when there is no refresh token."""
        if not credentials.refresh_token:
            return credentials
        form = {"grant_type": "refresh_token", "refresh_token": credentials.refresh_token}
        if client_auth:
            client_id, client_secret = self.oauth_client()
            form["client_id"] = client_id
            if client_secret:
                form["client_secret"] = client_secret
        response = await self.request(
            "POST", token_url, headers={self.request_id_header: new_request_id()}, data=form
        )
        return credentials_from_token(self.bank_id, self.decode_json(response), credentials)

    # -- consent ----------------------------------------------------------------------------------

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> base.ConsentInfo:
        body = await self.get_json(
            self.consent_url(self.consent_id_of(credentials)), headers=self.base_headers(ctx, credentials)
        )
        return self.parser.consent(body)

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        await self.request(
            "DELETE",
            self.consent_url(self.consent_id_of(credentials)),
            headers=self.base_headers(ctx, credentials),
        )

    # -- accounts ---------------------------------------------------------------------------------

    def accounts_params(self) -> dict[str, Any]:
        return {"withBalance": "true"}

    async def list_accounts(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> list[base.BankAccountInfo]:
        return self.parser.accounts(
            await self.get_resource(ctx, credentials, self.accounts_url(), self.accounts_params())
        )

    # -- balances ---------------------------------------------------------------------------------

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> base.Balance:
        return self.parser.balance(await self.get_resource(ctx, credentials, self.balances_url(account_id)))

    # -- transactions -----------------------------------------------------------------------------

    def transactions_params(self, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
        return {"dateFrom": date_from.isoformat(), "dateTo": date_to.isoformat(), "bookingStatus": "both"}

    def transaction_window(
        self, ctx: ConnectionContext, credentials: Credentials, date_from: dt.date, date_to: dt.date
    ) -> tuple[dt.date, dt.date]:
        days = self.online_max_days
        if days is not None and date_from < self.today() - dt.timedelta(days=days):
            raise PeriodInvalid(
                self.bank_id,
                f"{self.entry.name} serves the last {days} days online; asked from {date_from.isoformat()}",
                days,
            )
        return date_from, date_to

    def transactions_request(
        self, ctx: ConnectionContext, account_id: str, date_from: dt.date, date_to: dt.date
    ) -> PageRequest:
        return self.transactions_url(account_id), self.transactions_params(date_from, date_to)

    def read_page(
        self, ctx: ConnectionContext, body: Any, page: Page
    ) -> tuple[list[base.BankTransaction], PageRequest | None]:
        url, params = page.request
        return self.parser.transactions_page(body, page.number), self.next_page(
            body, url, params, page.number
        )

    def next_page(self, body: Any, url: str, params: dict[str, Any] | None, page: int) -> NextPage | None:
        """Follow ``transactions._links.next.href`` (or a top-level ``_links.next``) until absent.
        The href carries its own query, so no params are re-sent."""
        href = self.parser.next_link(body)
        if href is None:
            return None
        return self.resolve_link(href), None

    # -- errors -----------------------------------------------------------------------------------

    def map_error_response(self, response: httpx.Response) -> None:
        """``tppMessages`` codes onto the error family (see :mod:`.errors` for the open choices)."""
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        messages = tpp_messages(body)
        path = response.request.url.path
        status = response.status_code
        if isinstance(body, dict) and body.get("error") in OAUTH_REAUTH_ERRORS:
            raise base.ReauthRequired(self.bank_id, f"OAuth {body['error']} on {path}")
        if hit := first_code(messages, CERTIFICATE_CODES):
            raise base.CertificateInvalid(self.bank_id, f"{hit.code} on {path}")
        if hit := first_code(messages, SIGNATURE_CODES):
            raise base.SignatureInvalid(self.bank_id, f"{hit.code} on {path}")
        if hit := first_code(messages, EXPIRED_CODES):
            raise base.ConsentExpired(self.bank_id, f"{hit.code} on {path}")
        if hit := first_code(messages, REAUTH_CODES):
            raise base.ReauthRequired(self.bank_id, f"{hit.code} on {path}")
        if (hit := first_code(messages, RATE_LIMIT_CODES)) or status == 429:
            raise base.RateLimited(
                self.bank_id, f"{hit.code if hit else 'HTTP 429'} on {path}", retry_at_from(response)
            )
        if hit := first_code(messages, UNAVAILABLE_CODES):
            raise base.BankUnavailable(self.bank_id, f"{hit.code} on {path}")
        if status == 503 and any("maintenance" in m.text.casefold() for m in messages):
            raise base.BankUnavailable(self.bank_id, f"maintenance on {path}")
        if hit := first_code(messages, PERIOD_CODES):
            raise PeriodInvalid(self.bank_id, f"{hit.code} on {path}")
        if (hit := first_code(messages, UNKNOWN_RESOURCE_CODES)) and status in (403, 404):
            raise ResourceUnknown(self.bank_id, f"{hit.code} on {path}", "account_id")
        if status >= 500:
            raise base.TemporaryFailure(self.bank_id, f"HTTP {status} on {path}")

    # -- small helpers ----------------------------------------------------------------------------

    def consent_id_of(self, credentials: Credentials) -> str:
        if not credentials.consent_id:
            self.fail("credentials carry no consent id", "consent_id")
        return credentials.consent_id

    @staticmethod
    def with_extra(credentials: Credentials, **values: str) -> Credentials:
        return dataclasses.replace(credentials, extra={**credentials.extra, **values})


class TokenAccessAdapter(BerlinGroupAdapter):
    """BG-shaped data behind an OAuth token, with no consent resource and redirect SCA only (ICA Banken,
    Skandia): the token is the access. The consent reads ``valid`` while we hold a token (the bank
    states no end date, so ``valid_until`` is None) and ``revoke`` only lets the caller forget it."""

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> base.AuthorizationStatus:
        raise base.BankUnavailable(self.bank_id, "decoupled SCA is not offered by this bank")

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> base.ConsentInfo:
        status = base.ConsentStatus.valid if credentials.access_token else base.ConsentStatus.received
        return base.ConsentInfo(status=status, valid_until=None)

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        return None
