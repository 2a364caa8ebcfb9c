"""ORM models, one module per aggregate, re-exported for Alembic and relationships."""

from ledgerlink.db.base import Base
from ledgerlink.models.bank import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    ImportedTransaction,
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
    ClosingUploadPart,
    ClosingVoucher,
    ClosingVoucherRow,
    DataSource,
    ExportState,
    JobStatus,
)
from ledgerlink.models.company import Company, Plan
from ledgerlink.models.events import IdempotencyRecord, OutboxEvent, WebhookDelivery, WebhookEndpoint
from ledgerlink.models.fortnox import FortnoxConnection as FortnoxConnection
from ledgerlink.models.inbox import Todo, TodoType
from ledgerlink.models.matching import BgmaxImport, BookingMemory, BookingRule, OpenItem, TransactionPart
from ledgerlink.models.statements import (
    BankBalanceSnapshot,
    BankReconciliation,
    StatementImport,
    StatementImportRow,
)

__all__ = [
    "AccountStatus",
    "Adjustment",
    "AdjustmentRow",
    "BankAccount",
    "BankBalanceSnapshot",
    "BankConnection",
    "BankReconciliation",
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
    "ClosingUploadPart",
    "ClosingVoucher",
    "ClosingVoucherRow",
    "Company",
    "ConnectionStatus",
    "DataSource",
    "ExportState",
    "IdempotencyRecord",
    "ImportedTransaction",
    "JobStatus",
    "OAuthState",
    "OpenItem",
    "OutboxEvent",
    "Plan",
    "StatementImport",
    "StatementImportRow",
    "SyncRun",
    "SyncStatus",
    "SyncTrigger",
    "Todo",
    "TodoType",
    "TransactionPart",
    "TransactionStatus",
    "UnattendedRead",
    "WebhookDelivery",
    "WebhookEndpoint",
]
