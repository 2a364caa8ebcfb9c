"""Schemas of open items, booking rules, suggestions and BgMax imports (a suggestion and booking
feedback are part of a transaction: ``inbox.schemas``)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ledgerlink.inbox.schemas import Suggestion
from ledgerlink.matching.references import normalize_org_number, ocr_valid, org_number_valid
from ledgerlink.schema_types import BAS_ACCOUNT_PATTERN, money_text


class OpenItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=100)
    kind: Literal["customer_invoice", "supplier_invoice"]
    number: str = Field(min_length=1, max_length=60)
    ocr: str | None = Field(default=None, max_length=25)
    counterparty_name: str = Field(min_length=1, max_length=200)
    counterparty_org_number: str | None = Field(default=None, max_length=11)
    currency: str = Field(default="SEK", pattern=r"^[A-Z]{3}$")
    amount_open: str = Field(description='The open amount, e.g. "1250.00"; "0.00" closes the item')
    invoice_date: dt.date
    due_date: dt.date
    credit_note: bool = Field(
        default=False, description="A credit note: its open amount is owed the other way (a negative item)"
    )

    @field_validator("ocr")
    @classmethod
    def _ocr(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = value.replace(" ", "")
        if not ocr_valid(digits):
            raise ValueError("ocr is not a valid OCR number (2-25 digits ending in a modulus-10 check digit)")
        return digits

    @field_validator("counterparty_org_number")
    @classmethod
    def _org(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not org_number_valid(value):
            raise ValueError("counterparty_org_number is not a valid org number (NNNNNN-NNNN)")
        return normalize_org_number(value)

    @field_validator("amount_open")
    @classmethod
    def _amount(cls, value: str) -> str:
        return money_text(value, "amount_open")


class OpenItemBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[OpenItemIn] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> OpenItemBatch:
        seen: set[str] = set()
        for item in self.items:
            if item.external_id in seen:
                raise ValueError(f"external_id {item.external_id} appears more than once")
            seen.add(item.external_id)
        return self


class OpenItemBatchResult(BaseModel):
    upserted: int
    closed: int


class OpenItemRead(BaseModel):
    external_id: str
    kind: Literal["customer_invoice", "supplier_invoice"]
    number: str
    ocr: str | None
    counterparty_name: str
    counterparty_org_number: str | None
    currency: str
    amount_open: str
    invoice_date: dt.date
    due_date: dt.date
    credit_note: bool
    status: Literal["open", "closed"]


class RuleConditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text_contains: str | None = Field(default=None, min_length=1, max_length=200)
    text_equals: str | None = Field(default=None, min_length=1, max_length=200)
    counterparty: str | None = Field(default=None, min_length=1, max_length=200)
    direction: Literal["in", "out"] | None = None
    amount_min: str | None = None
    amount_max: str | None = None
    bank_account_id: uuid.UUID | None = None

    @field_validator("amount_min", "amount_max")
    @classmethod
    def _amount(cls, value: str | None) -> str | None:
        return None if value is None else money_text(value, "amount")


class RuleLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(pattern=BAS_ACCOUNT_PATTERN)
    share: str = Field(description='A fraction of the row\'s amount: "1", "0.8"')
    vat_code: str | None = Field(default=None, max_length=10)

    @field_validator("share")
    @classmethod
    def _share(cls, value: str) -> str:
        try:
            share = Decimal(value)
        except InvalidOperation as exc:
            raise ValueError("share is not a decimal fraction") from exc
        if not share.is_finite() or not Decimal(0) < share <= Decimal(1):
            raise ValueError("share must be a fraction in (0, 1]")
        if share.as_tuple().exponent < -6:  # type: ignore[operator]
            raise ValueError("share has more than six decimals")
        return value


def _shares_sum_to_one(lines: list[RuleLine]) -> None:
    if sum(Decimal(line.share) for line in lines) != Decimal(1):
        raise ValueError("the shares of the lines must sum to 1")


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=100, ge=0, le=10000)
    conditions: RuleConditions
    lines: list[RuleLine] = Field(min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def _lines(cls, lines: list[RuleLine]) -> list[RuleLine]:
        _shares_sum_to_one(lines)
        return lines


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    priority: int | None = Field(default=None, ge=0, le=10000)
    conditions: RuleConditions | None = None
    lines: list[RuleLine] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("lines")
    @classmethod
    def _lines(cls, lines: list[RuleLine] | None) -> list[RuleLine] | None:
        if lines is not None:
            _shares_sum_to_one(lines)
        return lines


class RuleRead(BaseModel):
    id: uuid.UUID
    name: str
    priority: int
    conditions: RuleConditions
    lines: list[RuleLine]
    created_at: dt.datetime


class SuggestionList(BaseModel):
    items: list[Suggestion]


class DepositRead(BaseModel):
    date: dt.date
    amount: str
    payment_count: int
    transaction_id: uuid.UUID | None = Field(description="The bank row carrying the lump sum, when found")


class BgmaxImportRead(BaseModel):
    id: uuid.UUID
    deposits: list[DepositRead]
