"""The company's Fortnox connection: one per company, tokens AES-GCM encrypted at rest."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import Base, IDMixin, TimestampMixin, str_enum


class FortnoxConnectionStatus(enum.StrEnum):
    """Stored status. The API also reports ``expired`` when ``now > expires_at`` and ``not_connected``
    when there is no row."""

    active = "active"
    expired = "expired"
    revoked = "revoked"


class FortnoxConnection(IDMixin, TimestampMixin, Base):
    """``secrets`` is ``SecretBox.encrypt_json({access_token, refresh_token, expires_at, scope},
    context=str(id))``; None once revoked or expired. Never returned, never logged.

    ``expires_at = last_used_at + settings.fortnox.validity_days``: every import or export renews it.
    ``access_expires_at`` (the access token's expiry, not secret) lets the cron pick tokens to refresh
    without decrypting every row."""

    __tablename__ = "fortnox_connection"

    company_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    status: Mapped[FortnoxConnectionStatus] = mapped_column(str_enum(FortnoxConnectionStatus))
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_expires_at: Mapped[dt.datetime | None]
    fortnox_company_name: Mapped[str | None] = mapped_column(String(200))
    org_number: Mapped[str | None] = mapped_column(String(20))
    scopes: Mapped[str] = mapped_column(Text, default="")
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    connected_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    last_refreshed_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
