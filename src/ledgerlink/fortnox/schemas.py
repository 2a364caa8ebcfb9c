"""Request and response bodies of the Fortnox connection endpoints (tokens never appear here)."""

from __future__ import annotations

import datetime as dt
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledgerlink.timestamps import Timestamp

ConnectionStatusValue = Literal["active", "expired", "revoked", "not_connected"]


class FortnoxAuthorizationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redirect_uri: str = Field(
        min_length=1, max_length=2000, description="Where Fortnox sends the user back; must be allow-listed"
    )


class FortnoxAuthorizationStarted(BaseModel):
    authorization_url: str = Field(description="Open in the user's browser")
    state: str = Field(description="Single use, bound to the company, valid 15 minutes")


class FortnoxAuthorizationCallback(BaseModel):
    """What Fortnox put on the redirect URI, relayed by the frontend: ``code`` and ``state``, or
    ``error`` (e.g. ``access_denied``) and ``state``."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(min_length=1, max_length=200)
    code: str | None = Field(default=None, min_length=1, max_length=2000)
    error: str | None = Field(default=None, min_length=1, max_length=200)
    error_description: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _code_or_error(self) -> Self:
        if not self.code and not self.error:
            raise ValueError("either code or error is required")
        return self


class FortnoxConnectionRead(BaseModel):
    status: ConnectionStatusValue
    fortnox_company_name: str | None = None
    org_number: str | None = None
    scopes: list[str] = Field(default_factory=list)
    tenant_id: str | None = None
    connected_at: Timestamp | None = None
    last_used_at: Timestamp | None = None
    expires_at: Timestamp | None = Field(
        default=None, description="last_used_at + 30 days; every import or export renews it"
    )


class FinancialYearRead(BaseModel):
    id: int
    from_date: dt.date
    to_date: dt.date
    accounting_method: str


class FinancialYearList(BaseModel):
    items: list[FinancialYearRead]


class VoucherSeriesRead(BaseModel):
    code: str
    description: str
    manual: bool = Field(description="Open for manual vouchers (needed for an export)")


class VoucherSeriesList(BaseModel):
    items: list[VoucherSeriesRead]
