"""To-dos shown to the user ("Att göra")."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import Base, IDMixin, JSONType, TimestampMixin


class TodoType(enum.StrEnum):
    """Every kind of to-do ("Att göra"). All but ``transactions_to_book`` are stored rows (one open per
    company, type and subject); that one is counted from the unbooked transactions when listed."""

    transactions_to_book = "transactions_to_book"  # derived: an account's unbooked transactions
    reauth_required = "reauth_required"  # subject: the bank connection
    consent_expiring = "consent_expiring"  # subject: the bank connection
    sync_failed = "sync_failed"  # subject: the linked bank account
    upgrade_required = "upgrade_required"  # company-wide: automatic import needs the Business plan
    fortnox_expiring = "fortnox_expiring"  # subject: "fortnox" (the company's Fortnox connection)
    balance_gap = "balance_gap"  # subject: the bank account whose books miss rows the bank has
    sync_stalled = "sync_stalled"  # subject: the bank account that went quiet for longer than usual


class Todo(IDMixin, TimestampMixin, Base):
    """A to-do of a :class:`TodoType`. ``subject_key`` is the account or connection it is about ("" for
    company-wide); at most one open to-do per (company, type, subject). Written only through
    ``ledgerlink.inbox.repository.TodoRepository``."""

    __tablename__ = "todo"
    __table_args__ = (
        Index(
            "uq_todo_open",
            "company_id",
            "type",
            "subject_key",
            unique=True,
            postgresql_where=text("resolved_at IS NULL"),
            sqlite_where=text("resolved_at IS NULL"),
        ),
    )

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    type: Mapped[str] = mapped_column(String(40))
    subject_key: Mapped[str] = mapped_column(String(80), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    resolved_at: Mapped[dt.datetime | None]
