"""Ålandsbanken Sweden (UK OBIE v3.1 profile run by Crosskey), docs/banks.md, "Ålandsbanken".

Differences from the OBIE base: AIS under ``/open-banking/v3.1/aisp``, OIDC on
``open.alandsbanken.se`` (``/oidc/auth``, ``/oidc/v1.0/token``), Crosskey's ``X-API-Key`` header (our
``app_id`` setting) on every call, and transactions read in windows of at most 90 days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ledgerlink.banks.adapters.base import BankTransaction, ConnectionContext, Credentials
from ledgerlink.banks.adapters.obie import ObieAdapter

WINDOW_DAYS = 90


class AlandsbankenAdapter(ObieAdapter):
    aisp_path = "/open-banking/v3.1/aisp"
    default_auth_base_url = "https://open.alandsbanken.se"
    authorize_path = "/oidc/auth"
    token_path = "/oidc/v1.0/token"

    def extra_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.endpoint.app_id} if self.endpoint.app_id else {}

    async def fetch_transactions(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        account_id: str,
        date_from: dt.date,
        date_to: dt.date,
    ) -> Sequence[BankTransaction]:
        """Crosskey serves at most 90 days per query: read consecutive windows, oldest first."""
        out: list[BankTransaction] = []
        start = date_from
        while start <= date_to:
            end = min(date_to, start + dt.timedelta(days=WINDOW_DAYS - 1))
            out.extend(await super().fetch_transactions(ctx, credentials, account_id, start, end))
            start = end + dt.timedelta(days=1)
        return out
