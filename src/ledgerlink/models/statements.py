"""Manual statement imports (preview, then commit), the bank balances each sync reads and the account's
reconciliation (the bank's balance against the rows we hold)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import MONEY, Base, IDMixin, JSONType, TimestampMixin


class StatementImport(IDMixin, TimestampMixin, Base):
    """One uploaded statement file: ``preview`` until committed, then ``committed``."""

    __tablename__ = "statement_import"
    __table_args__ = (Index("ix_statement_import_account", "account_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16))  # preview | committed
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    period_from: Mapped[dt.date | None] = mapped_column(Date)
    period_to: Mapped[dt.date | None] = mapped_column(Date)
    opening_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    opening_date: Mapped[dt.date | None] = mapped_column(Date)
    closing_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    closing_date: Mapped[dt.date | None] = mapped_column(Date)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    inserted: Mapped[int | None] = mapped_column(Integer)
    committed_at: Mapped[dt.datetime | None]


class StatementImportRow(IDMixin, Base):
    """One row of an uploaded statement with its verdict against the account's rows at preview time."""

    __tablename__ = "statement_import_row"
    __table_args__ = (Index("ix_statement_import_row_import", "import_id", "position"),)

    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("statement_import.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    booking_date: Mapped[dt.date] = mapped_column(Date)
    value_date: Mapped[dt.date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    bank_ref: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    counterparty: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(140))
    balance_after: Mapped[Decimal | None] = mapped_column(MONEY)
    verdict: Mapped[str] = mapped_column(String(16))  # new | duplicate | conflicting
    transaction_id: Mapped[uuid.UUID | None]


class BankBalanceSnapshot(IDMixin, Base):
    """The bank's booked balance as one sync (or a statement's closing balance) read it."""

    __tablename__ = "bank_balance_snapshot"
    __table_args__ = (Index("ix_bank_balance_snapshot_account", "account_id", "as_of"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    as_of: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(16))  # sync | statement
    recorded_at: Mapped[dt.datetime]


class BankReconciliation(Base):
    """The latest balance check of an account (one row per account, rewritten by every check)."""

    __tablename__ = "bank_reconciliation"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_account.id", ondelete="CASCADE"), primary_key=True
    )
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(8))  # ok | gap | unknown
    bank_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    bank_as_of: Mapped[dt.date | None] = mapped_column(Date)
    computed_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    gap: Mapped[Decimal | None] = mapped_column(MONEY)
    gap_since: Mapped[dt.date | None] = mapped_column(Date)
    opening_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    checked_at: Mapped[dt.datetime]
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the check's state over the days before ``checkpoint_day`` (``balance.Checkpoint``, exact: its
    #: decimals as strings), so the next check reads only rows and balances from that day on. Cleared
    #: (both) by any write of a row dated on or before that day or of a balance dated on or before it.
    checkpoint_day: Mapped[dt.date | None] = mapped_column(Date)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
