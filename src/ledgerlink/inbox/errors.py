"""Errors of the inbox."""

from __future__ import annotations

from ledgerlink.errors import NotFound, Unprocessable


class TransactionsNotFound(NotFound):
    code = "transaction_not_found"
    title = "Transaction not found"


class PendingNotBookable(Unprocessable):
    code = "pending_not_bookable"
