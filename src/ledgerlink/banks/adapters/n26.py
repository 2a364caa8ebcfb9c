"""N26: Berlin Group under ``/v1/berlin-group/v1/`` behind OAuth2 with PKCE (docs/banks.md, "N26").

* Authorization: redirect to ``/oauth2/authorize`` (scope ``DEDICATED_AISP``, PKCE S256, our state);
  :meth:`complete_authorization` exchanges the code at ``/oauth2/token?role=DEFAULT`` and then creates
  the BG consent with the bearer token. The PSU confirms that consent in the N26 app: its status reads
  ``received`` until then, so callers poll :meth:`get_consent` (or :meth:`get_authorization_status`,
  which maps the consent status) before reading accounts.
* Long history only right after a fresh consent; otherwise ``PERIOD_INVALID``, raised as
  :class:`~ledgerlink.banks.adapters.berlingroup.PeriodInvalid` (the sync engine retries with 89 days).
* Deleted "spaces" can linger as accounts; their reads answer ``RESOURCE_UNKNOWN`` → ResourceUnknown.
"""

from __future__ import annotations

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

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        params = {"scope": "DEDICATED_AISP", "redirect_uri": redirect_uri, "state": state}
        return await self.start_oauth_redirect(
            sca_method, self.auth_base() + "/oauth2/authorize", params, pkce=True
        )

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        tokens = await self.exchange_code(
            self.auth_base() + "/oauth2/token?role=DEFAULT", credentials, code=code, redirect_uri=redirect_uri
        )
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
