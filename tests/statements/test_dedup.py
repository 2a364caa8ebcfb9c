"""Deduplication as multisets: bank id, then (date, amount, balance after), then a tolerant match."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from ledgerlink.statements.dedup import HeldRow, classify
from ledgerlink.statements.model import StatementRow

D = dt.date


def held(
    day: dt.date, amount: str, text: str = "", ref: str | None = None, after: str | None = None
) -> HeldRow:
    return HeldRow(uuid.uuid4(), ref, day, Decimal(amount), text, Decimal(after) if after else None)


def row(
    day: dt.date, amount: str, text: str = "", ref: str | None = None, after: str | None = None
) -> StatementRow:
    return StatementRow(
        day, Decimal(amount), "SEK", bank_ref=ref, text=text, balance_after=Decimal(after) if after else None
    )


def test_identical_purchases_stay_two() -> None:
    feed = [held(D(2026, 1, 5), "-45.00", "Pressbyrån")]
    rows = [row(D(2026, 1, 5), "-45.00", "Pressbyrån"), row(D(2026, 1, 5), "-45.00", "Pressbyrån")]
    verdicts = [m.verdict for m in classify(rows, feed, tolerance_days=3)]
    assert sorted(verdicts) == ["duplicate", "new"]


def test_bank_id_match_and_conflict() -> None:
    a, b = held(D(2026, 1, 5), "-10.00", ref="R1"), held(D(2026, 1, 6), "-20.00", ref="R2")
    result = classify(
        [row(D(2026, 1, 5), "-10.00", ref="R1"), row(D(2026, 1, 6), "-25.00", ref="R2")],
        [a, b],
        tolerance_days=3,
    )
    assert (result[0].verdict, result[0].transaction_id) == ("duplicate", a.id)
    assert (result[1].verdict, result[1].transaction_id) == ("conflicting", b.id)


def test_balance_after_tells_same_day_rows_apart() -> None:
    feed = [held(D(2026, 1, 5), "-45.00", after="955.00")]
    rows = [row(D(2026, 1, 5), "-45.00", after="910.00"), row(D(2026, 1, 5), "-45.00", after="955.00")]
    result = classify(rows, feed, tolerance_days=3)
    assert [m.verdict for m in result] == ["new", "duplicate"]


def test_tolerant_match_needs_similar_text_within_the_days() -> None:
    feed = [held(D(2026, 1, 5), "-300.00", "ICA KVANTUM SOLNA"), held(D(2026, 1, 5), "-80.00", "Spotify")]
    rows = [
        row(D(2026, 1, 7), "-300.00", "Kortköp ICA Kvantum"),
        row(D(2026, 1, 7), "-80.00", "Bensin OKQ8"),
        row(D(2026, 1, 12), "-300.00", "ICA Kvantum"),
    ]
    assert [m.verdict for m in classify(rows, feed, tolerance_days=3)] == ["duplicate", "new", "new"]
