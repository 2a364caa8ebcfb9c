"""ICA Banken: its own PSD2 API, BG-shaped payloads, OAuth2 redirect with the personnummer (docs/banks.md, "ICA Banken").

* Authorization: no BG consent resource. The user is sent to ICA's authorize endpoint
  (``ssn`` = personnummer, scope ``account``); the code is exchanged for tokens in
  :meth:`complete_authorization` with the endpoint's client_id/client_secret. ``auth_base_url``
  defaults to ``https://ims.icagruppen.se/oauth/v2``; the token endpoint is ``mtls-token`` on
  ``https://mtls-ims.icagruppen.se/oauth/v2`` (mTLS is the transport's business).
* AIS: ``/Accounts?withBalance=true``, ``/Accounts/{id}/transactions?from&to&status=both`` under the
  configured base URL (``.../psd2/accounts/1.0.0`` in production); no paging (one date window).
  Balances come with the account list (``interimAvailable``). Rows: id ``entryReference``, text in
  ``transactionText``.
* "Transaction not found" on an empty window is an empty page, not an error. "Old KYC information"
  means the user must update KYC in the ICA app → ReauthRequired.
* There is no consent resource to read or delete: :meth:`get_consent` reports ``valid`` while we hold
  a token with no bank-stated end date (``valid_until`` None), and :meth:`revoke` only forgets.

Confirmed from ``sidde7r/tink-backend-aggregation`` (Tink's production agents, 2021-22) (``se/openbanking/icabanken/IcaBankenConstants``, ``IcaBankenApiClient``):
the authorize and ``mtls-token`` endpoints, the ``ssn`` parameter, scope ``account``, the AIS paths and
``from``/``to``/``status=both``, ``entryReference`` and ``transactionText``, 18 months of history.
Unconfirmed: renewing the token with the refresh-token grant (standard OAuth2, not seen in Tink's
code: if ICA refuses it, the connection asks for a new login, as before); business accounts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from ledgerlink.banks.adapters.base import (
    AuthorizationStart,
    Balance,
    ConnectionContext,
    Credentials,
    ReauthRequired,
    ScaMethod,
)
from ledgerlink.banks.adapters.berlingroup import TokenAccessAdapter
from ledgerlink.banks.adapters.berlingroup.parsing import BerlinGroupParser, blank_to_none
from ledgerlink.banks.adapters.http import EmptyWindow

AUTH_BASE_URL = "https://ims.icagruppen.se/oauth/v2"
TOKEN_URL = "https://mtls-ims.icagruppen.se/oauth/v2/mtls-token"


class IcaBankenParser(BerlinGroupParser):
    def description(self, raw: dict[str, Any]) -> str | None:
        return blank_to_none(raw.get("transactionText")) or super().description(raw)


class IcaBankenAdapter(TokenAccessAdapter):
    accounts_path = "/Accounts"
    parser_class = IcaBankenParser

    def authorize_url(self) -> str:
        return (self.endpoint.auth_base_url or AUTH_BASE_URL).rstrip("/") + "/authorize"

    def token_url(self) -> str:
        if self.endpoint.auth_base_url:
            return self.endpoint.auth_base_url.rstrip("/") + "/mtls-token"
        return TOKEN_URL

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        params = {"scope": "account", "redirect_uri": redirect_uri, "state": state, "ssn": ctx.psu_id}
        return await self.start_oauth_redirect(sca_method, self.authorize_url(), params)

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        return await self.exchange_code(self.token_url(), credentials, code=code, redirect_uri=redirect_uri)

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Renew the access token with the refresh token (the standard OAuth2 grant at the token
        endpoint; unconfirmed for this bank, see the module docstring)."""
        return await self.refresh_tokens(self.token_url(), credentials)

    def transactions_params(self, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
        return {"from": date_from.isoformat(), "to": date_to.isoformat(), "status": "both"}

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> Balance:
        """ICA serves balances only on the account list."""
        for account in await self.list_accounts(ctx, credentials):
            if account.external_id == account_id:
                if account.balance is None:
                    self.fail("account has no balance", "balances")
                return account.balance
        self.fail("account not in the account list", "account_id")

    def map_error_response(self, response: httpx.Response) -> None:
        text = response.text.casefold()
        if "transaction not found" in text and response.request.url.path.endswith("/transactions"):
            raise EmptyWindow  # the window has no rows
        if "old kyc information" in text:
            raise ReauthRequired(self.bank_id, "the user must update KYC information in the ICA app")
        super().map_error_response(response)


__all__ = ["IcaBankenAdapter"]
