"""Länsförsäkringar Bank: Berlin Group with LF path segments, behind LF's own OAuth2 server
(docs/banks.md, "Länsförsäkringar").

The flow, as Tink's production agent ran it (``sidde7r/tink-backend-aggregation``, 2021-22,
``se/openbanking/lansforsakringar/``: ``LansforsakringarApiClient``, ``LansforsakringarConstants``,
``authenticator/LansforsakringarAuthenticator`` and ``LansforsakringarDecoupledAuthenticator``):

1. a **client-credentials token** (``POST {auth}/as/token.oauth2``, ``grant_type=client_credentials``
   with our ``client_id``/``client_secret``) authorises the consent calls;
2. ``POST /ano/v3/consents`` with ``PSU-ID`` + ``PSU-ID-Type: SSSN`` and that token;
3. redirect: the user is sent to ``{auth}/as/authorization.oauth2`` with ``client_id``,
   ``response_type=code``, ``AuthorisationID`` (the consent answer's ``authorisationId``; with
   ``TPP-Explicit-Authorisation-Preferred: false`` the bank starts it), ``redirect_uri`` and ``state``;
   decoupled: ``POST /ano/v3/consents/{id}/authorisations``, Mobile BankID, poll
   ``/sec/v3/consents/{id}/authorisations/{authorisationId}`` until ``finalised``, whose answer carries
   an ``authorisationCode``;
4. the code is exchanged at ``{auth}/as/token.oauth2`` (``grant_type=authorization_code``,
   ``client_id``, ``client_secret``, ``redirect_uri``) for an access and a refresh token;
5. every AIS call carries ``Authorization: Bearer`` and ``Consent-ID``; the token is renewed with
   ``grant_type=refresh_token``.

Confirmed (Tink's code, 2021-22): the hosts (``api.bank.lansforsakringar.se``,
``secure397.lansforsakringar.se``), paths, the five steps above, ``SSSN``, ``entryReference`` as the
row id, the text fallbacks ``merchantName`` then ``text``, 13 months of history with the user present
and 89 days without, ``PSU-IP-Address`` only with the user present.
Unconfirmed: current API versions (``/ano/v3``, ``/sec/v2|v3``, ``/ais/v1`` are the 2022 ones); that
the redirect consent also needs the client-credentials token (the 2022 decoupled flow sends it, the
2021 redirect flow did not: we send it for both); business accounts; whether LF wants signed requests
(not in our sources). The base URL is the ``/openbanking`` root.
"""

from __future__ import annotations

from typing import Any

import httpx

from ledgerlink.banks.adapters.base import (
    AuthorizationStart,
    ConnectionContext,
    Credentials,
    ReauthRequired,
    ScaMethod,
)
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter
from ledgerlink.banks.adapters.berlingroup.parsing import (
    BerlinGroupParser,
    blank_to_none,
)
from ledgerlink.banks.adapters.http import new_request_id

DEFAULT_AUTH_BASE_URL = "https://secure397.lansforsakringar.se"


class LansforsakringarParser(BerlinGroupParser):
    def description(self, raw: dict[str, Any]) -> str | None:
        return (
            super().description(raw)
            or blank_to_none(raw.get("merchantName"))
            or blank_to_none(raw.get("text"))
        )


class LansforsakringarAdapter(BerlinGroupAdapter):
    parser_class = LansforsakringarParser
    consents_path = "/ano/v3/consents"
    accounts_path = "/ais/v1/accounts"
    psu_id_type = "SSSN"

    def setup(self) -> None:
        super().setup()
        #: The client-credentials token of the consent calls made by this adapter instance.
        self._client_token: str | None = None

    @property
    def auth_base_url(self) -> str:
        return (self.endpoint.auth_base_url or DEFAULT_AUTH_BASE_URL).rstrip("/")

    @property
    def token_url(self) -> str:
        return f"{self.auth_base_url}/as/token.oauth2"

    def consent_url(self, consent_id: str) -> str:
        return f"/sec/v2/consents/{consent_id}"

    def authorisation_url(self, consent_id: str, authorisation_id: str) -> str:
        return f"/sec/v3/consents/{consent_id}/authorisations/{authorisation_id}"

    # -- authorization ----------------------------------------------------------------------------

    async def client_token(self) -> str:
        """A client-credentials token for the consent calls (step 1)."""
        client_id, client_secret = self.oauth_client()
        form = {"grant_type": "client_credentials", "client_id": client_id}
        if client_secret:
            form["client_secret"] = client_secret
        response = await self.request(
            "POST", self.token_url, headers={self.request_id_header: new_request_id()}, data=form
        )
        body = self.expect_object(self.decode_json(response), "token")
        return str(self.require(body, "access_token"))

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        """Steps 1-3: the consent under a client-credentials token, then redirect or decoupled SCA (the
        token stays in the pending credentials for the decoupled polls)."""
        method: ScaMethod = sca_method or ("decoupled" if ctx.psu_id else "redirect")
        self._client_token = await self.client_token()
        return await super().start_authorization(
            ctx, redirect_uri=redirect_uri, state=state, sca_method=method
        )

    def base_headers(self, ctx: ConnectionContext, credentials: Credentials | None = None) -> dict[str, str]:
        headers = super().base_headers(ctx, credentials)
        if "Authorization" not in headers and self._client_token:
            headers["Authorization"] = f"Bearer {self._client_token}"
        return headers

    def consent_headers(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod
    ) -> dict[str, str]:
        headers = super().consent_headers(ctx, redirect_uri=redirect_uri, state=state, sca_method=sca_method)
        if sca_method == "redirect":
            # the bank starts the authorisation itself and answers its id (Tink sends false)
            headers["TPP-Explicit-Authorisation-Preferred"] = "false"
        return headers

    async def start_redirect(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        consent: dict[str, Any],
        *,
        redirect_uri: str,
        state: str,
    ) -> AuthorizationStart:
        """Step 3 (redirect): LF's OAuth authorize page for the consent's authorisation."""
        authorisation_id = blank_to_none(consent.get("authorisationId"))
        if authorisation_id is None:
            self.fail("consent answer has no authorisationId", "authorisationId")
        params = {"AuthorisationID": authorisation_id, "redirect_uri": redirect_uri, "state": state}
        url, _ = self.oauth_authorize(f"{self.auth_base_url}/as/authorization.oauth2", params, pkce=False)
        credentials = self.with_extra(credentials, authorisation_id=authorisation_id)
        return AuthorizationStart(method="redirect", credentials=credentials, url=url)

    async def start_decoupled(
        self, ctx: ConnectionContext, credentials: Credentials, consent: dict[str, Any]
    ) -> AuthorizationStart:
        start = await super().start_decoupled(ctx, credentials, consent)
        pending = Credentials(
            consent_id=start.credentials.consent_id,
            access_token=self._client_token,  # polls the SCA status with the client token
            extra=start.credentials.extra,
        )
        return AuthorizationStart(
            method="decoupled",
            credentials=pending,
            autostart_token=start.autostart_token,
            poll_interval_seconds=start.poll_interval_seconds,
        )

    def sca_finalised(self, credentials: Credentials, body: Any) -> Credentials:
        """Step 3 (decoupled): the finalised SCA status carries the code to exchange in step 4."""
        code = blank_to_none(body.get("authorisationCode")) if isinstance(body, dict) else None
        if code is None:
            self.fail("finalised authorisation without an authorisationCode", "authorisationCode")
        return Credentials(
            consent_id=credentials.consent_id, extra={**credentials.extra, "authorisation_code": code}
        )

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Step 4: exchange the redirect's code (or the decoupled authorisation's) for tokens, then
        refuse a consent the PSU did not grant."""
        code = code or credentials.extra.get("authorisation_code")
        kept = {k: v for k, v in credentials.extra.items() if k != "authorisation_code"}
        start = Credentials(consent_id=credentials.consent_id, extra=kept)
        tokens = await self.exchange_code(self.token_url, start, code=code, redirect_uri=redirect_uri)
        return await super().complete_authorization(ctx, tokens, code=None, redirect_uri=redirect_uri)

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Step 5: a new access token from the refresh token (LF's tokens are short-lived)."""
        return await self.refresh_tokens(self.token_url, credentials)

    def map_error_response(self, response: httpx.Response) -> None:
        if "authorization code is invalid or expired" in response.text.casefold():
            raise ReauthRequired(self.bank_id, "authorization code is invalid or expired")
        super().map_error_response(response)


__all__ = ["LansforsakringarAdapter"]
