"""Ålandsbanken Sweden (UK OBIE v3.1 profile run by Crosskey), docs/banks.md, "Ålandsbanken".

Differences from the OBIE base: AIS under ``/open-banking/v3.1/aisp``, OIDC on
``open.alandsbanken.se`` (``/oidc/auth``, ``/oidc/v1.0/token``), Crosskey's ``X-API-Key`` header (our
``app_id`` setting) on every call, and transactions read in windows of at most 90 days.

Confirmed from ``sidde7r/tink-backend-aggregation`` (Tink's production agents, 2021-22) (``serviceproviders/openbanking/crosskey/CrosskeyBaseConstants``,
``se/openbanking/alandsbanken/AlandsbankenAgent``): the hosts, ``/oidc/auth`` with a signed request
object (``code id_token``, scope ``openid accounts``), ``/oidc/v1.0/token``, ``X-API-Key``, the
permissions, 90-day windows, ``Retry-After`` on 429. Unconfirmed: business accounts; current versions.
"""

from __future__ import annotations

from ledgerlink.banks.adapters.obie import ObieAdapter

WINDOW_DAYS = 90


class AlandsbankenAdapter(ObieAdapter):
    aisp_path = "/open-banking/v3.1/aisp"
    default_auth_base_url = "https://open.alandsbanken.se"
    authorize_path = "/oidc/auth"
    token_path = "/oidc/v1.0/token"
    window_days = WINDOW_DAYS  # Crosskey serves at most 90 days per query

    def extra_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.endpoint.app_id} if self.endpoint.app_id else {}
