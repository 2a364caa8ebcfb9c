"""Which statement rows the account already holds: a pure function over plain values.

Three passes, each taking a held row at most once (so the rows are counted as multisets and two genuine
identical purchases stay two): the bank's id; then (booking date, amount, balance after); then the same
amount up to ``tolerance_days`` apart with a similar text. A row whose bank id is held with another
amount or date is ``conflicting`` (never inserted; the user decides).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ledgerlink.statements.model import StatementRow

Verdict = Literal["new", "duplicate", "conflicting"]


@dataclass(frozen=True, slots=True)
class HeldRow:
    id: uuid.UUID
    provider_id: str | None
    booking_date: dt.date
    amount: Decimal
    text: str
    balance_after: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Verdict
    transaction_id: uuid.UUID | None = None


_WORD = re.compile(r"[0-9a-zåäöéü]{3,}")


def _words(text: str | None) -> set[str]:
    return set(_WORD.findall((text or "").casefold()))


def similar_text(a: str | None, b: str | None) -> bool:
    """Texts that share a word (or where one side has none): banks shorten and reorder texts."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return True
    return bool(wa & wb) or any(x in y or y in x for x in wa for y in wb)


def row_text(row: StatementRow) -> str:
    return " ".join(t for t in (row.counterparty, row.text, row.reference) if t)


def classify(rows: Sequence[StatementRow], held: Sequence[HeldRow], *, tolerance_days: int) -> list[Match]:
    result: list[Match | None] = [None] * len(rows)
    free = {h.id: h for h in held}
    by_ref: dict[str, list[HeldRow]] = {}
    for h in held:
        if h.provider_id:
            by_ref.setdefault(h.provider_id, []).append(h)

    # 1. the bank's id
    for i, row in enumerate(rows):
        if not row.bank_ref:
            continue
        candidates = [h for h in by_ref.get(row.bank_ref, []) if h.id in free]
        if not candidates:
            continue
        same = next((h for h in candidates if h.amount == row.amount), None)
        chosen = same or candidates[0]
        del free[chosen.id]
        result[i] = Match("duplicate" if same else "conflicting", chosen.id)

    def take(i: int, row: StatementRow, accept: object) -> None:
        for h in list(free.values()):
            if accept(h):  # type: ignore[operator]
                del free[h.id]
                result[i] = Match("duplicate", h.id)
                return

    # 2. (booking date, amount, balance after): an exact balance first, then where one side has none
    for exact in (True, False):
        for i, row in enumerate(rows):
            if result[i] is not None:
                continue

            def same_day(h: HeldRow, row: StatementRow = row, exact: bool = exact) -> bool:
                if h.booking_date != row.booking_date or h.amount != row.amount:
                    return False
                if h.balance_after is not None and row.balance_after is not None:
                    return h.balance_after == row.balance_after
                return not exact

            take(i, row, same_day)

    # 3. the same amount a few days apart with a similar text
    for i, row in enumerate(rows):
        if result[i] is not None:
            continue

        def near(h: HeldRow, row: StatementRow = row) -> bool:
            if h.amount != row.amount or abs((h.booking_date - row.booking_date).days) > tolerance_days:
                return False
            if (
                h.balance_after is not None
                and row.balance_after is not None
                and h.booking_date == row.booking_date
            ):
                return False  # same day, different balance after: another row
            return similar_text(h.text, row_text(row))

        take(i, row, near)
    return [m or Match("new") for m in result]
