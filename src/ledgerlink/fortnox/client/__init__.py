"""Fortnox API v3 client, OAuth2 helper, typed resources and year-end open items.

Import from here: ``from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth, TokenSet``.
"""

from ledgerlink.fortnox.client.api import PAGE_LIMIT, FortnoxClient, dumps_json, loads_json
from ledgerlink.fortnox.client.models import (
    Account,
    CompanyInformation,
    CreatedVoucher,
    FinancialYear,
    FortnoxParseError,
    Invoice,
    Payment,
    SupplierInvoice,
    Voucher,
    VoucherDraft,
    VoucherDraftRow,
    VoucherRow,
    VoucherSeries,
)
from ledgerlink.fortnox.client.oauth import FortnoxOAuth, InMemoryTokenProvider, TokenProvider, TokenSet
from ledgerlink.fortnox.client.open_items import OpenItem, open_items_at, total_open

__all__ = [
    "PAGE_LIMIT",
    "Account",
    "CompanyInformation",
    "CreatedVoucher",
    "FinancialYear",
    "FortnoxClient",
    "FortnoxOAuth",
    "FortnoxParseError",
    "InMemoryTokenProvider",
    "Invoice",
    "OpenItem",
    "Payment",
    "SupplierInvoice",
    "TokenProvider",
    "TokenSet",
    "Voucher",
    "VoucherDraft",
    "VoucherDraftRow",
    "VoucherRow",
    "VoucherSeries",
    "dumps_json",
    "loads_json",
    "open_items_at",
    "total_open",
]
