from __future__ import annotations

import enum
import uuid

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import Base, TimestampMixin


class Plan(enum.StrEnum):
    free = "free"
    business = "business"


class Company(TimestampMixin, Base):
    """A company of the platform. Its id is the ``company_id`` claim of callers' tokens."""

    __tablename__ = "company"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    org_number: Mapped[str | None] = mapped_column(String(20))
    plan: Mapped[Plan] = mapped_column(Enum(Plan, native_enum=False, length=20), default=Plan.free)
