"""Revolut (UK OBIE v3.1 at ``oba.revolut.com``), docs/banks.md, "Revolut".

Differences from the OBIE base: Revolut's ``x-fapi-financial-id``, the token endpoint on
``oba-auth.revolut.com``, the consent UI on the API host (``/ui/index.html``) with ``scope=accounts``,
and the history rule: transactions older than 90 days are served only shortly after SCA.

Confirmed from Revolut's documentation (developer.revolut.com, "Get account and transaction
information", "Create an account access consent", "Usage and limits"): the client-credentials token at
``oba-auth.revolut.com/token`` (scope ``accounts``, with the transport certificate), the consent at
``/account-access-consents`` with ``x-fapi-financial-id: 001580000103UAvAAM`` and the Bearer token, the
permissions and their dependencies, ``x-jws-signature`` only on payment requests (not on the AIS
consent), four unattended reads per account, endpoint and day, ``x-fapi-customer-ip-address`` with the
user present. Unconfirmed: the exact window of >90-day history after SCA; Revolut Business over PSD2.
"""

from __future__ import annotations

import datetime as dt

from ledgerlink.banks.adapters.base import ConnectionContext, Credentials
from ledgerlink.banks.adapters.http import today_stockholm, utcnow
from ledgerlink.banks.adapters.obie import ObieAdapter

#: Unattended reads only reach this far back (the 90-day RTS window, one day of margin).
UNATTENDED_HISTORY_DAYS = 89
#: How long after SCA deep history is served. Revolut's page is cut off before the number; 5 minutes
#: is its documented SCA window for the other restricted AIS endpoints (blog 2024-09-16).
DEEP_HISTORY_WINDOW = dt.timedelta(minutes=5)


class RevolutAdapter(ObieAdapter):
    financial_id = "001580000103UAvAAM"
    default_auth_base_url = "https://oba-auth.revolut.com"
    token_path = "/token"
    authorize_scope = "accounts"

    async def oidc_endpoints(self, ctx: ConnectionContext) -> tuple[str, str]:
        # The consent UI is served from the API host (sandbox and production alike).
        return f"{self.base_url}/ui/index.html", f"{self.auth_base_url}{self.token_path}"

    def transaction_window(
        self, ctx: ConnectionContext, credentials: Credentials, date_from: dt.date, date_to: dt.date
    ) -> tuple[dt.date, dt.date]:
        """Ask for more than 89 days only within the deep-history window after SCA; otherwise Revolut
        answers 403 for the whole request, so the window is cut to what it will serve."""
        floor = today_stockholm() - dt.timedelta(days=UNATTENDED_HISTORY_DAYS)
        if date_from >= floor or self._within_deep_history_window(credentials):
            return date_from, date_to
        return floor, max(date_to, floor)

    @staticmethod
    def _within_deep_history_window(credentials: Credentials) -> bool:
        raw = credentials.extra.get("authorised_at")
        if not raw:
            return False
        try:
            authorised_at = dt.datetime.fromisoformat(raw)
        except ValueError:
            return False
        if authorised_at.tzinfo is None:
            authorised_at = authorised_at.replace(tzinfo=dt.UTC)
        return utcnow() - authorised_at <= DEEP_HISTORY_WINDOW
