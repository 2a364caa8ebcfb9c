"""From bank row to bookkeeping: open items, booking rules, booking history, BgMax lump sums."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import MONEY, Base, IDMixin, JSONType, TimestampMixin


class OpenItem(IDMixin, TimestampMixin, Base):
    """An open invoice of the platform (customer or supplier), keyed by the platform's id."""

    __tablename__ = "open_item"
    __table_args__ = (
        UniqueConstraint("company_id", "external_id"),
        Index("ix_open_item_company_status", "company_id", "status", "kind"),
    )

    company_id: Mapped[uuid.UUID]
    external_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # customer_invoice | supplier_invoice
    number: Mapped[str] = mapped_column(String(60))
    ocr: Mapped[str | None] = mapped_column(String(25))
    counterparty_name: Mapped[str] = mapped_column(String(200))
    counterparty_org_number: Mapped[str | None] = mapped_column(String(11))
    currency: Mapped[str] = mapped_column(String(3))
    amount_open: Mapped[Decimal] = mapped_column(MONEY)
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8))  # open | closed
    credit_note: Mapped[bool] = mapped_column(default=False, server_default=false())


class BookingRule(IDMixin, TimestampMixin, Base):
    """A company's own rule: conditions on a row → lines as shares of its amount."""

    __tablename__ = "booking_rule"

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    priority: Mapped[int] = mapped_column(Integer)
    conditions: Mapped[dict[str, Any]] = mapped_column(JSONType)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)


class BookingMemory(IDMixin, Base):
    """One booking the company made for a counterparty/text: the counter accounts and their shares.
    Learned from booking feedback (``transaction_id``) or seeded from an imported closing's vouchers."""

    __tablename__ = "booking_memory"
    __table_args__ = (
        Index("ix_booking_memory_company_key", "company_id", "key"),
        UniqueConstraint("company_id", "source_ref"),
    )

    company_id: Mapped[uuid.UUID]
    key: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(10))  # feedback | closing
    source_ref: Mapped[str] = mapped_column(String(120))
    booked_on: Mapped[dt.date] = mapped_column(Date)


class BgmaxImport(IDMixin, TimestampMixin, Base):
    """A BgMax file read for a bank account (one per file content and account)."""

    __tablename__ = "bgmax_import"
    __table_args__ = (UniqueConstraint("company_id", "account_id", "content_hash"),)

    company_id: Mapped[uuid.UUID]
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_account.id", ondelete="CASCADE"))
    content_hash: Mapped[str] = mapped_column(String(64))
    deposits: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)


class TransactionPart(Base):
    """One payment inside a bank row that carries a Bankgiro lump sum."""

    __tablename__ = "transaction_part"

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bank_transaction.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bgmax_import.id", ondelete="CASCADE"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reference: Mapped[str | None] = mapped_column(Text)
    ocr_valid: Mapped[bool]
    payer: Mapped[str | None] = mapped_column(Text)
    payer_org_number: Mapped[str | None] = mapped_column(String(11))
