"""ORM models, one module per aggregate, re-exported for Alembic and relationships."""

from ledgerlink.db.base import Base
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    BankConnection,
    BankTransaction,
    ConnectionStatus,
    OAuthState,
    SyncRun,
    SyncStatus,
    SyncTrigger,
    TransactionStatus,
    UnattendedRead,
)
from ledgerlink.models.closing import (
    Adjustment,
    AdjustmentRow,
    Closing,
    ClosingAccount,
    ClosingExport,
    ClosingExportItem,
    ClosingImport,
    ClosingOpenItem,
    ClosingUpload,
    ClosingVoucher,
    ClosingVoucherRow,
    DataSource,
    ExportState,
    JobStatus,
)
from ledgerlink.models.company import Company, Plan
from ledgerlink.models.events import IdempotencyRecord, OutboxEvent, WebhookDelivery, WebhookEndpoint
from ledgerlink.models.fortnox import FortnoxConnection as FortnoxConnection
from ledgerlink.models.inbox import Todo
from ledgerlink.models.matching import BgmaxImport, BookingMemory, BookingRule, OpenItem, TransactionPart

__all__ = [
    "AccountStatus",
    "Adjustment",
    "AdjustmentRow",
    "BankAccount",
    "BankConnection",
    "BankTransaction",
    "Base",
    "BgmaxImport",
    "BookingMemory",
    "BookingRule",
    "Closing",
    "ClosingAccount",
    "ClosingExport",
    "ClosingExportItem",
    "ClosingImport",
    "ClosingOpenItem",
    "ClosingUpload",
    "ClosingVoucher",
    "ClosingVoucherRow",
    "Company",
    "ConnectionStatus",
    "DataSource",
    "ExportState",
    "IdempotencyRecord",
    "JobStatus",
    "OAuthState",
    "OpenItem",
    "OutboxEvent",
    "Plan",
    "SyncRun",
    "SyncStatus",
    "SyncTrigger",
    "Todo",
    "TransactionPart",
    "TransactionStatus",
    "UnattendedRead",
    "WebhookDelivery",
    "WebhookEndpoint",
]
