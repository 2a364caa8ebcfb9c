"""Länsförsäkringar Bank: Berlin Group with LF path segments (docs/banks.md, "Länsförsäkringar").

Differences from the shared adapter: consents under ``/ano/v3``, consent status and SCA status under
``/sec/v2``/``/sec/v3``, AIS under ``/ais/v1``; ``PSU-ID`` with ``PSU-ID-Type: SSSN``; decoupled
Mobile BankID is the default when the personnummer is known; redirect asks for an explicit
authorisation (``TPP-Explicit-Authorisation-Preferred``) and takes ``scaRedirect`` from it. Rows carry
``entryReference`` (no ``transactionId``); text falls back to ``merchantName`` then ``text``.
The base URL is the ``/openbanking`` root (``https://api.bank.lansforsakringar.se/openbanking``).
"""

from __future__ import annotations

from typing import Any

import httpx

from ledgerlink.banks.adapters.base import (
    AuthorizationStart,
    ConnectionContext,
    ReauthRequired,
    ScaMethod,
)
from ledgerlink.banks.adapters.berlingroup import BerlinGroupAdapter
from ledgerlink.banks.adapters.berlingroup.parsing import BerlinGroupParser, blank_to_none


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

    def consent_url(self, consent_id: str) -> str:
        return f"/sec/v2/consents/{consent_id}"

    def authorisation_url(self, consent_id: str, authorisation_id: str) -> str:
        return f"/sec/v3/consents/{consent_id}/authorisations/{authorisation_id}"

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        method: ScaMethod = sca_method or ("decoupled" if ctx.psu_id else "redirect")
        return await super().start_authorization(
            ctx, redirect_uri=redirect_uri, state=state, sca_method=method
        )

    def consent_headers(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod
    ) -> dict[str, str]:
        headers = super().consent_headers(ctx, redirect_uri=redirect_uri, state=state, sca_method=sca_method)
        if sca_method == "redirect":
            headers["TPP-Explicit-Authorisation-Preferred"] = "true"
        return headers

    def map_error_response(self, response: httpx.Response) -> None:
        if "authorization code is invalid or expired" in response.text.casefold():
            raise ReauthRequired(self.bank_id, "authorization code is invalid or expired")
        super().map_error_response(response)


__all__ = ["LansforsakringarAdapter"]
