"""Skandiabanken: BG-like AIS behind OAuth2 (docs/banks.md, "Skandiabanken").

* Authorization: redirect to Skandia's OAuth server (``/as/authorization.oauth2``, BankID at the
  bank), code exchanged at ``/as/token.oauth2`` in :meth:`complete_authorization`. ``auth_base_url``
  defaults to ``https://fsts.skandia.se``. There is no BG consent resource: consent status is read
  from the token (``valid`` while we hold one; the bank states no end date).
* AIS under ``/ais/v2`` with **kebab-case** query parameters (``date-from``, ``date-to``,
  ``booking-status``); paging follows ``_links.next``.
* ``bookingDate``/``valueDate`` arrive as zoned timestamps: converted to Europe/Stockholm before the
  date is taken (the shared date parser does that). Texts may come in
  ``remittanceInformationUnstructuredArray``.
* The production base URL is ``https://apis.skandia.se/open-banking/core-bank``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledgerlink.banks.adapters.base import (
    AuthorizationStart,
    AuthorizationStatus,
    BankUnavailable,
    ConnectionContext,
    ConsentInfo,
    ConsentStatus,
    Credentials,
    ScaMethod,
)
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter

AUTH_BASE_URL = "https://fsts.skandia.se"
SCOPE = "psd2.aisp"  # [UNCONFIRMED] scope name; configure per the bank's onboarding letter


class SkandiaAdapter(BerlinGroupAdapter):
    accounts_path = "/ais/v2/accounts"

    def auth_base(self) -> str:
        return (self.endpoint.auth_base_url or AUTH_BASE_URL).rstrip("/")

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        params = {"scope": SCOPE, "redirect_uri": redirect_uri, "state": state}
        return await self.start_oauth_redirect(
            sca_method, self.auth_base() + "/as/authorization.oauth2", params
        )

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        return await self.exchange_code(
            self.auth_base() + "/as/token.oauth2", credentials, code=code, redirect_uri=redirect_uri
        )

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> AuthorizationStatus:
        raise BankUnavailable(self.bank_id, "decoupled SCA is not offered through this adapter")

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> ConsentInfo:
        status = ConsentStatus.valid if credentials.access_token else ConsentStatus.received
        return ConsentInfo(status=status, valid_until=None)

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        return None

    def transactions_params(self, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
        return {"date-from": date_from.isoformat(), "date-to": date_to.isoformat(), "booking-status": "both"}


__all__ = ["SkandiaAdapter"]
