"""The balance check: the bank's booked balance against the opening balance plus the booked rows held.

Observations of the bank's balance are (date, end-of-day balance): every sync's balance read, a
statement's closing balance, and the balance after each row where the bank (or a statement) gives one.
The earliest observation anchors the check (the opening balance is that balance minus the rows booked up
to it); each later observation is compared with anchor + the booked rows after the anchor up to its date.
The gap is dated the bank day after the last observation that still agreed (with balances after each row,
the balance before a day's first row is the end of the day before, so that is the very day). Pending rows are not counted, rows count on their booking date (not the value date), and a balance
dated after the last row simply has no rows after it to add.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Status = Literal["ok", "gap", "unknown"]


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    bank_amount: Decimal | None = None
    bank_as_of: dt.date | None = None
    computed: Decimal | None = None
    gap: Decimal | None = None
    gap_since: dt.date | None = None
    opening: Decimal | None = None


def balance_after_of(raw: Any) -> Decimal | None:
    """The balance after a row, from a statement row (``balance_after``) or a Berlin Group row
    (``balanceAfterTransaction.balanceAmount.amount``)."""
    if not isinstance(raw, dict):
        return None
    value: Any = raw.get("balance_after")
    if value is None:
        bat = raw.get("balanceAfterTransaction")
        if isinstance(bat, dict):
            amount = bat.get("balanceAmount")
            value = amount.get("amount") if isinstance(amount, dict) else None
    if value is None:
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def next_bank_day(day: dt.date) -> dt.date:
    """The next weekday (banks book no rows on a Saturday or Sunday)."""
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def day_ends(booked: Sequence[tuple[dt.date, Decimal, Any]]) -> tuple[dict[dt.date, Decimal], set[dt.date]]:
    """End-of-day balances from the rows' balances after, and the days whose chain has a hole.

    The rows of a day come in no reliable order, so the day's end is the balance after that is no other
    row's balance before (``after - amount``); when more than one is left, a row of that day is missing.
    """
    afters: dict[dt.date, Counter[Decimal]] = {}
    befores: dict[dt.date, Counter[Decimal]] = {}
    for day, amount, raw in booked:
        after = balance_after_of(raw)
        if after is None:
            continue
        afters.setdefault(day, Counter())[after] += 1
        befores.setdefault(day, Counter())[after - amount] += 1
    ends: dict[dt.date, Decimal] = {}
    broken: set[dt.date] = set()
    for day, counter in afters.items():
        left = list((counter - befores[day]).elements())
        starts = list((befores[day] - counter).elements())
        if len(left) == 1 and len(starts) == 1:
            ends[day] = left[0]
            # the balance before the day's first row is the end of the day before
            ends.setdefault(day - dt.timedelta(days=1), starts[0])
        else:
            broken.add(day)
    return ends, broken


def check(
    booked: Sequence[tuple[dt.date, Decimal, Any]],
    bank_balances: Sequence[tuple[dt.date, Decimal]],
) -> Check:
    """``booked``: (booking date, amount, raw) of the booked rows; ``bank_balances``: the bank's dated
    balance reads, oldest read first (the last one is shown as ``bank_balance``)."""
    ends, broken = day_ends(booked)
    observations: dict[dt.date, Decimal] = dict(ends)
    for day, amount in bank_balances:
        observations[day] = amount
    if bank_balances:
        latest_day, latest_amount = bank_balances[-1]
    elif ends:
        latest_day = max(ends)
        latest_amount = ends[latest_day]
    else:
        return Check("unknown")
    days = sorted(observations)
    anchor_day = days[0]
    anchor = observations[anchor_day]
    per_day: dict[dt.date, Decimal] = {}
    for day, amount, _ in booked:
        per_day[day] = per_day.get(day, Decimal(0)) + amount

    def computed_at(day: dt.date) -> Decimal:
        return anchor + sum((a for d, a in per_day.items() if anchor_day < d <= day), Decimal(0))

    opening = anchor - sum((a for d, a in per_day.items() if d <= anchor_day), Decimal(0))
    if latest_day < anchor_day:
        return Check("unknown", latest_amount, latest_day, opening=opening)
    computed = computed_at(latest_day)
    gap = latest_amount - computed
    since = None
    if gap != 0:
        # the earliest day it can have appeared: the day after the last balance that still agreed
        since = latest_day
        agreed = anchor_day
        for d in days[1:]:
            if d > latest_day:
                break
            if observations[d] != computed_at(d):
                since = next_bank_day(agreed)
                break
            agreed = d
        holes = [d for d in broken if anchor_day < d <= latest_day]
        since = min([since, *holes])
    return Check(
        "gap" if gap != 0 else "ok",
        latest_amount,
        latest_day,
        computed=computed,
        gap=gap if gap != 0 else Decimal("0.00"),
        gap_since=since,
        opening=opening,
    )
