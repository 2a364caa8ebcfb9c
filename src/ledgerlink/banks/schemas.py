"""Request and response bodies of the bank catalogue, connections, linked accounts and mappings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerlink.models.bank import BankAccount, BankConnection
from ledgerlink.statements.schemas import ReconciliationRead
from ledgerlink.timestamps import Timestamp

AccountType = Literal["business", "private"]
ScaMethodName = Literal["redirect", "decoupled"]
LedgerAccountNumber = Annotated[str, Field(min_length=1, max_length=10, examples=["1930"])]


class BankRead(BaseModel):
    id: str
    name: str
    bic: str | None
    status: Literal["available", "coming_soon"]
    account_types: list[AccountType]
    sca_methods: list[ScaMethodName]
    max_history_days: int
    consent_max_days: int
    configured: bool = Field(
        description="Whether the client certificate and signing key this bank requires are set up here; "
        "connecting to a bank that is not configured answers 409 bank_not_configured"
    )


class BankList(BaseModel):
    items: list[BankRead]


# --------------------------------------------------------------------------- connections


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_id: str = Field(min_length=1, max_length=40, examples=["nordea"])
    account_type: AccountType
    redirect_uri: str = Field(
        min_length=1, max_length=2000, examples=["https://app.example.se/bank/callback"]
    )
    psu_id: str | None = Field(
        default=None, max_length=100, description="The user's id at the bank (personnummer for BankID)"
    )
    corporate_id: str | None = Field(default=None, max_length=100, description="Company id at the bank")
    sca_method: ScaMethodName | None = Field(
        default=None,
        description="Preferred SCA: `redirect` (default when the bank offers it) or `decoupled` "
        "(Mobile BankID on another device; needs `psu_id`)",
    )
    replace_connection_id: uuid.UUID | None = Field(
        default=None,
        description="Replace this connection at the same bank: once the new one is active, the linked "
        "accounts its consent covers move to it (same resources, history and mapping), the rest are "
        "disconnected, and this one is revoked. Without it, starting a connection at a bank the company "
        "is already connected to (for the same person) is 409 `connection_exists`.",
    )


class ReauthorizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redirect_uri: str | None = Field(
        default=None, max_length=2000, description="Defaults to the connection's redirect URI"
    )
    sca_method: ScaMethodName | None = None


class RedirectAuthorization(BaseModel):
    method: Literal["redirect"] = "redirect"
    url: str


class DecoupledAuthorization(BaseModel):
    method: Literal["decoupled"] = "decoupled"
    autostart_token: str | None
    poll_interval_seconds: int


Authorization = Annotated[RedirectAuthorization | DecoupledAuthorization, Field(discriminator="method")]


class LastErrorRead(BaseModel):
    """Why an account's last sync, or a connection's login or consent, did not succeed."""

    code: str = Field(
        description="On an account, the sync run's error code: consent_expired (the consent reached its "
        "end), reauth_required (the bank no longer accepts it), rate_limited, bank_unavailable (an "
        "outage: the bank could not be reached), invalid_response (an answer we could not read), "
        "account_vanished, allowance_spent, bank_error, internal_error. On a connection: consent_expired "
        "or reauth_required (a new login is needed), authorization_failed (the bank or the user refused "
        "the login), authorization_timed_out (the BankID login was not completed in time), bank_error",
        examples=["consent_expired"],
    )
    message: str = Field(description="For people; never holds a secret")
    at: Timestamp

    @classmethod
    def of(cls, row: BankAccount | BankConnection) -> LastErrorRead | None:
        """The row's ``last_error_*`` columns (None when it has no error)."""
        if not row.last_error_code:
            return None
        return cls(
            code=row.last_error_code,
            message=row.last_error_message or "",
            at=row.last_error_at or row.modified_at,
        )


ConnectionStatusName = Literal["awaiting_authorization", "active", "reauth_required", "revoked", "failed"]


class ConnectionRead(BaseModel):
    id: uuid.UUID
    bank_id: str
    account_type: AccountType
    status: ConnectionStatusName
    consent_expires_at: Timestamp | None
    created_at: Timestamp
    last_error: LastErrorRead | None = Field(
        description="Why the connection needs a login (or its last login failed); null once one succeeds"
    )
    sca_method: ScaMethodName | None = None
    authorized_at: Timestamp | None = None


class ConnectionCreated(BaseModel):
    id: uuid.UUID
    status: ConnectionStatusName
    authorization: Authorization


class AuthorizationComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=4000, description="The bank's authorization code")
    state: str = Field(min_length=1, max_length=200, description="The state the bank echoed back")


class ConnectionPage(BaseModel):
    items: list[ConnectionRead]
    next_cursor: str | None = None


class MoneyRead(BaseModel):
    amount: str = Field(examples=["-125.50"])
    currency: str
    as_of: dt.date | None = None


class AvailableAccount(BaseModel):
    external_id: str
    iban: str | None
    bban: str | None
    name: str | None
    currency: str
    usage: AccountType | None
    balance: MoneyRead | None
    linked_bank_account_id: uuid.UUID | None = Field(
        default=None, description="Our bank account linked to it, if any"
    )


class AvailableAccountList(BaseModel):
    items: list[AvailableAccount]


# --------------------------------------------------------------------------- linked accounts


class BankAccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connection_id: uuid.UUID
    external_id: str = Field(min_length=1, max_length=200)
    sync_from: dt.date = Field(description="First booking date to import (Europe/Stockholm)")
    ledger_account: LedgerAccountNumber | None = None


class BankAccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sync_from: dt.date | None = None
    ledger_account: LedgerAccountNumber | None = None
    display_name: str | None = Field(default=None, max_length=200)


AccountStatusName = Literal["pending_confirmation", "active", "paused", "reauth_required", "disconnected"]


class BankAccountRead(BaseModel):
    id: uuid.UUID
    connection_id: uuid.UUID
    bank_id: str
    iban: str | None
    bban: str | None = None
    name: str | None
    currency: str
    ledger_account: str | None
    sync_from: dt.date
    status: AccountStatusName
    last_synced_at: Timestamp | None
    last_sync_status: Literal["queued", "running", "succeeded", "failed", "deferred"] | None
    next_sync_at: Timestamp | None
    balance: MoneyRead | None
    unbooked_count: int = Field(
        description="Booked rows with status unbooked (pending rows cannot be booked yet): the same count "
        "as the transactions_to_book to-do and the sync events"
    )
    created_at: Timestamp
    reconciliation: ReconciliationRead = Field(default_factory=ReconciliationRead)
    last_error: LastErrorRead | None = None


class BankAccountPage(BaseModel):
    items: list[BankAccountRead]
    next_cursor: str | None = None


# --------------------------------------------------------------------------- mapping


class AccountMappingRead(BaseModel):
    bank_account_id: uuid.UUID
    ledger_account: str | None
    ledger_account_name: str | None


class AccountMappingList(BaseModel):
    items: list[AccountMappingRead]


class AccountMappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ledger_account: LedgerAccountNumber


class LedgerAccountRead(BaseModel):
    number: str
    name: str


class LedgerAccountList(BaseModel):
    items: list[LedgerAccountRead]
