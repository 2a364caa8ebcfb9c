"""The incremental balance check against the reference: from any checkpoint, on any history, it answers
exactly what :func:`check` answers over everything, and carrying a checkpoint forward gives the one
computed over everything."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerlink.statements.balance import START, Check, Checkpoint, advance, check, check_from

FIRST = dt.date(2026, 1, 1)
Row = tuple[dt.date, Decimal, Any]
Balance = tuple[dt.date, Decimal]


def _raw(after: Decimal, form: int) -> Any:
    if form == 0:
        return {"balanceAfterTransaction": {"balanceAmount": {"amount": str(after)}}}
    if form == 1:
        return {"balance_after": format(after, "f")}
    return {"source": "feed"}


@st.composite
def histories(draw: Any) -> tuple[list[Row], list[Balance], list[dt.date]]:
    """A bank's true rows (some left out, some with a balance after, some with a wrong one), balance
    reads (some wrong), in check's order, and the days of the history."""
    opening = Decimal(draw(st.integers(-50_000, 50_000))) / 100
    n = draw(st.integers(0, 40))
    days = sorted(FIRST + dt.timedelta(days=draw(st.integers(0, 40))) for _ in range(n))
    balance = opening
    rows: list[Row] = []
    ends: dict[dt.date, Decimal] = {}
    for day in days:
        amount = Decimal(draw(st.integers(-20_000, 20_000))) / 100
        balance += amount
        ends[day] = balance
        if draw(st.integers(0, 9)) == 0:
            continue  # the feed left it out
        after = balance + (Decimal("1.00") if draw(st.integers(0, 19)) == 0 else 0)
        rows.append((day, amount, _raw(after, draw(st.integers(0, 3)))))
    order = draw(st.permutations(list(range(len(rows)))))
    rows = [rows[i] for i in order]
    reads: list[Balance] = []
    statements: list[Balance] = []
    for _ in range(draw(st.integers(0, 6))):
        day = FIRST + dt.timedelta(days=draw(st.integers(-2, 45)))
        true = opening + sum((Decimal(a) for d, a, _ in rows if d <= day), Decimal(0))
        true = max((v for d, v in ends.items() if d <= day), default=opening) if draw(st.booleans()) else true
        amount = true + (Decimal("-3.50") if draw(st.integers(0, 4)) == 0 else 0)
        (statements if draw(st.integers(0, 4)) == 0 else reads).append((day, amount))
    span = [FIRST + dt.timedelta(days=i) for i in range(-3, 48)]
    return rows, [*statements, *reads], span


def latest_of(rows: list[Row], balances: list[Balance]) -> Balance | None:
    """What ``check`` shows as the bank's balance (from a balance read; the tests give at least one)."""
    return balances[-1] if balances else None


@settings(max_examples=400, deadline=None)
@given(histories(), st.integers(0, 50))
def test_from_any_checkpoint_the_answer_is_the_full_checks(
    history: tuple[list[Row], list[Balance], list[dt.date]], at: int
) -> None:
    rows, balances, span = history
    day = span[at]
    full = check(rows, balances)
    cp = advance(START, rows, balances, day)
    later_rows = [r for r in rows if r[0] >= day]
    later_balances = [b for b in balances if b[0] >= day]
    latest = latest_of(rows, balances)
    if latest is None:
        return
    answer = check_from(cp, later_rows, later_balances, latest)
    if latest[0] < day:
        assert answer is None
    else:
        assert answer == full
        assert answer is not None and full.status != "unknown"


@settings(max_examples=300, deadline=None)
@given(histories(), st.integers(0, 50), st.integers(0, 50))
def test_a_checkpoint_carried_forward_is_the_one_computed_over_everything(
    history: tuple[list[Row], list[Balance], list[dt.date]], a: int, b: int
) -> None:
    rows, balances, span = history
    first, second = span[min(a, b)], span[max(a, b)]
    cp = advance(START, rows, balances, first)
    carried = advance(cp, [r for r in rows if r[0] >= first], [x for x in balances if x[0] >= first], second)
    assert carried == advance(START, rows, balances, second)
    assert Checkpoint.from_json(carried.to_json()) == carried


def test_a_stored_checkpoint_keeps_every_digit() -> None:
    cp = Checkpoint(
        dt.date(2026, 1, 5), Decimal("10.005"), dt.date(2026, 1, 1), Decimal("100"), run=Decimal("0")
    )
    back = Checkpoint.from_json(cp.to_json())
    assert back == cp and back is not None
    assert str(back.total) == "10.005" and str(back.anchor) == "100" and str(back.run) == "0"
    assert Checkpoint.from_json({"day": "bad"}) is None and Checkpoint.from_json(None) is None


def _night_rows(rng: random.Random, ledger: dict[str, Any], day: dt.date, amounts: int) -> None:
    for _ in range(amounts):
        amount = Decimal(rng.randint(-30_000, 30_000)) / 100
        ledger["balance"] += amount
        ledger["truth"].append((day, amount, ledger["balance"]))


def test_random_nights_incremental_equals_full_after_every_step() -> None:
    """Nights of rows inside the window, late rows with old dates, balance reads, statement closing
    balances, rows with and without a balance after, gaps that appear and close: after each step the
    answer from the checkpoint (when the rule allows it) is the full check's, and the rule allowed it on
    most nights."""
    incremental = total_steps = 0
    for seed in range(40):
        rng = random.Random(seed)
        ledger: dict[str, Any] = {"balance": Decimal(rng.randint(0, 100_000)) / 100, "truth": []}
        held: list[Row] = []
        reads: list[Balance] = []
        statements: list[Balance] = []
        cp: Checkpoint | None = None
        overlap = rng.choice([2, 5, 10])
        today = FIRST
        for _night in range(45):
            today += dt.timedelta(days=1)
            changed: dt.date | None = None  # the earliest day a row or balance changed since the checkpoint

            def touch(day: dt.date) -> None:
                nonlocal changed
                changed = day if changed is None or day < changed else changed

            start = len(ledger["truth"])
            _night_rows(rng, ledger, today, rng.randint(0, 4) if today.weekday() < 5 else 0)
            for day, amount, after in ledger["truth"][start:]:
                if rng.random() < 0.08:
                    continue  # dropped by the feed: a gap until a statement brings it
                raw = _raw(after, rng.choice([0, 0, 1, 2]))
                held.append((day, amount, raw))
                touch(day)
            if rng.random() < 0.1 and ledger["truth"]:  # a late row with an old date
                old = ledger["truth"][rng.randrange(len(ledger["truth"]))]
                if not any(h[0] == old[0] and h[1] == old[1] for h in held):
                    held.append((old[0], old[1], _raw(old[2], 2)))
                    touch(old[0])
            if rng.random() < 0.1:  # a statement: its missing rows and its closing balance
                closing = today - dt.timedelta(days=rng.randint(0, 20))
                have = {(h[0], h[1]) for h in held}
                for day, amount, after in ledger["truth"]:
                    if day <= closing and (day, amount) not in have:
                        held.append((day, amount, {"balance_after": format(after, "f")}))
                        touch(day)
                true = sum((a for d, a, _ in ledger["truth"] if d <= closing), Decimal(0))
                statements.append(
                    (
                        closing,
                        true + ledger["truth"][0][2] - ledger["truth"][0][1] if ledger["truth"] else true,
                    )
                )
                touch(closing)
            read_day = today if rng.random() < 0.9 else today - dt.timedelta(days=rng.randint(1, 15))
            reads.append((read_day, ledger["balance"] + (Decimal("5.00") if rng.random() < 0.05 else 0)))
            touch(read_day)
            balances = [*statements, *reads]
            full = check(held, balances)
            answer: Check | None = None
            if cp is not None and changed is not None and changed > cp.day:
                answer = check_from(
                    cp,
                    [h for h in held if h[0] >= cp.day],
                    [b for b in balances if b[0] >= cp.day],
                    balances[-1],
                )
            total_steps += 1
            if answer is None:
                answer = full
                base, base_rows, base_balances = START, held, balances
            else:
                incremental += 1
                assert cp is not None
                base = cp
                base_rows = [h for h in held if h[0] >= cp.day]
                base_balances = [b for b in balances if b[0] >= cp.day]
            assert answer == full, (seed, today)
            next_day = today - dt.timedelta(days=overlap + 1)
            cp = advance(base, base_rows, base_balances, next_day)
            assert cp == advance(START, held, balances, max(next_day, cp.day))
            cp = Checkpoint.from_json(cp.to_json())
    assert incremental > total_steps // 2
