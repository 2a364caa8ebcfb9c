from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerlink.models.company import Plan


class CompanyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    org_number: str | None = Field(default=None, pattern=r"^\d{6}-?\d{4}$", examples=["556677-8899"])
    plan: Plan


class Entitlement(BaseModel):
    enabled: bool
    reason: Literal["business_plan", "trial", "upgrade_required"]


class Entitlements(BaseModel):
    automatic_bank_import: Entitlement


class CompanyRead(BaseModel):
    id: uuid.UUID
    name: str | None
    org_number: str | None
    plan: Plan
    entitlements: Entitlements
