"""The balance check as a pure computation: gaps on the right day, and what is no gap."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ledgerlink.statements.balance import check

D = dt.date


def rows_with_balances(opening: str, rows: list[tuple[dt.date, str]]) -> list[tuple[dt.date, Decimal, Any]]:
    balance = Decimal(opening)
    out: list[tuple[dt.date, Decimal, Any]] = []
    for day, amount in rows:
        balance += Decimal(amount)
        out.append(
            (day, Decimal(amount), {"balanceAfterTransaction": {"balanceAmount": {"amount": str(balance)}}})
        )
    return out


BANK = [
    (D(2026, 1, 2), "-100.00"),
    (D(2026, 1, 3), "50.00"),
    (D(2026, 1, 5), "-20.00"),
    (D(2026, 1, 5), "-7.00"),
]


def test_complete_rows_are_ok() -> None:
    booked = rows_with_balances("1000.00", BANK)
    result = check(booked, [(D(2026, 1, 6), Decimal("923.00"))])
    assert result.status == "ok" and result.gap == 0 and result.computed == Decimal("923.00")
    assert result.opening == Decimal("1000.00")


def test_a_missing_row_is_a_gap_on_its_day() -> None:
    booked = rows_with_balances("1000.00", BANK)
    dropped = [r for r in booked if r[1] != Decimal("-20.00")]
    result = check(dropped, [(D(2026, 1, 6), Decimal("923.00"))])
    assert result.status == "gap"
    assert result.gap == Decimal("-20.00")
    assert result.gap_since == D(2026, 1, 5)


def test_without_balances_after_the_gap_shows_at_the_next_balance_read() -> None:
    plain = [(d, Decimal(a), None) for d, a in BANK]
    first = [(D(2026, 1, 3), Decimal("950.00"))]
    missing = [r for r in plain if r[1] != Decimal("-20.00")]
    result = check(missing, [*first, (D(2026, 1, 8), Decimal("923.00"))])
    assert (
        result.status == "gap" and result.gap == Decimal("-20.00") and result.gap_since == D(2026, 1, 5)
    )  # the bank day after the last agreeing read


def test_pending_rows_and_a_later_dated_balance_are_no_gap() -> None:
    plain = [(d, Decimal(a), None) for d, a in BANK]  # the caller passes booked rows only
    result = check(plain, [(D(2026, 1, 3), Decimal("950.00")), (D(2026, 1, 20), Decimal("923.00"))])
    assert result.status == "ok"


def test_no_balance_is_unknown() -> None:
    assert check([(D(2026, 1, 2), Decimal("1.00"), None)], []).status == "unknown"
