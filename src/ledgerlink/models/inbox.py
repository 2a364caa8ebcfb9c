"""To-dos shown to the user ("Att göra")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import Base, IDMixin, JSONType, TimestampMixin


class Todo(IDMixin, TimestampMixin, Base):
    """An open to-do. ``subject_id`` is the account or connection it is about (None for company-wide);
    at most one open to-do per (company, type, subject)."""

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
