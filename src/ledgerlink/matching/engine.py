"""Booking suggestions for one bank row: invoice matching, rules, history and Swedish defaults.

Pure: it gets the row, the candidate open items, the rules and the history and returns ranked
suggestions as JSON-ready dicts in the shape of ``schemas.Suggestion``. Incoming rows match customer
invoices (1510), outgoing rows supplier invoices (2440). Several candidates that fit equally are shown
with ``unambiguous: false``; a row that matches an invoice is never suggested as revenue (3xxx).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledgerlink.matching.references import References, counterparty_key, extract, names_match
from ledgerlink.money import round_to_ore

ZERO = Decimal("0.00")
#: Öre rounding (öresavrundning): a difference of at most one krona is rounding, booked on 3740.
ROUNDING_LIMIT = Decimal("1.00")
#: The statutory reminder fee (påminnelseavgift) a customer may add to a late payment.
REMINDER_FEES = frozenset({Decimal("60.00")})
#: Days around the due date in which an amount + counterparty match counts (the default of the setting).
DATE_WINDOW_DAYS = 10
#: Bounds of the combination search: the counterparty's items considered, and subsets tried.
COMBINATION_MAX_ITEMS = 12
COMBINATION_MAX_TRIES = 5000
RECEIVABLES, PAYABLES = "1510", "2440"
ROUNDING_ACCOUNT = "3740"
FEE_INCOME_ACCOUNT = "3990"
CUSTOMER_PREPAYMENTS, SUPPLIER_PREPAYMENTS = "2420", "1680"
DEFAULT_BANK_ACCOUNT = "1930"
#: History: at least this share of a counterparty's bookings must agree for a confident suggestion.
HISTORY_AGREEMENT = 0.8
HISTORY_WINDOW = 20


@dataclass(frozen=True)
class Item:
    external_id: str
    kind: str
    number: str
    ocr: str | None
    counterparty_name: str
    counterparty_org_number: str | None
    amount_open: Decimal
    due_date: dt.date
    credit_note: bool = False

    @property
    def signed(self) -> Decimal:
        return -self.amount_open if self.credit_note else self.amount_open


@dataclass(frozen=True)
class Part:
    amount: Decimal
    reference: str | None
    payer: str | None
    payer_org_number: str | None = None


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


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    conditions: dict[str, Any]
    lines: list[dict[str, Any]]


@dataclass(frozen=True)
class Memory:
    """One past booking: the counter accounts with their shares of the row's amount."""

    lines: tuple[tuple[str, Decimal, str | None], ...]
    booked_on: dt.date


@dataclass
class Match:
    allocations: list[tuple[Item, Decimal]]
    confidence: float
    unambiguous: bool
    reason: str
    remainder_kind: str = "none"
    remainder: Decimal = ZERO
    alternatives: int = 0


def _fmt(amount: Decimal) -> str:
    return format(round_to_ore(amount), "f")


def _ocr_display(ocr: str) -> str:
    return " ".join(ocr[i : i + 4] for i in range(0, len(ocr), 4))


# --- invoice matching -----------------------------------------------------------------------------


def classify(open_amount: Decimal, paid: Decimal) -> tuple[str, Decimal]:
    """The remainder of paying ``paid`` against ``open_amount``: (kind, amount ≥ 0)."""
    diff = paid - open_amount
    if diff == 0:
        return "none", ZERO
    if abs(diff) <= ROUNDING_LIMIT:
        return "rounding", abs(diff)
    if diff > 0 and diff in REMINDER_FEES:
        return "fee", diff
    return ("overpayment", diff) if diff > 0 else ("partial_payment", -diff)


def _keys_match(ka: str, kb: str) -> bool:
    """:func:`names_match` on names already made comparable."""
    return bool(ka and kb) and (ka == kb or (min(len(ka), len(kb)) >= 4 and (ka in kb or kb in ka)))


class OpenItems:
    """Open items indexed once for many rows: per kind by OCR, invoice number, the first word of the
    counterparty's name and org number, so a row looks up its candidates instead of scanning them all."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.items = list(items)
        self.by_ocr: dict[str, list[Item]] = {}
        self.by_number: dict[str, list[Item]] = {}
        self.by_word: dict[str, list[Item]] = {}
        self.by_org: dict[str, list[Item]] = {}
        self.keys: dict[str, str] = {}
        self._kinds: dict[str, OpenItems] = {}
        for item in self.items:
            key = counterparty_key(item.counterparty_name)
            self.keys[item.external_id] = key
            if item.ocr:
                self.by_ocr.setdefault(item.ocr, []).append(item)
            self.by_number.setdefault(item.number.upper(), []).append(item)
            if key:
                self.by_word.setdefault(key.split(" ", 1)[0], []).append(item)
            if item.counterparty_org_number:
                self.by_org.setdefault(item.counterparty_org_number, []).append(item)

    def by_kind(self, kind: str) -> OpenItems:
        """The items of one kind, indexed (once per kind and index)."""
        if kind not in self._kinds:
            self._kinds[kind] = OpenItems(i for i in self.items if i.kind == kind)
        return self._kinds[kind]

    def reference_hits(self, refs: References, exclude: frozenset[str]) -> list[tuple[Item, str]]:
        hits: dict[str, tuple[Item, str]] = {}
        for ocr in refs.ocr:
            for item in self.by_ocr.get(ocr, []):
                hits.setdefault(item.external_id, (item, f"OCR {_ocr_display(ocr)}"))
        numbers = [*refs.invoice_numbers, *(d for d in refs.digits if len(d) >= 3), *refs.ocr]
        for number in numbers:
            for item in self.by_number.get(number.upper(), []):
                hits.setdefault(item.external_id, (item, f"invoice number {item.number}"))
        return [h for k, h in hits.items() if k not in exclude]

    def of_party(self, name: str | None, refs: References, exclude: frozenset[str]) -> list[Item]:
        key = counterparty_key(name)
        found: dict[str, Item] = {}
        for org in refs.org_numbers:
            for item in self.by_org.get(org, []):
                found[item.external_id] = item
        if key:
            for item in self.by_word.get(key.split(" ", 1)[0], []):
                if _keys_match(key, self.keys[item.external_id]):
                    found[item.external_id] = item
        return [i for k, i in found.items() if k not in exclude]


def match_payment(
    paid: Decimal,
    date: dt.date,
    texts: Sequence[str | None],
    name: str | None,
    items: OpenItems | Sequence[Item],
    window_days: int = DATE_WINDOW_DAYS,
    exclude: frozenset[str] = frozenset(),
) -> Match | None:
    """Match one payment (a positive amount) to open items, in the order: reference (OCR or invoice
    number) with the open amount; amount + counterparty near the due date; a combination of one
    counterparty's items (credit notes included) summing to the payment."""
    index = items if isinstance(items, OpenItems) else OpenItems(items)
    refs = extract(name, *texts)
    # 1. the reference
    hits = index.reference_hits(refs, exclude)
    if hits:
        exact = [(i, how) for i, how in hits if i.signed == paid]
        if len(exact) == 1:
            item, how = exact[0]
            return Match(
                [(item, paid)], 0.97, True, f"{how} matches invoice {item.number} exactly ({_fmt(paid)})"
            )
        if len(exact) > 1:
            item, how = exact[0]
            return Match(
                [(item, paid)],
                0.45,
                False,
                f"{how} fits {len(exact)} open invoices with the same amount "
                f"({', '.join(i.number for i, _ in exact)}): pick one",
                alternatives=len(exact),
            )
        if len(hits) == 1:
            item, how = hits[0]
            kind, rest = classify(item.signed, paid)
            allocated = min(paid, item.signed) if kind != "rounding" else item.signed
            words = {
                "partial_payment": f"a partial payment, {_fmt(rest)} stays open",
                "overpayment": f"{_fmt(rest)} more than the open amount",
                "rounding": f"öre rounding of {_fmt(rest)}",
                "fee": f"{_fmt(rest)} more, a reminder fee",
            }[kind]
            confidence = 0.9 if kind in ("rounding", "fee") else 0.75
            return Match(
                [(item, allocated)],
                confidence,
                True,
                f"{how} points to invoice {item.number} (open {_fmt(item.signed)}): {words}",
                kind,
                rest,
            )
    party = index.of_party(name, refs, exclude)
    # 2. amount + counterparty near the due date
    window = [
        i
        for i in party
        if abs(i.signed - paid) <= ROUNDING_LIMIT and abs((date - i.due_date).days) <= window_days
    ]
    if window:
        best = min(abs(i.signed - paid) for i in window)
        equal = [i for i in window if abs(i.signed - paid) == best]
        item = min(equal, key=lambda i: (abs((date - i.due_date).days), i.number))
        kind, rest = classify(item.signed, paid)
        if len(equal) > 1:
            return Match(
                [(item, item.signed)],
                0.4,
                False,
                f"{len(equal)} open invoices to {item.counterparty_name} of {_fmt(item.signed)} are due "
                f"near {date.isoformat()} ({', '.join(i.number for i in equal)}): pick one",
                kind,
                rest,
                alternatives=len(equal),
            )
        return Match(
            [(item, item.signed)],
            0.85,
            True,
            f"{_fmt(paid)} from {item.counterparty_name} matches invoice {item.number}, due "
            f"{item.due_date.isoformat()}" + (f" (öre rounding {_fmt(rest)})" if kind == "rounding" else ""),
            kind,
            rest,
        )
    # 3. a combination of the counterparty's open items
    combos = combinations(paid, date, party)
    if combos:
        chosen = combos[0]
        numbers = ", ".join(i.number for i in chosen)
        if len(combos) > 1:
            return Match(
                [(i, i.signed) for i in chosen],
                0.35,
                False,
                f"{len(combos)} combinations of {chosen[0].counterparty_name}'s open items sum to "
                f"{_fmt(paid)}, e.g. {numbers}: pick one",
                alternatives=len(combos),
            )
        return Match(
            [(i, i.signed) for i in chosen],
            0.8,
            True,
            f"{_fmt(paid)} from {chosen[0].counterparty_name} pays invoices {numbers} together",
        )
    return None


def combinations(paid: Decimal, date: dt.date, items: Sequence[Item]) -> list[tuple[Item, ...]]:
    """Subsets of 2+ items (credit notes count negative) that sum exactly to ``paid``: the items due
    nearest the date first, at most :data:`COMBINATION_MAX_ITEMS` of them and
    :data:`COMBINATION_MAX_TRIES` subsets, so a counterparty with hundreds of items stays fast."""
    pool = sorted(items, key=lambda i: (abs((date - i.due_date).days), i.number))[:COMBINATION_MAX_ITEMS]
    found: list[tuple[Item, ...]] = []
    tries = 0
    for size in range(2, len(pool) + 1):
        for subset in itertools.combinations(pool, size):
            tries += 1
            if tries > COMBINATION_MAX_TRIES:
                return found
            if sum((i.signed for i in subset), ZERO) == paid:
                found.append(subset)
                if len(found) > 3:
                    return found
    return found


# --- voucher lines --------------------------------------------------------------------------------


def _line(
    account: str, amount: Decimal, *, debit: bool, vat_code: str | None = None, description: str | None = None
) -> dict[str, Any]:
    amount = round_to_ore(amount)
    if amount < 0:
        amount, debit = -amount, not debit
    line: dict[str, Any] = {
        "account": account,
        "debit": _fmt(amount) if debit else "0.00",
        "credit": "0.00" if debit else _fmt(amount),
    }
    if vat_code:
        line["vat_code"] = vat_code
    if description:
        line["description"] = description
    return line


def _invoice_lines(row: Row, match: Match) -> list[dict[str, Any]]:
    bank = row.bank_account or DEFAULT_BANK_ACCOUNT
    incoming = row.direction == "in"
    paid = abs(row.amount)
    ledger = RECEIVABLES if incoming else PAYABLES
    lines = [_line(bank, paid, debit=incoming)]
    for item, amount in match.allocations:
        lines.append(_line(ledger, amount, debit=not incoming, description=f"Invoice {item.number}"))
    allocated = sum((a for _, a in match.allocations), ZERO)
    rest = paid - allocated
    if rest:
        account = {
            "rounding": ROUNDING_ACCOUNT,
            "fee": FEE_INCOME_ACCOUNT if incoming else "6570",
        }.get(match.remainder_kind, CUSTOMER_PREPAYMENTS if incoming else SUPPLIER_PREPAYMENTS)
        lines.append(_line(account, rest, debit=not incoming, description=match.remainder_kind))
    return lines


def _share_lines(row: Row, shares: Sequence[tuple[str, Decimal, str | None]]) -> list[dict[str, Any]]:
    """The bank line and the counter lines as shares of the amount; the last takes the öre left."""
    bank = row.bank_account or DEFAULT_BANK_ACCOUNT
    incoming = row.direction == "in"
    total = abs(row.amount)
    lines = [_line(bank, total, debit=incoming)]
    left = total
    for n, (account, share, vat_code) in enumerate(shares):
        amount = left if n == len(shares) - 1 else round_to_ore(total * share)
        left -= amount
        lines.append(_line(account, amount, debit=not incoming, vat_code=vat_code))
    return lines


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
    shares = [(x["account"], Decimal(x["share"]), x.get("vat_code")) for x in rule.lines]
    accounts = ", ".join(a for a, _, _ in shares)
    return _suggestion(
        "rule", 0.9, True, f"Your rule “{rule.name}” books this row to {accounts}", _share_lines(row, shares)
    )


def history_key(row: Row) -> str:
    return counterparty_key(row.counterparty or row.description)


def _history_suggestion(row: Row, history: Sequence[Memory]) -> dict[str, Any] | None:
    recent = sorted(history, key=lambda m: m.booked_on, reverse=True)[:HISTORY_WINDOW]
    if not recent:
        return None
    signatures = Counter(tuple(sorted(a for a, _, _ in m.lines)) for m in recent)
    (top, count), total = signatures.most_common(1)[0], len(recent)
    example = next(m for m in recent if tuple(sorted(a for a, _, _ in m.lines)) == top)
    who = row.counterparty or row.description or "this counterparty"
    accounts = ", ".join(top)
    agreement = count / total
    if agreement >= HISTORY_AGREEMENT:
        # the company's own bookings outrank the generic defaults from the first one on
        confidence = round(min(0.88, 0.66 + 0.22 * agreement * (min(total, 5) - 1) / 4), 2)
        reason = f"{count} of the last {total} rows from {who} went to {accounts}"
        return _suggestion("history", confidence, True, reason, _share_lines(row, list(example.lines)))
    reason = (
        f"{who} was booked in different ways: {count} of the last {total} rows went to {accounts}, "
        "the others elsewhere; check this one"
    )
    return _suggestion(
        "history", round(0.3 * agreement, 2), False, reason, _share_lines(row, list(example.lines))
    )


@dataclass(frozen=True)
class Default:
    pattern: re.Pattern[str]
    direction: str | None
    shares: tuple[tuple[str, Decimal, str | None], ...]
    reason: str
    confidence: float = 0.6


D = Decimal
#: Swedish defaults (BAS accounts): what a row from these payees usually is.
DEFAULTS: tuple[Default, ...] = (
    Default(
        re.compile(r"(?i)intäktsränta|ränta.*skattekonto.*(?:intäkt)"),
        "in",
        (("8314", D(1), None),),
        "Interest on the tax account is tax-free income (8314)",
    ),
    Default(
        re.compile(r"(?i)kostnadsränta"),
        "out",
        (("8423", D(1), None),),
        "Interest cost on the tax account is not deductible (8423)",
    ),
    Default(
        re.compile(r"(?i)skatteverket|skattekonto"),
        None,
        (("1630", D(1), None),),
        "Payments to and from Skatteverket go through the tax account (1630)",
        0.65,
    ),
    Default(
        re.compile(r"(?i)bankavgift|avgift|prisavisering|årsavgift|kontoavgift|bank ?fee"),
        "out",
        (("6570", D(1), None),),
        "Bank fees go to 6570, without VAT",
    ),
    Default(
        re.compile(r"(?i)telia|telenor|tele2|\btre\b"),
        "out",
        (("6212", D("0.8"), "MP1"), ("2641", D("0.2"), None)),
        "Telephone bills go to 6212 with 25 % VAT",
    ),
    Default(
        re.compile(r"(?i)försäkring|if skadeförsäkring|folksam|länsförsäkringar"),
        "out",
        (("6310", D(1), None),),
        "Insurance premiums go to 6310, without VAT",
    ),
    Default(
        re.compile(r"(?i)\bswish\b"),
        "in",
        (("3001", D("0.8"), "MP1"), ("2611", D("0.2"), None)),
        "An incoming Swish payment without an invoice is a sale with 25 % VAT",
        0.4,
    ),
)


def _default_suggestion(row: Row) -> dict[str, Any] | None:
    text = _text(row)
    for default in DEFAULTS:
        if (default.direction in (None, row.direction)) and default.pattern.search(text):
            return _suggestion(
                "default", default.confidence, True, default.reason, _share_lines(row, default.shares)
            )
    return None


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


def _invoice_suggestion(row: Row, match: Match) -> dict[str, Any]:
    return _suggestion(
        "invoice",
        match.confidence,
        match.unambiguous,
        match.reason,
        _invoice_lines(row, match),
        [
            {"open_item_external_id": i.external_id, "number": i.number, "amount": _fmt(a)}
            for i, a in match.allocations
        ],
        {"kind": match.remainder_kind, "amount": _fmt(match.remainder)},
    )


def _parts_match(row: Row, items: OpenItems, window_days: int) -> Match | None:
    """A lump sum: each part matched as a payment of its own, together one suggestion."""
    allocations: list[tuple[Item, Decimal]] = []
    reasons: list[str] = []
    unmatched = ZERO
    unambiguous = True
    confidence = 1.0
    for part in row.parts:
        used = frozenset(a.external_id for a, _ in allocations)
        m = match_payment(part.amount, row.date, [part.reference], part.payer, items, window_days, used)
        if m is None:
            unmatched += part.amount
            continue
        allocations += m.allocations
        unambiguous = unambiguous and m.unambiguous
        confidence = min(confidence, m.confidence)
        unmatched += part.amount - sum((a for _, a in m.allocations), ZERO)
        reasons.append(m.reason)
    if not allocations:
        return None
    matched = len(reasons)
    reason = f"Bankgiro deposit of {len(row.parts)} payments: {matched} matched to invoices"
    if unmatched:
        reason += f", {_fmt(unmatched)} not matched"
        confidence = min(confidence, 0.5)
    return Match(
        allocations,
        round(confidence, 2),
        unambiguous,
        reason + " (" + "; ".join(reasons) + ")",
        "overpayment" if unmatched > 0 else ("partial_payment" if unmatched < 0 else "none"),
        abs(unmatched),
    )


def suggest(
    row: Row,
    items: OpenItems | Sequence[Item],
    rules: Sequence[Rule],
    history: Sequence[Memory],
    *,
    window_days: int = DATE_WINDOW_DAYS,
) -> list[dict[str, Any]]:
    """Ranked suggestions for ``row``, best first. ``items`` are the open items of the row's
    currency (index them once with :class:`OpenItems` for many rows); ``history`` the company's past bookings for this row's counterparty
    (:func:`history_key`)."""
    kind = "customer_invoice" if row.direction == "in" else "supplier_invoice"
    index = items if isinstance(items, OpenItems) else OpenItems(items)
    candidates = index.by_kind(kind)
    out: list[dict[str, Any]] = []
    match = (
        _parts_match(row, candidates, window_days)
        if row.parts
        else match_payment(
            abs(row.amount),
            row.date,
            [row.reference, row.description],
            row.counterparty,
            candidates,
            window_days,
        )
    )
    if match is not None:
        out.append(_invoice_suggestion(row, match))
    for rule in sorted(rules, key=lambda r: (r.priority, r.name)):
        if rule_applies(rule, row):
            out.append(_rule_suggestion(rule, row))
            break
    found = _history_suggestion(row, history)
    if found is not None:
        out.append(found)
    default = _default_suggestion(row)
    if default is not None:
        out.append(default)
    if match is not None and match.unambiguous:
        # a row that pays an invoice is never revenue
        out = [s for s in out if s["kind"] == "invoice" or not _is_revenue(s)]
    order = {"invoice": 0, "rule": 1, "history": 2, "default": 3}
    out.sort(key=lambda s: (-s["confidence"], order[s["kind"]]))
    return out


def _is_revenue(suggestion: dict[str, Any]) -> bool:
    return any(line["account"].startswith("3") and line["credit"] != "0.00" for line in suggestion["lines"])
