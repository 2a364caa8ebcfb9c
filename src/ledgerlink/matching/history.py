"""Booking history: what one booking teaches, as the counter accounts' shares of the bank amount.

Learned from two sources, by one rule: booking feedback (the lines the platform booked a row with) and
the vouchers of imported closings that touch a 19xx account. A posting is signed debit-positive; a
counter account's share is ``-posting / bank amount`` (incoming bank amounts positive), so the shares of
a clean booking are positive and sum to 1. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from ledgerlink.matching.vouchers import Share

ZERO = Decimal("0.00")
#: How far the shares of a closing's voucher may be from summing to 1 (rounding of its amounts).
SUM_TOLERANCE = Decimal("0.001")


def is_bank_account(account: str, ledger: str | None = None) -> bool:
    """A 19xx account (cash and bank), or the row's own mapped ledger account."""
    return account == ledger or account.startswith("19")


def counter_shares(
    postings: Iterable[tuple[str, Decimal, str | None]], bank_amount: Decimal
) -> dict[str, tuple[Decimal, str | None]]:
    """Each counter account's share of ``bank_amount`` (postings: account, debit − credit, VAT code;
    the bank lines left out), with the first VAT code given for it."""
    out: dict[str, tuple[Decimal, str | None]] = {}
    for account, signed, vat_code in postings:
        share, code = out.get(account, (ZERO, None))
        out[account] = (share - signed / bank_amount, code or vat_code)
    return out


def share_lines_json(shares: dict[str, tuple[Decimal, str | None]]) -> list[dict[str, Any]]:
    """The shares as stored in ``booking_memory.lines`` (six decimals)."""
    out = []
    for account, (share, vat_code) in shares.items():
        entry: dict[str, Any] = {"account": account, "share": str(round(share, 6))}
        if vat_code:
            entry["vat_code"] = vat_code
        out.append(entry)
    return out


def shares_of(lines: Sequence[dict[str, Any]]) -> tuple[Share, ...]:
    """Stored lines (a memory's or a rule's) as the engine's shares."""
    return tuple((x["account"], Decimal(x["share"]), x.get("vat_code")) for x in lines)


def from_booking(
    amount: Decimal, ledger: str | None, lines: Iterable[tuple[str, Decimal, Decimal, str | None]]
) -> list[dict[str, Any]]:
    """What booking a row of ``amount`` with ``lines`` (account, debit, credit, VAT code) teaches: the
    counter accounts on the side opposite the bank (the others, and the bank lines, left out)."""
    if amount == 0:
        return []
    postings = [(a, debit - credit, vat) for a, debit, credit, vat in lines if not is_bank_account(a, ledger)]
    shares = counter_shares(postings, amount)
    return share_lines_json({a: s for a, s in shares.items() if s[0] > 0})


def from_voucher(rows: Sequence[tuple[str, Decimal]]) -> tuple[str, list[dict[str, Any]]] | None:
    """What a closing's voucher (account, amount debit-positive) teaches: (direction, lines), or None
    when it moves no bank money or its counter accounts do not split the bank amount cleanly."""
    bank = sum((a for account, a in rows if is_bank_account(account)), ZERO)
    if bank == 0:
        return None
    shares = counter_shares(((a, amount, None) for a, amount in rows if not is_bank_account(a)), bank)
    total = sum((s for s, _ in shares.values()), ZERO)
    if not shares or any(s <= 0 for s, _ in shares.values()) or abs(total - 1) > SUM_TOLERANCE:
        return None
    return ("in" if bank > 0 else "out"), share_lines_json(shares)
