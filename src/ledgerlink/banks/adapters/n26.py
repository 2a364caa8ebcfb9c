"""N26: Berlin Group under ``/v1/berlin-group/v1/`` behind OAuth2 with PKCE (docs/banks.md, "N26").

* Authorization: redirect to ``/oauth2/authorize`` (``response_type=CODE``, scope ``DEDICATED_AISP``,
  PKCE S256, our state); :meth:`complete_authorization` exchanges the code at
  ``/oauth2/token?role=DEDICATED_AISP`` and then creates the BG consent with the bearer token. The PSU
  confirms that consent in the N26 app (within 5 minutes): its status reads ``received`` until then.
  The catalogue entry declares it (``confirm_in_app_within``), so the connection service keeps the login
  awaiting after the redirect and polls :meth:`get_authorization_status` (the consent status mapped to
  pending/finalised/failed) on every read of the connection, as for a decoupled login.
* Tokens: the access token lives 15 minutes, the refresh token is single-use and its chain lives 90
  days: :meth:`refresh_credentials` renews both before a sync.
* Transactions: ``bookingStatus=booked`` only (``pending``/``both`` refused since 14 March 2022);
  ``withBalance`` is not supported. More than 90 days only in the first 15 minutes of a consent;
  otherwise ``PERIOD_INVALID``, raised as :class:`~ledgerlink.banks.adapters.berlingroup.PeriodInvalid`
  (the sync engine retries with 89 days).
* Deleted "spaces" can linger as accounts; their reads answer ``RESOURCE_UNKNOWN`` → ResourceUnknown.

Confirmed from N26's own TPP documentation (``n26/psd2-tpp-docs``: ``doc/dedicated-aisp.md``, README
FAQ): everything above, the QWAC as the only certificate (no request signing), ``client_id`` = the
QWAC's organisation identifier (e.g. ``PSDSE-FINA-…``), decoupled confirmation in the app as the only
SCA approach, ``frequencyPerDay`` at most 4, SCA validity 90 days (180 since 22 June 2023 per the
changelog), one API for retail and business accounts. Unconfirmed: nothing of the flow; the Swedish
market's business accounts are not offered in our catalogue (API.md lists N26 as private only).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledgerlink.banks.adapters.base import (
    AuthorizationStart,
    AuthorizationStatus,
    ConnectionContext,
    ConsentStatus,
    Credentials,
    ScaMethod,
)
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter


class N26Adapter(BerlinGroupAdapter):
    consents_path = "/v1/berlin-group/v1/consents"
    accounts_path = "/v1/berlin-group/v1/accounts"

    def auth_base(self) -> str:
        return (self.endpoint.auth_base_url or self.base_url).rstrip("/")

    def token_url(self) -> str:
        return self.auth_base() + "/oauth2/token?role=DEDICATED_AISP"

    def accounts_params(self) -> dict[str, Any]:
        return {}  # withBalance is not supported

    def transactions_params(self, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
        return {**super().transactions_params(date_from, date_to), "bookingStatus": "booked"}

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """A new access and refresh token pair (the refresh token is single-use; N26 knows us by the QWAC,
        so the form carries only the grant and the token)."""
        return await self.refresh_tokens(self.token_url(), credentials, client_auth=False)

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        params = {
            "response_type": "CODE",  # N26 accepts only the upper-case value
            "scope": "DEDICATED_AISP",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return await self.start_oauth_redirect(
            sca_method, self.auth_base() + "/oauth2/authorize", params, pkce=True
        )

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        tokens = await self.exchange_code(self.token_url(), credentials, code=code, redirect_uri=redirect_uri)
        headers = self.base_headers(ctx, tokens)
        headers["TPP-Redirect-Preferred"] = "false"
        response = await self.request(
            "POST", self.consents_url(), headers=headers, json_body=self.consent_body(ctx)
        )
        body = self.expect_object(self.decode_json(response), "consent")
        return Credentials(
            consent_id=str(self.require(body, "consentId")),
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            token_expires_at=tokens.token_expires_at,
            extra=tokens.extra,
        )

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> AuthorizationStatus:
        """The in-app confirmation of the consent, read from the consent status."""
        info = await self.get_consent(ctx, credentials)
        if info.status is ConsentStatus.valid:
            return AuthorizationStatus(status="finalised", credentials=credentials)
        if info.status is ConsentStatus.received:
            return AuthorizationStatus(status="pending", credentials=credentials)
        return AuthorizationStatus(status="failed", credentials=credentials, message=info.status.value)


__all__ = ["N26Adapter"]
