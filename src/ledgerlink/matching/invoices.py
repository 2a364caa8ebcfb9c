"""Invoice matching: one payment (a positive amount) against the open items, in order.

1. The reference: an OCR or invoice number in the row's texts, with the open amount.
2. Amount + counterparty: one of the counterparty's items of the amount (öre rounding allowed) due
   within the date window.
3. A combination of the counterparty's items (credit notes count negative) summing to the payment,
   bounded so that a counterparty with hundreds of items stays fast.

A difference to the open amount is classified (:func:`classify`) and shown. Several candidates that fit
equally give ``unambiguous=False``, never a guess presented as certain. Pure: no database.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from ledgerlink.matching.references import References, counterparty_key, extract
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


@dataclass
class Match:
    allocations: list[tuple[Item, Decimal]]
    confidence: float
    unambiguous: bool
    reason: str
    remainder_kind: str = "none"
    remainder: Decimal = ZERO
    alternatives: int = 0


def amount_text(amount: Decimal) -> str:
    """An amount as the API and the reasons write it: whole öre, plain decimal (``"1043.00"``)."""
    return format(round_to_ore(amount), "f")


def _ocr_display(ocr: str) -> str:
    return " ".join(ocr[i : i + 4] for i in range(0, len(ocr), 4))


# --- the remainder ------------------------------------------------------------------------------


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


_REMAINDER_WORDS = {
    "partial_payment": "a partial payment, {} stays open",
    "overpayment": "{} more than the open amount",
    "rounding": "öre rounding of {}",
    "fee": "{} more, a reminder fee",
}


# --- the candidates -------------------------------------------------------------------------------


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


# --- matching, in order ---------------------------------------------------------------------------


def match_payment(
    paid: Decimal,
    date: dt.date,
    texts: Sequence[str | None],
    name: str | None,
    items: OpenItems | Sequence[Item],
    window_days: int = DATE_WINDOW_DAYS,
    exclude: frozenset[str] = frozenset(),
) -> Match | None:
    """Match one payment to open items: by reference, else by amount + counterparty near the due
    date, else by a combination of the counterparty's items. ``exclude``: items already allocated."""
    index = items if isinstance(items, OpenItems) else OpenItems(items)
    refs = extract(name, *texts)
    found = by_reference(paid, index.reference_hits(refs, exclude))
    if found is None:
        party = index.of_party(name, refs, exclude)
        found = by_amount_and_party(paid, date, party, window_days) or by_combination(paid, date, party)
    return found


def by_reference(paid: Decimal, hits: Sequence[tuple[Item, str]]) -> Match | None:
    """1. The items the row's OCR or invoice numbers point to (``hits``: item, how it was found)."""
    exact = [(i, how) for i, how in hits if i.signed == paid]
    if len(exact) == 1:
        item, how = exact[0]
        return Match(
            [(item, paid)], 0.97, True, f"{how} matches invoice {item.number} exactly ({amount_text(paid)})"
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
    if len(hits) != 1:
        return None  # none, or several that differ from the payment: the counterparty decides
    item, how = hits[0]
    kind, rest = classify(item.signed, paid)
    allocated = min(paid, item.signed) if kind != "rounding" else item.signed
    words = _REMAINDER_WORDS[kind].format(amount_text(rest))
    return Match(
        [(item, allocated)],
        0.9 if kind in ("rounding", "fee") else 0.75,
        True,
        f"{how} points to invoice {item.number} (open {amount_text(item.signed)}): {words}",
        kind,
        rest,
    )


def by_amount_and_party(
    paid: Decimal, date: dt.date, party: Sequence[Item], window_days: int
) -> Match | None:
    """2. One of the counterparty's items of the amount (öre rounding allowed) due near ``date``."""
    window = [
        i
        for i in party
        if abs(i.signed - paid) <= ROUNDING_LIMIT and abs((date - i.due_date).days) <= window_days
    ]
    if not window:
        return None
    best = min(abs(i.signed - paid) for i in window)
    equal = [i for i in window if abs(i.signed - paid) == best]
    item = min(equal, key=lambda i: (abs((date - i.due_date).days), i.number))
    kind, rest = classify(item.signed, paid)
    if len(equal) > 1:
        return Match(
            [(item, item.signed)],
            0.4,
            False,
            f"{len(equal)} open invoices to {item.counterparty_name} of {amount_text(item.signed)} are due "
            f"near {date.isoformat()} ({', '.join(i.number for i in equal)}): pick one",
            kind,
            rest,
            alternatives=len(equal),
        )
    rounding = f" (öre rounding {amount_text(rest)})" if kind == "rounding" else ""
    return Match(
        [(item, item.signed)],
        0.85,
        True,
        f"{amount_text(paid)} from {item.counterparty_name} matches invoice {item.number}, due "
        f"{item.due_date.isoformat()}{rounding}",
        kind,
        rest,
    )


def by_combination(paid: Decimal, date: dt.date, party: Sequence[Item]) -> Match | None:
    """3. Several of the counterparty's items (credit notes included) that together are the payment."""
    combos = combinations(paid, date, party)
    if not combos:
        return None
    chosen = combos[0]
    numbers = ", ".join(i.number for i in chosen)
    if len(combos) > 1:
        return Match(
            [(i, i.signed) for i in chosen],
            0.35,
            False,
            f"{len(combos)} combinations of {chosen[0].counterparty_name}'s open items sum to "
            f"{amount_text(paid)}, e.g. {numbers}: pick one",
            alternatives=len(combos),
        )
    return Match(
        [(i, i.signed) for i in chosen],
        0.8,
        True,
        f"{amount_text(paid)} from {chosen[0].counterparty_name} pays invoices {numbers} together",
    )


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


# --- a lump sum -----------------------------------------------------------------------------------


def match_parts(
    parts: Sequence[Part], date: dt.date, items: OpenItems, window_days: int = DATE_WINDOW_DAYS
) -> Match | None:
    """A Bankgiro lump sum: each of its parts matched as a payment of its own, together one match."""
    allocations: list[tuple[Item, Decimal]] = []
    reasons: list[str] = []
    unmatched = ZERO
    unambiguous = True
    confidence = 1.0
    for part in parts:
        used = frozenset(a.external_id for a, _ in allocations)
        m = match_payment(part.amount, date, [part.reference], part.payer, items, window_days, used)
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
    reason = f"Bankgiro deposit of {len(parts)} payments: {matched} matched to invoices"
    if unmatched:
        reason += f", {amount_text(unmatched)} not matched"
        confidence = min(confidence, 0.5)
    return Match(
        allocations,
        round(confidence, 2),
        unambiguous,
        reason + " (" + "; ".join(reasons) + ")",
        "overpayment" if unmatched > 0 else ("partial_payment" if unmatched < 0 else "none"),
        abs(unmatched),
    )
