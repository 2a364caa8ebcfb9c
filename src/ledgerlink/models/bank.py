"""Bank connections (one consent at one bank), linked accounts, imported transactions and sync runs."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import MONEY, Base, IDMixin, JSONType, TimestampMixin, str_enum

ACTIVE_RUN_PREDICATE = "status IN ('queued', 'running')"
HOLDS_PSU_IP_PREDICATE = "psu_ip_address IS NOT NULL"


class ConnectionStatus(enum.StrEnum):
    awaiting_authorization = "awaiting_authorization"
    active = "active"
    reauth_required = "reauth_required"
    revoked = "revoked"
    failed = "failed"


class AccountStatus(enum.StrEnum):
    pending_confirmation = "pending_confirmation"
    active = "active"
    paused = "paused"
    reauth_required = "reauth_required"
    disconnected = "disconnected"


class TransactionStatus(enum.StrEnum):
    unbooked = "unbooked"
    booked = "booked"
    ignored = "ignored"


class SyncTrigger(enum.StrEnum):
    initial = "initial"
    scheduled = "scheduled"
    manual = "manual"
    backfill = "backfill"


class SyncStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    deferred = "deferred"


class LastError(NamedTuple):
    """Why something did not succeed: an account's last sync (the run's error ``code``:
    ``consent_expired``, ``rate_limited``, ``bank_unavailable``, ``invalid_response``, ...) or a connection's
    login (``authorization_failed``, ``reauth_required``, ...), its message (shown to people, never a
    secret) and when."""

    code: str
    message: str
    at: dt.datetime

    def columns(self) -> dict[str, Any]:
        """The ``last_error_*`` column values (:class:`LastErrorColumns`)."""
        return {
            "last_error_code": self.code,
            "last_error_message": self.message[:1000],
            "last_error_at": self.at,
        }


class LastErrorColumns:
    """The ``last_error_*`` columns of a connection or an account: all null when nothing went wrong."""

    last_error_code: Mapped[str | None] = mapped_column(String(40))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[dt.datetime | None]

    def set_last_error(self, error: LastError | None) -> None:
        """Record why the last sync (or login) did not succeed (None: it did)."""
        self.last_error_code = error.code if error else None
        self.last_error_message = error.message[:1000] if error else None
        self.last_error_at = error.at if error else None


class BankConnection(IDMixin, TimestampMixin, LastErrorColumns, Base):
    """One consent at one bank. Secrets (consent id, tokens) are AES-GCM encrypted in ``secrets``; the
    ``last_error_*`` columns say why its last login, or the bank, failed (null while all is well)."""

    __tablename__ = "bank_connection"

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    bank_id: Mapped[str] = mapped_column(String(40))
    account_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[ConnectionStatus] = mapped_column(str_enum(ConnectionStatus))
    sca_method: Mapped[str | None] = mapped_column(String(16))
    redirect_uri: Mapped[str | None] = mapped_column(Text)
    # encrypted JSON of Credentials + psu/corporate ids; never returned, never logged
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    consent_expires_at: Mapped[dt.datetime | None]
    # accounts read once with the user present, right after authorization
    available_accounts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    authorized_at: Mapped[dt.datetime | None]
    decoupled_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the smallest ``consent_reminder_days`` threshold already reminded of for the current consent (a new
    # consent clears it), so each reminder lands once
    consent_reminded_days: Mapped[int | None] = mapped_column(Integer)
    # the connection at the same bank this one replaces once it is active (its accounts move over)
    replaces_id: Mapped[uuid.UUID | None]


class OAuthState(Base):
    """A single-use OAuth/consent ``state`` bound to a company and (for banks) a connection."""

    __tablename__ = "oauth_state"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "bank" | "fortnox"
    connection_id: Mapped[uuid.UUID | None]
    redirect_uri: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class BankAccount(IDMixin, TimestampMixin, LastErrorColumns, Base):
    """A linked bank account of a company, mapped to a BAS ledger account (1900-1999). Its
    ``last_error_*`` columns say why its last sync did not succeed (the run's code; a success clears them)."""

    __tablename__ = "bank_account"
    __table_args__ = (
        Index("ix_bank_account_due", "status", "next_sync_at"),
        # one active (not disconnected) link per bank account and company
        Index(
            "uq_bank_account_company_identity",
            "company_id",
            "bank_id",
            "identity_key",
            unique=True,
            postgresql_where=text("status <> 'disconnected'"),
            sqlite_where=text("status <> 'disconnected'"),
        ),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_connection.id", ondelete="RESTRICT"), index=True
    )
    bank_id: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    # IBAN, else BBAN, else external id: what re-binds the account when the bank issues new ids
    identity_key: Mapped[str] = mapped_column(String(200))
    iban: Mapped[str | None] = mapped_column(String(34))
    bban: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(String(200))
    display_name: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    usage: Mapped[str | None] = mapped_column(String(16))
    ledger_account: Mapped[str | None] = mapped_column(String(4))
    sync_from: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[AccountStatus] = mapped_column(str_enum(AccountStatus))
    last_synced_at: Mapped[dt.datetime | None]
    last_sync_status: Mapped[SyncStatus | None] = mapped_column(str_enum(SyncStatus))
    next_sync_at: Mapped[dt.datetime | None]
    # newest booked booking date seen: the next window starts at watermark - overlap
    booked_watermark: Mapped[dt.date | None] = mapped_column(Date)
    # sync_from moved earlier: the next run fetches from sync_from (with the user present)
    backfill_from: Mapped[dt.date | None] = mapped_column(Date)
    balance_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    balance_currency: Mapped[str | None] = mapped_column(String(3))
    balance_as_of: Mapped[dt.date | None] = mapped_column(Date)


class ImportedTransaction(IDMixin, Base):
    """An imported bank transaction: the inbox of "transactions to book". Keyed per account by
    ``identity``. (The adapter's transaction, before it is stored, is ``banks.adapters.base.BankTransaction``.)"""

    __tablename__ = "bank_transaction"
    __table_args__ = (
        UniqueConstraint("account_id", "identity"),
        Index("ix_bank_transaction_inbox", "company_id", "account_id", "status", "booking_date", "id"),
        Index("ix_bank_transaction_company_date", "company_id", "booking_date", "id"),
    )

    company_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    identity: Mapped[str] = mapped_column(String(120))
    provider_id: Mapped[str | None] = mapped_column(String(200))
    booking_status: Mapped[str] = mapped_column(String(8))  # booked | pending
    booking_date: Mapped[dt.date] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    counterparty: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(140))
    status: Mapped[TransactionStatus] = mapped_column(str_enum(TransactionStatus))
    voucher_ref: Mapped[str | None] = mapped_column(String(100))
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    first_seen_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    status_changed_at: Mapped[dt.datetime | None]


class SyncRun(IDMixin, TimestampMixin, Base):
    """One sync of one account: trigger, window, counts, timing and error."""

    __tablename__ = "sync_run"
    __table_args__ = (
        Index("ix_sync_run_account_created", "account_id", "created_at"),
        # At most one queued or running run per account, whatever the code path (schedule_sync inserts
        # with ON CONFLICT DO NOTHING against this index and answers 409 naming the run that holds it).
        Index(
            "uq_sync_run_active_account",
            "account_id",
            unique=True,
            postgresql_where=text(ACTIVE_RUN_PREDICATE),
            sqlite_where=text(ACTIVE_RUN_PREDICATE),
        ),
        # The few runs that still hold a user's address (the cron pass forgets it once they end).
        Index(
            "ix_sync_run_holding_psu_ip",
            "status",
            postgresql_where=text(HOLDS_PSU_IP_PREDICATE),
            sqlite_where=text(HOLDS_PSU_IP_PREDICATE),
        ),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    trigger: Mapped[SyncTrigger] = mapped_column(str_enum(SyncTrigger))
    user_present: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The user's address for a user-present run (sent as PSU-IP-Address), kept only until the run ends.
    psu_ip_address: Mapped[str | None] = mapped_column(String(45))
    status: Mapped[SyncStatus] = mapped_column(str_enum(SyncStatus))
    window_from: Mapped[dt.date | None] = mapped_column(Date)
    window_to: Mapped[dt.date | None] = mapped_column(Date)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    next_attempt_at: Mapped[dt.datetime | None]


class UnattendedRead(Base):
    """The PSD2 allowance ledger: one row per unattended read (account, endpoint, time)."""

    __tablename__ = "unattended_read"
    __table_args__ = (Index("ix_unattended_read_account_endpoint_at", "account_id", "endpoint", "read_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(20))  # transactions | balances | accounts
    read_at: Mapped[dt.datetime]
