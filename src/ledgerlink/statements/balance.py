"""The balance check: the bank's booked balance against the opening balance plus the booked rows held.

Observations of the bank's balance are (date, end-of-day balance): every sync's balance read, a
statement's closing balance, and the balance after each row where the bank (or a statement) gives one.
The earliest observation anchors the check (the opening balance is that balance minus the rows booked up
to it); each later observation is compared with anchor + the booked rows after the anchor up to its date.
The gap is dated the bank day after the last observation that still agreed (with balances after each row,
the balance before a day's first row is the end of the day before, so that is the very day). Pending rows are not counted, rows count on their booking date (not the value date), and a balance
dated after the last row simply has no rows after it to add.

:func:`check` is the reference over everything held. :func:`check_from` gives exactly its answer from a
:class:`Checkpoint` (its walk over the days before a day) and only what is dated from that day on; the
nightly finish uses it while the checkpoint holds (``statements.service.reconcile``).
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
    return _compared(latest_day, latest_amount, computed, since, opening)


def _compared(
    latest_day: dt.date,
    latest_amount: Decimal,
    computed: Decimal,
    since: dt.date | None,
    opening: Decimal | None,
) -> Check:
    """The bank's latest balance against the computed one: ok, or a gap dated ``since``."""
    gap = latest_amount - computed
    return Check(
        "gap" if gap != 0 else "ok",
        latest_amount,
        latest_day,
        computed=computed,
        gap=gap if gap != 0 else Decimal("0.00"),
        gap_since=since if gap != 0 else None,
        opening=opening,
    )


# --------------------------------------------------------------------------- the incremental check
#
# ``check`` is the reference. The nightly finish carries a :class:`Checkpoint`: what ``check`` has found
# over every day before ``Checkpoint.day``, so it needs only the rows and balances dated from that day
# on. What a day contributes depends on that day's rows and balances and (through ``day_ends``: the
# balance before a day's first row is the end of the day before) on the next day's rows; so a checkpoint
# stays true while no row dated on or before its day and no balance dated before it has changed.


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``check``'s walk over the observation days before ``day``, in order.

    ``total``: the booked rows before ``day``. Once an observation was seen: ``anchor_day``/``anchor``
    (the earliest one), ``opening``, ``run`` (the rows after the anchor day and before ``day``),
    ``agreed`` (the last observation that agreed while none disagreed yet), ``since`` (the bank day
    after it, once one disagreed) and ``hole`` (the first day after the anchor whose chain is broken).
    """

    day: dt.date
    total: Decimal = Decimal(0)
    anchor_day: dt.date | None = None
    anchor: Decimal | None = None
    opening: Decimal | None = None
    run: Decimal | None = None
    agreed: dt.date | None = None
    since: dt.date | None = None
    hole: dt.date | None = None

    def to_json(self) -> dict[str, str | None]:
        """Exact (decimals as their strings), so a stored checkpoint is the one computed."""
        out: dict[str, str | None] = {}
        for name in (*_CP_DATES, *_CP_AMOUNTS):
            value = getattr(self, name)
            out[name] = (
                value.isoformat() if isinstance(value, dt.date) else None if value is None else str(value)
            )
        return out

    @classmethod
    def from_json(cls, data: Any) -> Checkpoint | None:
        """The stored checkpoint, or None when it is missing or not one this code wrote."""
        if not isinstance(data, dict):
            return None
        try:
            dates = {k: dt.date.fromisoformat(data[k]) if data[k] else None for k in _CP_DATES}
            amounts = {k: Decimal(data[k]) if data[k] is not None else None for k in _CP_AMOUNTS}
        except (KeyError, TypeError, ValueError, InvalidOperation):
            return None
        day, total = dates["day"], amounts["total"]
        if day is None or total is None:
            return None
        return cls(
            day,
            total,
            anchor_day=dates["anchor_day"],
            anchor=amounts["anchor"],
            opening=amounts["opening"],
            run=amounts["run"],
            agreed=dates["agreed"],
            since=dates["since"],
            hole=dates["hole"],
        )


_CP_DATES = ("day", "anchor_day", "agreed", "since", "hole")
_CP_AMOUNTS = ("total", "anchor", "opening", "run")

#: the checkpoint before any day: where a walk over the whole history starts
START = Checkpoint(day=dt.date.min)


def _from(
    day: dt.date,
    booked: Sequence[tuple[dt.date, Decimal, Any]],
    bank_balances: Sequence[tuple[dt.date, Decimal]],
) -> tuple[dict[dt.date, Decimal], dict[dt.date, Decimal], set[dt.date]]:
    """Observations, rows per day and broken days of the days from ``day`` on, as ``check`` has them
    (``booked`` must hold every row dated ``day`` or later; the end it gives the day before is dropped)."""
    ends, broken = day_ends(booked)
    observations = {d: a for d, a in ends.items() if d >= day}
    for d, a in bank_balances:
        if d >= day:
            observations[d] = a
    per_day: dict[dt.date, Decimal] = {}
    for d, a, _ in booked:
        if d >= day:
            per_day[d] = per_day.get(d, Decimal(0)) + a
    return observations, per_day, {d for d in broken if d >= day}


def _walk(
    cp: Checkpoint,
    booked: Sequence[tuple[dt.date, Decimal, Any]],
    bank_balances: Sequence[tuple[dt.date, Decimal]],
    through: dt.date,
) -> Checkpoint:
    """``cp`` carried over the days from ``cp.day`` through ``through`` (inclusive); the result's
    ``day`` is the day after."""
    observations, per_day, broken = _from(cp.day, booked, bank_balances)
    total, anchor_day, anchor, opening = cp.total, cp.anchor_day, cp.anchor, cp.opening
    run, agreed, since, hole = cp.run, cp.agreed, cp.since, cp.hole
    for d in sorted(set(observations) | set(per_day) | broken):
        if d > through:
            break
        rows = per_day.get(d)
        if anchor is None or anchor_day is None or run is None:
            if d in observations:
                anchor_day, anchor = d, observations[d]
                opening = anchor - (total + rows if rows is not None else total)
                run, agreed = Decimal(0), d
        else:
            if rows is not None:
                run += rows
            if d in broken and hole is None:
                hole = d
            if d in observations and since is None and agreed is not None:
                if observations[d] != anchor + run:
                    since = next_bank_day(agreed)
                else:
                    agreed = d
        if rows is not None:
            total += rows
    return Checkpoint(
        through + dt.timedelta(days=1), total, anchor_day, anchor, opening, run, agreed, since, hole
    )


def advance(
    cp: Checkpoint,
    booked: Sequence[tuple[dt.date, Decimal, Any]],
    bank_balances: Sequence[tuple[dt.date, Decimal]],
    day: dt.date,
) -> Checkpoint:
    """The checkpoint at ``day`` (every day before it) from ``cp`` and the rows and balances dated
    ``cp.day`` or later (more is ignored); ``cp`` itself when ``day`` is not after it."""
    if day <= cp.day:
        return cp
    return _walk(cp, booked, bank_balances, day - dt.timedelta(days=1))


def check_from(
    cp: Checkpoint,
    booked: Sequence[tuple[dt.date, Decimal, Any]],
    bank_balances: Sequence[tuple[dt.date, Decimal]],
    latest: tuple[dt.date, Decimal],
) -> Check | None:
    """``check`` from a checkpoint: ``booked`` and ``bank_balances`` hold at least everything dated
    ``cp.day`` or later (in ``check``'s order), ``latest`` is the balance ``check`` would show. None
    when the answer is not in what was given (the latest balance is dated before the checkpoint)."""
    latest_day, latest_amount = latest
    if latest_day < cp.day:
        return None
    state = _walk(cp, booked, bank_balances, latest_day)
    anchor, run, opening = state.anchor, state.run, state.opening
    if anchor is None or run is None or state.anchor_day is None or latest_day < state.anchor_day:
        return None
    computed = anchor + run
    gap = latest_amount - computed
    since = None
    if gap != 0:
        if state.since is None:
            return None  # cannot be: the latest balance itself disagrees
        since = min(state.since, state.hole) if state.hole is not None else state.since
    return _compared(latest_day, latest_amount, computed, since, opening)
