"""What was open at a year-end date, reconstructed from invoices and their payments.

Fortnox's ``Balance`` and ``filter=unpaid`` describe today, not the year end. An invoice was open at
``year_end`` when it is booked, not cancelled, dated on or before ``year_end``, and not finally paid by
then (``FinalPayDate`` empty or after ``year_end``). Its open amount then is ``Total`` minus what its
payments (with write-offs) dated on or before ``year_end`` settled. Credit invoices carry negative totals
and so reduce the sum. The same rule serves customer invoices (1510) and supplier invoices (2440).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from ledgerlink.fortnox.client.models import Payment


class InvoiceLike(Protocol):
    @property
    def document_number(self) -> str: ...
    @property
    def counterparty(self) -> str: ...
    @property
    def invoice_date(self) -> dt.date: ...
    @property
    def due_date(self) -> dt.date | None: ...
    @property
    def final_pay_date(self) -> dt.date | None: ...
    @property
    def total(self) -> Decimal: ...
    @property
    def booked(self) -> bool: ...
    @property
    def cancelled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class OpenItem:
    document_number: str
    counterparty: str
    invoice_date: dt.date
    due_date: dt.date | None
    open_amount: Decimal


def may_be_open_at(invoice: InvoiceLike, year_end: dt.date) -> bool:
    """The invoice-level conditions (no payments needed)."""
    return (
        invoice.booked
        and not invoice.cancelled
        and invoice.invoice_date <= year_end
        and (invoice.final_pay_date is None or invoice.final_pay_date > year_end)
    )


def open_items_at(
    invoices: Iterable[InvoiceLike], payments: Iterable[Payment], year_end: dt.date
) -> list[OpenItem]:
    """Open items at ``year_end``, ordered by invoice date then document number.

    ``payments`` may include payments of other invoices and payments after ``year_end``; they are
    ignored. Invoices whose remaining amount at ``year_end`` is zero are left out.
    """
    settled: dict[str, Decimal] = defaultdict(Decimal)
    for payment in payments:
        if payment.payment_date <= year_end:
            settled[payment.invoice_number] += payment.settled
    items = [
        OpenItem(
            document_number=inv.document_number,
            counterparty=inv.counterparty,
            invoice_date=inv.invoice_date,
            due_date=inv.due_date,
            open_amount=inv.total - settled[inv.document_number],
        )
        for inv in invoices
        if may_be_open_at(inv, year_end)
    ]
    items = [item for item in items if item.open_amount != 0]
    items.sort(key=lambda item: (item.invoice_date, _natural(item.document_number)))
    return items


def total_open(items: Sequence[OpenItem]) -> Decimal:
    return sum((item.open_amount for item in items), Decimal(0))


def _natural(number: str) -> tuple[int, str]:
    return (int(number), "") if number.isdigit() else (0, number)


__all__ = ["InvoiceLike", "OpenItem", "may_be_open_at", "open_items_at", "total_open"]
