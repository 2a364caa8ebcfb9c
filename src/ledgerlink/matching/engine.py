"""Booking suggestions for one bank row: invoice matching, rules, history and Swedish defaults.

Pure: it gets the row, the candidate open items, the rules and the history and returns ranked
suggestions as JSON-ready dicts in the shape of ``schemas.Suggestion``. The invoice match comes from
:mod:`~ledgerlink.matching.invoices` (incoming rows match customer invoices, outgoing rows supplier
invoices), its voucher lines from :mod:`~ledgerlink.matching.vouchers`, the defaults from
:mod:`~ledgerlink.matching.defaults`. A row that matches open invoices gets the match first: the other
suggestions rank below it and are never unambiguous (booked there too, the invoice would be booked
twice), and never revenue (3xxx) beside an unambiguous match; one that only says "receivables" or
"payables" (1510/2440, learned from earlier invoice payments) is left out beside a match and is not
unambiguous without one (it names no invoice). The history is sure only when its bookings agree and
are enough evidence (:func:`_too_little`); a Swedish default is not sure when the company's own
history of the counterparty books anything else.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledgerlink.matching import vouchers
from ledgerlink.matching.defaults import Default, default_for
from ledgerlink.matching.history import shares_of
from ledgerlink.matching.invoices import (
    DATE_WINDOW_DAYS,
    Item,
    Match,
    OpenItems,
    Part,
    amount_text,
    match_parts,
    match_payment,
)
from ledgerlink.matching.references import names_match
from ledgerlink.matching.vouchers import Share

#: History: at least this share of a counterparty's recent bookings must agree for a confident
#: suggestion (docs/matching.md, "When the history is sure")...
HISTORY_AGREEMENT = 0.8
HISTORY_WINDOW = 20
#: ... and at least this many of them: after n bookings all one way, the rule of succession puts the
#: chance that the next one goes the same way at (n + 1) / (n + 2), which reaches the 80 % bar at 3.
HISTORY_MIN_BOOKINGS = 3
#: ... in at least this many calendar months: bookings from one month (one project, one season's
#: purchases) have not yet shown how the counterparty is booked from one period to the next.
HISTORY_MIN_MONTHS = 2
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Row:
    amount: Decimal
    date: dt.date
    counterparty: str | None
    description: str | None
    reference: str | None
    bank_account: str | None
    bank_account_id: str | None = None
    parts: Sequence[Part] = ()

    @property
    def direction(self) -> str:
        return "in" if self.amount >= 0 else "out"

    def share_lines(self, shares: Sequence[Share]) -> list[dict[str, Any]]:
        return vouchers.share_lines(self.bank_account, self.amount, shares)


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    conditions: dict[str, Any]
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class Memory:
    """One past booking: the counter accounts with their shares of the row's amount."""

    lines: tuple[Share, ...]
    booked_on: dt.date


def _suggestion(
    kind: str,
    confidence: float,
    unambiguous: bool,
    reason: str,
    lines: list[dict[str, Any]],
    allocations: list[dict[str, Any]] | None = None,
    remainder: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "confidence": confidence,
        "unambiguous": unambiguous,
        "reason": reason,
        "allocations": allocations or [],
        "remainder": remainder or {"kind": "none", "amount": "0.00"},
        "lines": lines,
    }


# --- invoices -------------------------------------------------------------------------------------


def _invoice_match(row: Row, candidates: OpenItems, window_days: int) -> Match | None:
    if row.parts:
        return match_parts(row.parts, row.date, candidates, window_days)
    texts = [row.reference, row.description]
    return match_payment(abs(row.amount), row.date, texts, row.counterparty, candidates, window_days)


def _invoice_suggestion(row: Row, match: Match) -> dict[str, Any]:
    return _suggestion(
        "invoice",
        match.confidence,
        match.unambiguous,
        match.reason,
        vouchers.invoice_lines(row.bank_account, row.amount, match),
        [
            {"open_item_external_id": i.external_id, "number": i.number, "amount": amount_text(a)}
            for i, a in match.allocations
        ],
        {"kind": match.remainder_kind, "amount": amount_text(match.remainder)},
    )


# --- rules, history, defaults ---------------------------------------------------------------------


def _text(row: Row) -> str:
    return " ".join(x for x in (row.counterparty, row.description, row.reference) if x)


def rule_applies(rule: Rule, row: Row) -> bool:
    c = rule.conditions
    text = _text(row).lower()
    if c.get("text_contains") and c["text_contains"].lower() not in text:
        return False
    if c.get("text_equals") and c["text_equals"].strip().lower() not in {
        (row.description or "").strip().lower(),
        (row.counterparty or "").strip().lower(),
        (row.reference or "").strip().lower(),
    }:
        return False
    if c.get("counterparty") and not names_match(c["counterparty"], row.counterparty or row.description):
        return False
    if c.get("direction") and c["direction"] != row.direction:
        return False
    if c.get("amount_min") is not None and abs(row.amount) < Decimal(c["amount_min"]):
        return False
    if c.get("amount_max") is not None and abs(row.amount) > Decimal(c["amount_max"]):
        return False
    return not (c.get("bank_account_id") and str(c["bank_account_id"]) != str(row.bank_account_id))


def _rule_suggestion(rule: Rule, row: Row) -> dict[str, Any]:
    shares = shares_of(rule.lines)
    accounts = ", ".join(a for a, _, _ in shares)
    return _suggestion(
        "rule", 0.9, True, f"Your rule “{rule.name}” books this row to {accounts}", row.share_lines(shares)
    )


def _recent(history: Sequence[Memory]) -> list[Memory]:
    return sorted(history, key=lambda m: m.booked_on, reverse=True)[:HISTORY_WINDOW]


def _accounts(shares: Sequence[Share]) -> tuple[str, ...]:
    return tuple(sorted(a for a, _, _ in shares))


def _who(row: Row) -> str:
    return row.counterparty or row.description or "this counterparty"


def _history_suggestion(row: Row, recent: Sequence[Memory], default: Default | None) -> dict[str, Any] | None:
    """What the company booked for this counterparty before: sure when the recent bookings agree
    (:data:`HISTORY_AGREEMENT`) and are enough evidence (:func:`_too_little`), or when they are all what
    the Swedish ``default`` for the row says too."""
    if not recent:
        return None
    signatures = Counter(_accounts(m.lines) for m in recent)
    (top, count), total = signatures.most_common(1)[0], len(recent)
    agreeing = [m for m in recent if _accounts(m.lines) == top]
    lines = row.share_lines(agreeing[0].lines)
    accounts = ", ".join(top)
    agreement = count / total
    if agreement < HISTORY_AGREEMENT:
        reason = (
            f"{_who(row)} was booked in different ways: {count} of the last {total} rows went to "
            f"{accounts}, the others elsewhere; check this one"
        )
        return _suggestion("history", round(0.3 * agreement, 2), False, reason, lines)
    # the company's own bookings outrank the generic defaults from the first one on
    confidence = round(min(0.88, 0.66 + 0.22 * agreement * (min(total, 5) - 1) / 4), 2)
    reason = f"{count} of the last {total} rows from {_who(row)} went to {accounts}"
    doubt = _too_little(agreeing)
    if doubt is None:
        return _suggestion("history", confidence, True, reason, lines)
    if default is not None and count == total and top == _accounts(default.shares):
        return _suggestion("history", confidence, True, f"{reason}, as the Swedish default says", lines)
    return _suggestion("history", confidence, False, f"{reason} — {doubt}", lines)


def _too_little(agreeing: Sequence[Memory]) -> str | None:
    """Why bookings that agree are still too little to be sure of the next one, or None: fewer than
    :data:`HISTORY_MIN_BOOKINGS`, or all from fewer than :data:`HISTORY_MIN_MONTHS` calendar months."""
    if len(agreeing) < HISTORY_MIN_BOOKINGS:
        return "too few to be sure"
    months = sorted({(m.booked_on.year, m.booked_on.month) for m in agreeing})
    if len(months) < HISTORY_MIN_MONTHS:
        named = " and ".join(f"{MONTH_NAMES[month - 1]} {year}" for year, month in months)
        return f"all in {named}: too short a time to be sure"
    return None


def _default_suggestion(row: Row, recent: Sequence[Memory], default: Default | None) -> dict[str, Any] | None:
    """The Swedish default for the row; not unambiguous when the company's own history of the
    counterparty books anything else (a default is generic, the company's bookings are not)."""
    if default is None:
        return None
    lines = row.share_lines(default.shares)
    if any(_accounts(m.lines) != _accounts(default.shares) for m in recent):
        reason = f"{default.reason}; but earlier rows from {_who(row)} were booked otherwise"
        return _suggestion("default", default.confidence, False, reason, lines)
    return _suggestion("default", default.confidence, True, default.reason, lines)


# --- together -------------------------------------------------------------------------------------


def suggest(
    row: Row,
    items: OpenItems | Sequence[Item],
    rules: Sequence[Rule],
    history: Sequence[Memory],
    *,
    window_days: int = DATE_WINDOW_DAYS,
) -> list[dict[str, Any]]:
    """Ranked suggestions for ``row``, best first. ``items`` are the open items of the row's
    currency (index them once with :class:`OpenItems` for many rows); ``history`` the company's past
    bookings filed under the row's :func:`ledgerlink.matching.references.history_key`."""
    kind = "customer_invoice" if row.direction == "in" else "supplier_invoice"
    index = items if isinstance(items, OpenItems) else OpenItems(items)
    match = _invoice_match(row, index.by_kind(kind), window_days)
    others: list[dict[str, Any]] = []
    rule = next((r for r in sorted(rules, key=lambda r: (r.priority, r.name)) if rule_applies(r, row)), None)
    if rule is not None:
        others.append(_rule_suggestion(rule, row))
    recent, default = _recent(history), default_for(_text(row), row.direction)
    for found in (_history_suggestion(row, recent, default), _default_suggestion(row, recent, default)):
        if found is not None:
            others.append(found)
    ledger = vouchers.RECEIVABLES if row.direction == "in" else vouchers.PAYABLES
    if match is None:
        out = [_no_invoice_to_pay(s) if _books_to(s, ledger) else s for s in others]
    else:
        out = [_invoice_suggestion(row, match)]
        for s in others:
            if _books_to(s, ledger) or (match.unambiguous and _is_revenue(s)):
                continue  # the invoice match says it better; a row that pays an invoice is never revenue
            out.append(_beside_an_invoice(s, match))
    order = {"invoice": 0, "rule": 1, "history": 2, "default": 3}
    out.sort(key=lambda s: (-s["confidence"], order[s["kind"]]))
    return out


def _books_to(suggestion: dict[str, Any], account: str) -> bool:
    return any(line["account"] == account for line in suggestion["lines"][1:])


def _no_invoice_to_pay(suggestion: dict[str, Any]) -> dict[str, Any]:
    """A rule, history or default that books to 1510/2440 names no invoice, and none matches the row:
    not something to book as it is."""
    reason = suggestion["reason"] + "; no open invoice matches this payment: pick the invoice it pays"
    return {**suggestion, "unambiguous": False, "reason": reason}


def _beside_an_invoice(suggestion: dict[str, Any], match: Match) -> dict[str, Any]:
    """Another suggestion for a row that matches open invoices: booking it there as well would book the
    invoice's cost or revenue twice, so it ranks below the match and is never unambiguous."""
    confidence = min(suggestion["confidence"], round(match.confidence * 0.9, 2))
    reason = suggestion["reason"] + "; but open invoices match this payment"
    return {**suggestion, "confidence": confidence, "unambiguous": False, "reason": reason}


def _is_revenue(suggestion: dict[str, Any]) -> bool:
    return any(line["account"].startswith("3") and line["credit"] != "0.00" for line in suggestion["lines"])
