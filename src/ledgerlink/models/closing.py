"""Year-end closings: imports (Fortnox/SIE) with the imported ledger, adjustments and their export.

Imported data (accounts, vouchers, rows, open items) is keyed by the import that wrote it; a closing
shows the data of its ``current_import_id`` only, so a re-import becomes visible in one step when it
succeeds and an import that fails changes nothing.

Exactly-once export: an adjustment's ``export_state`` goes ``none -> sending -> posted | failed |
uncertain``; each step is committed on its own before/after the Fortnox call, so a run that finds an
adjustment ``sending`` (a crash) or ``uncertain`` (a timeout) looks the voucher up before sending again.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ledgerlink.db.base import MONEY, Base, IDMixin, JSONType, TimestampMixin, str_enum


class DataSource(enum.StrEnum):
    fortnox = "fortnox"
    sie = "sie"


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class ExportStatus(enum.StrEnum):
    """An export job: ``partially_failed`` when some adjustments were posted and others not, ``failed``
    when none was (each item says why)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    partially_failed = "partially_failed"
    failed = "failed"


class ExportState(enum.StrEnum):
    """Where an adjustment (and one export item) stands on its way to a Fortnox voucher."""

    none = "none"
    pending = "pending"
    sending = "sending"
    posted = "posted"
    failed = "failed"
    uncertain = "uncertain"


class JobColumns:
    """A background job's progress, error and timing (imports and exports; the answer shows them as
    ``progress``, ``error``, ``started_at`` and ``finished_at``)."""

    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_step: Mapped[str] = mapped_column(String(40), default="queued")
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class Closing(IDMixin, TimestampMixin, Base):
    """One year-end closing ("uppdrag") of a company's financial year."""

    __tablename__ = "closing"

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    financial_year_start: Mapped[dt.date] = mapped_column(Date)
    financial_year_end: Mapped[dt.date] = mapped_column(Date)
    data_source: Mapped[DataSource] = mapped_column(str_enum(DataSource))
    # the import whose data the closing shows (set when an import succeeds); no FK: imports reference us
    current_import_id: Mapped[uuid.UUID | None]
    imported_at: Mapped[dt.datetime | None]
    company_name: Mapped[str | None] = mapped_column(String(200))
    org_number: Mapped[str | None] = mapped_column(String(20))
    fortnox_financial_year_id: Mapped[int | None] = mapped_column(Integer)


class ClosingImport(IDMixin, TimestampMixin, JobColumns, Base):
    """An import job: from Fortnox (SIE export + open invoices) or from an uploaded SIE file."""

    __tablename__ = "closing_import"
    __table_args__ = (Index("ix_closing_import_closing_created", "closing_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    closing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing.id", ondelete="CASCADE"))
    source: Mapped[DataSource] = mapped_column(str_enum(DataSource))
    status: Mapped[JobStatus] = mapped_column(str_enum(JobStatus))
    file_name: Mapped[str | None] = mapped_column(String(255))
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class ClosingUploadPart(Base):
    """A part (at most a megabyte) of an uploaded SIE file, until its import job has read them."""

    __tablename__ = "closing_upload_part"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("closing_import.id", ondelete="CASCADE"), primary_key=True
    )
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class ClosingAccount(Base):
    """One account of an import's chart with its year-0 balances (debit positive, credit negative)."""

    __tablename__ = "closing_account"

    import_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("closing_import.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[str] = mapped_column(String(20), primary_key=True)
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    type: Mapped[str | None] = mapped_column(String(1))
    opening_balance: Mapped[Decimal] = mapped_column(MONEY)
    closing_balance: Mapped[Decimal] = mapped_column(MONEY)
    period_change: Mapped[Decimal] = mapped_column(MONEY)


class ClosingVoucher(Base):
    """An imported voucher (``#VER``)."""

    __tablename__ = "closing_voucher"
    __table_args__ = (Index("ix_closing_voucher_import_order", "import_id", "date", "series", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing_import.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    seq: Mapped[int] = mapped_column(Integer)  # position in the file: a stable keyset order
    series: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(40))
    date: Mapped[dt.date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text, default="")
    registration_date: Mapped[dt.date | None] = mapped_column(Date)


class ClosingVoucherRow(Base):
    """A ``#TRANS`` row of an imported voucher; ``amount`` is debit positive."""

    __tablename__ = "closing_voucher_row"
    __table_args__ = (Index("ix_closing_voucher_row_import_account", "import_id", "account"),)

    voucher_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("closing_voucher.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing_import.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID]
    account: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    date: Mapped[dt.date | None] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))


class ClosingOpenItem(Base):
    """A customer (1510) or supplier (2440) invoice open at the year end, amounts as Fortnox gives them."""

    __tablename__ = "closing_open_item"
    __table_args__ = (Index("ix_closing_open_item_import_account", "import_id", "account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing_import.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    account: Mapped[str] = mapped_column(String(20))
    document_number: Mapped[str] = mapped_column(String(60))
    counterparty: Mapped[str] = mapped_column(Text, default="")
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    open_amount: Mapped[Decimal] = mapped_column(MONEY)


class Adjustment(IDMixin, TimestampMixin, Base):
    """A closing adjustment ("bokföringsorder") and where its export to Fortnox stands."""

    __tablename__ = "closing_adjustment"
    __table_args__ = (Index("ix_closing_adjustment_closing_created", "closing_id", "created_at"),)

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    closing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(200))
    export_state: Mapped[ExportState] = mapped_column(str_enum(ExportState), default=ExportState.none)
    export_series: Mapped[str | None] = mapped_column(String(10))
    export_error: Mapped[str | None] = mapped_column(Text)
    export_attempted_at: Mapped[dt.datetime | None]
    fortnox_series: Mapped[str | None] = mapped_column(String(10))
    fortnox_number: Mapped[int | None] = mapped_column(Integer)
    fortnox_year: Mapped[int | None] = mapped_column(Integer)


class AdjustmentRow(Base):
    __tablename__ = "closing_adjustment_row"

    adjustment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("closing_adjustment.id", ondelete="CASCADE"), primary_key=True
    )
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(20))
    debit: Mapped[Decimal] = mapped_column(MONEY)
    credit: Mapped[Decimal] = mapped_column(MONEY)
    description: Mapped[str | None] = mapped_column(String(200))


class ClosingExport(IDMixin, TimestampMixin, JobColumns, Base):
    """An export job: selected adjustments, each to become one voucher in ``voucher_series``."""

    __tablename__ = "closing_export"

    company_id: Mapped[uuid.UUID] = mapped_column(index=True)
    closing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(20))
    voucher_series: Mapped[str] = mapped_column(String(10))
    status: Mapped[ExportStatus] = mapped_column(str_enum(ExportStatus))


class ClosingExportItem(Base):
    """One adjustment of one export and its outcome."""

    __tablename__ = "closing_export_item"
    __table_args__ = (UniqueConstraint("export_id", "adjustment_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    export_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("closing_export.id", ondelete="CASCADE"))
    adjustment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("closing_adjustment.id", ondelete="CASCADE"), index=True
    )
    company_id: Mapped[uuid.UUID]
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[ExportState] = mapped_column(str_enum(ExportState), default=ExportState.pending)
    fortnox_series: Mapped[str | None] = mapped_column(String(10))
    fortnox_number: Mapped[int | None] = mapped_column(Integer)
    fortnox_year: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
