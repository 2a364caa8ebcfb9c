"""Voucher proposals: the balanced lines of a suggestion, the row's bank ledger account included.

A row's amount is signed (incoming ≥ 0): its bank line is debited when money comes in and credited
when it goes out; the counter lines take the other side. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ledgerlink.matching.invoices import ZERO, Match, amount_text
from ledgerlink.money import round_to_ore

RECEIVABLES, PAYABLES = "1510", "2440"
ROUNDING_ACCOUNT = "3740"
FEE_INCOME_ACCOUNT, FEE_COST_ACCOUNT = "3990", "6570"
CUSTOMER_PREPAYMENTS, SUPPLIER_PREPAYMENTS = "2420", "1680"
#: The bank ledger account when the row's account has none mapped.
DEFAULT_BANK_ACCOUNT = "1930"

#: A counter account with its share of the row's amount and its VAT code.
Share = tuple[str, Decimal, str | None]


def line(
    account: str, amount: Decimal, *, debit: bool, vat_code: str | None = None, description: str | None = None
) -> dict[str, Any]:
    """One voucher line; a negative amount goes to the other side."""
    amount = round_to_ore(amount)
    if amount < 0:
        amount, debit = -amount, not debit
    out: dict[str, Any] = {
        "account": account,
        "debit": amount_text(amount) if debit else "0.00",
        "credit": "0.00" if debit else amount_text(amount),
    }
    if vat_code:
        out["vat_code"] = vat_code
    if description:
        out["description"] = description
    return out


def invoice_lines(bank: str | None, amount: Decimal, match: Match) -> list[dict[str, Any]]:
    """The bank line, one receivables (1510) or payables (2440) line per allocated invoice, and the
    remainder on the account of its kind."""
    incoming = amount >= 0
    paid = abs(amount)
    ledger = RECEIVABLES if incoming else PAYABLES
    lines = [line(bank or DEFAULT_BANK_ACCOUNT, paid, debit=incoming)]
    for item, allocated in match.allocations:
        lines.append(line(ledger, allocated, debit=not incoming, description=f"Invoice {item.number}"))
    rest = paid - sum((a for _, a in match.allocations), ZERO)
    if rest:
        account = {
            "rounding": ROUNDING_ACCOUNT,
            "fee": FEE_INCOME_ACCOUNT if incoming else FEE_COST_ACCOUNT,
        }.get(match.remainder_kind, CUSTOMER_PREPAYMENTS if incoming else SUPPLIER_PREPAYMENTS)
        lines.append(line(account, rest, debit=not incoming, description=match.remainder_kind))
    return lines


def share_lines(bank: str | None, amount: Decimal, shares: Sequence[Share]) -> list[dict[str, Any]]:
    """The bank line and the counter lines as shares of the amount; the last takes the öre left."""
    incoming = amount >= 0
    total = abs(amount)
    lines = [line(bank or DEFAULT_BANK_ACCOUNT, total, debit=incoming)]
    left = total
    for n, (account, share, vat_code) in enumerate(shares):
        part = left if n == len(shares) - 1 else round_to_ore(total * share)
        left -= part
        lines.append(line(account, part, debit=not incoming, vat_code=vat_code))
    return lines
