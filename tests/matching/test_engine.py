"""Invoice matching and ranking (pure): every matching order, every remainder kind, ambiguity."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from ledgerlink.matching import invoices
from ledgerlink.matching.engine import Memory, Row, Rule, suggest
from ledgerlink.matching.invoices import Item, OpenItems, Part
from ledgerlink.matching.references import make_ocr

DAY = dt.date(2026, 3, 10)
OCR = make_ocr("104300")


def item(ext: str, amount: str, *, name: str = "Kund AB", number: str | None = None, ocr: str | None = None,
         kind: str = "customer_invoice", due: dt.date = DAY, credit: bool = False) -> Item:  # fmt: skip
    return Item(ext, kind, number or ext, ocr, name, None, Decimal(amount), due, credit)


def row(amount: str, *, cp: str | None = "Kund AB", ref: str | None = None, text: str | None = None) -> Row:
    return Row(Decimal(amount), DAY, cp, text, ref, "1930")


def balanced(s: dict[str, object]) -> bool:
    lines = s["lines"]
    assert isinstance(lines, list)
    return sum(Decimal(x["debit"]) for x in lines) == sum(Decimal(x["credit"]) for x in lines)


def test_exact_ocr_with_the_open_amount() -> None:
    items = [item("a", "1250.00", ocr=OCR, number="1043"), item("b", "1250.00", number="1044")]
    best = suggest(row("1250.00", ref=OCR), items, [], [])[0]
    assert best["kind"] == "invoice" and best["unambiguous"] is True
    assert [a["open_item_external_id"] for a in best["allocations"]] == ["a"]
    assert "OCR" in best["reason"] and "1043" in best["reason"]
    assert best["remainder"] == {"kind": "none", "amount": "0.00"}
    assert {x["account"] for x in best["lines"]} == {"1930", "1510"} and balanced(best)


def test_outgoing_rows_match_supplier_invoices() -> None:
    items = [item("c", "300.00", number="F-77", ocr=OCR), item("s", "300.00", number="F-77", ocr=OCR,
             kind="supplier_invoice")]  # fmt: skip
    best = suggest(row("-300.00", ref=OCR), items, [], [])[0]
    assert best["allocations"][0]["open_item_external_id"] == "s"
    debit = next(x for x in best["lines"] if x["account"] == "2440")
    assert debit["debit"] == "300.00" and balanced(best)


def test_remainder_kinds() -> None:
    def remainder(paid: str) -> dict[str, str]:
        result = suggest(row(paid, ref=OCR), [item("a", "1000.00", ocr=OCR)], [], [])[0]
        assert balanced(result)
        return dict(result["remainder"])

    assert remainder("600.00") == {"kind": "partial_payment", "amount": "400.00"}
    assert remainder("1200.00") == {"kind": "overpayment", "amount": "200.00"}
    assert remainder("999.60") == {"kind": "rounding", "amount": "0.40"}
    assert remainder("1060.00") == {"kind": "fee", "amount": "60.00"}


def test_amount_and_counterparty_near_the_due_date() -> None:
    items = [item("a", "480.00", name="Bygg & Son AB", due=DAY - dt.timedelta(days=3)),
             item("far", "480.00", name="Bygg & Son AB", due=DAY - dt.timedelta(days=90))]  # fmt: skip
    best = suggest(row("480.00", cp="BYGG & SON"), items, [], [])[0]
    assert best["kind"] == "invoice" and best["unambiguous"] is True
    assert best["allocations"][0]["open_item_external_id"] == "a"


def test_equal_candidates_stay_ambiguous() -> None:
    items = [item("a", "480.00", number="11"), item("b", "480.00", number="12")]
    best = suggest(row("480.00"), items, [], [])[0]
    assert best["kind"] == "invoice" and best["unambiguous"] is False
    assert best["confidence"] < 0.5 and "11" in best["reason"] and "12" in best["reason"]


def test_a_combination_with_a_credit_note() -> None:
    items = [item("i1", "1000.00", due=DAY - dt.timedelta(days=40)), item("i2", "700.00"),
             item("cn", "200.00", credit=True), item("other", "55.00", name="Annan AB")]  # fmt: skip
    best = suggest(row("1500.00"), items, [], [])[0]
    assert best["kind"] == "invoice" and best["unambiguous"] is True
    assert {a["open_item_external_id"] for a in best["allocations"]} == {"i1", "i2", "cn"}
    assert balanced(best)


def test_the_combination_search_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 open items of one counterparty: the search looks at no more than its item and subset bounds
    (counted, not timed)."""
    seen: list[int] = []
    examined = 0
    real = itertools.combinations

    def counting(pool: Any, size: int) -> Iterator[Any]:
        nonlocal examined
        seen.append(len(pool))
        for subset in real(pool, size):
            examined += 1
            yield subset

    monkeypatch.setattr(itertools, "combinations", counting)  # the module invoices.py calls through
    items = [item(f"x{n}", str(1000 + 7 * n)) for n in range(300)]
    assert [s for s in suggest(row("1.00"), items, [], []) if s["kind"] == "invoice"] == []
    assert seen and max(seen) <= invoices.COMBINATION_MAX_ITEMS
    assert examined <= invoices.COMBINATION_MAX_TRIES + 1


def test_rule_history_and_default_and_never_revenue_when_an_invoice_matches() -> None:
    rule = Rule("Swish", 1, {"text_contains": "swish"}, [{"account": "3001", "share": "0.8"},
                {"account": "2611", "share": "0.2"}])  # fmt: skip
    paying = suggest(row("500.00", ref=OCR, text="Swish"), [item("a", "500.00", ocr=OCR)], [rule], [])
    assert [s["kind"] for s in paying] == ["invoice"]
    alone = suggest(row("500.00", text="Swish"), [], [rule], [])
    assert alone[0]["kind"] == "rule" and alone[0]["lines"][1] == {"account": "3001", "debit": "0.00",
                                                                   "credit": "400.00"}  # fmt: skip
    fee = suggest(row("-45.00", cp=None, text="Prisavisering bankavgift"), [], [], [])[0]
    assert fee["kind"] == "default" and [x["account"] for x in fee["lines"]] == ["1930", "6570"]
    tax = suggest(row("-12000.00", cp="Skatteverket"), [], [], [])[0]
    assert tax["lines"][1]["account"] == "1630"


def booked(account: str, *days_ago: int) -> list[Memory]:
    """Past bookings of the whole amount to ``account``, one ``days_ago`` each (before ``DAY``)."""
    return [Memory(((account, Decimal(1), None),), DAY - dt.timedelta(days=n)) for n in days_ago]


def test_history_split_is_not_confident() -> None:
    same = booked("6212", *(n * 7 for n in range(1, 8)))  # weekly, since January
    confident = suggest(row("-500.00", cp="Telia"), [], [], same)
    history = next(s for s in confident if s["kind"] == "history")
    assert history["unambiguous"] is True and "7 of the last 7" in history["reason"]
    split = same[:4] + [Memory((("5410", Decimal(1), None),), DAY) for _ in range(4)]
    history = next(s for s in suggest(row("-500.00", cp="Telia"), [], [], split) if s["kind"] == "history")
    assert history["unambiguous"] is False and history["confidence"] < 0.5


def test_a_split_history_leaves_no_suggestion_sure_not_even_the_swedish_default() -> None:
    """Telia booked 4 times to 6212 and 4 times to 5410: the telephone default (6212 + VAT) is generic,
    the company's own bookings say otherwise, so nothing for the row is unambiguous."""
    split = booked("6212", 10, 40, 70, 100) + booked("5410", 20, 50, 80, 110)
    ranked = suggest(row("-500.00", cp="Telia"), [], [], split)
    assert {s["kind"] for s in ranked} == {"history", "default"}
    assert not any(s["unambiguous"] for s in ranked)
    default = next(s for s in ranked if s["kind"] == "default")
    assert "earlier rows from Telia were booked otherwise" in default["reason"]
    assert suggest(row("-500.00", cp="Telia"), [], [], [])[0]["unambiguous"] is True  # no history: sure


def test_too_few_bookings_give_a_suggestion_that_is_not_sure() -> None:
    """One or two bookings all one way are shown first, but are not enough to be sure of the next."""
    shop = row("-349.00", cp="Clas Ohlson")
    for history, said in (
        (booked("5410", 40), "1 of the last 1"),
        (booked("5410", 40, 5), "2 of the last 2"),
    ):
        best = suggest(shop, [], [], history)[0]
        assert best["kind"] == "history" and [x["account"] for x in best["lines"]] == ["1930", "5410"]
        assert best["unambiguous"] is False
        assert best["reason"] == f"{said} rows from Clas Ohlson went to 5410 — too few to be sure"
    sure = suggest(shop, [], [], booked("5410", 70, 40, 5))[0]  # January, February and March
    assert (
        sure["unambiguous"] is True and sure["reason"] == "3 of the last 3 rows from Clas Ohlson went to 5410"
    )


def test_bookings_from_one_month_only_are_not_sure() -> None:
    """Three purchases in February, all to 5410 (one project, say): not yet a pattern from month to
    month. A fourth in January makes it one."""
    shop = row("-1200.00", cp="Webhallen Sverige AB")
    february = booked("5410", 10, 20, 30)  # 2026-02-28, 02-18 and 02-08
    best = suggest(shop, [], [], february)[0]
    assert best["kind"] == "history" and best["unambiguous"] is False
    assert best["reason"] == (
        "3 of the last 3 rows from Webhallen Sverige AB went to 5410 — all in February 2026: "
        "too short a time to be sure"
    )
    assert suggest(shop, [], [], february + booked("5410", 45))[0]["unambiguous"] is True


def test_few_bookings_that_are_what_the_swedish_default_says_are_sure() -> None:
    """One payment to Skatteverket booked to 1630: the company's booking and the default agree."""
    (history, default) = suggest(row("-12000.00", cp="Skatteverket"), [], [], booked("1630", 30))
    assert history["kind"] == "history" and history["unambiguous"] is True
    assert (
        history["reason"]
        == "1 of the last 1 rows from Skatteverket went to 1630, as the Swedish default says"
    )
    assert default["kind"] == "default" and default["unambiguous"] is True
    # booked elsewhere once: neither is sure
    other = suggest(row("-12000.00", cp="Skatteverket"), [], [], booked("2510", 30))
    assert [(s["kind"], s["unambiguous"]) for s in other] == [("history", False), ("default", False)]


def test_parts_are_each_matched() -> None:
    o1, o2 = make_ocr("5001"), make_ocr("5002")
    items = [item("p1", "1000.00", ocr=o1), item("p2", "900.00", ocr=o2, name="Annan AB")]
    lump = Row(Decimal("1900.00"), DAY, "BG insättning", None, None, "1930",
               parts=[Part(Decimal("1000.00"), o1, "Kund AB"), Part(Decimal("900.00"), o2, "Annan")])  # fmt: skip
    best = suggest(lump, items, [], [])[0]
    assert {a["open_item_external_id"] for a in best["allocations"]} == {"p1", "p2"}
    assert best["unambiguous"] is True and balanced(best)


def test_the_date_window_is_a_setting() -> None:
    late = [item("a", "480.00", due=DAY - dt.timedelta(days=12))]
    assert suggest(row("480.00"), late, [], []) == []
    widened = suggest(row("480.00"), late, [], [], window_days=15)
    assert widened[0]["allocations"][0]["open_item_external_id"] == "a"


def test_many_rows_against_many_items_each_find_their_own_invoice() -> None:
    """One index for 20,000 open items; 2,000 rows each find their own invoice among them. (Speed is
    measured in bench/matching.py, never asserted here.)"""
    items = OpenItems(
        item(f"i{n}", f"{100 + n}.00", name=f"Kund {n % 3000} AB", ocr=make_ocr(str(500000 + n)))
        for n in range(20000)
    )
    rows = [
        row(f"{100 + n * 7}.00", cp=f"Kund {n % 3000} AB", ref=make_ocr(str(500000 + n * 7)))
        for n in range(2000)
    ]
    results = [suggest(r, items, [], []) for r in rows]
    assert all(r[0]["kind"] == "invoice" and r[0]["unambiguous"] for r in results)
    assert [r[0]["allocations"][0]["open_item_external_id"] for r in results] == [
        f"i{n * 7}" for n in range(2000)
    ]


def test_the_bank_fee_default_is_for_the_bank_s_fees_only() -> None:
    bank = suggest(row("-125.00", cp="Banken", text="Företagspaket månadsavgift"), [], [], [])
    assert [(s["kind"], s["lines"][1]["account"]) for s in bank] == [("default", "6570")]
    assert suggest(row("-1900.00", cp="Svenska Kraftnät", text="Nätavgift"), [], [], []) == []
    assert suggest(row("-300.00", cp="Stockholms Parkering", text="Parkeringsavgift"), [], [], []) == []


def test_history_of_earlier_invoice_payments_does_not_outrank_or_replace_the_invoice() -> None:
    paid_invoices = [Memory((("1510", Decimal(1), None),), DAY - dt.timedelta(days=n)) for n in range(1, 6)]
    # no reference: the amount + counterparty match (0.85) against "5 of the last 5 rows went to 1510"
    ranked = suggest(row("480.00"), [item("a", "480.00")], [], paid_invoices)
    assert [(s["kind"], s["unambiguous"]) for s in ranked] == [("invoice", True)]
    assert ranked[0]["allocations"][0]["open_item_external_id"] == "a"
    # no open invoice matches: "1510" names no invoice, so it is not something to book as it is
    (alone,) = suggest(row("480.00"), [], [], paid_invoices)
    assert alone["kind"] == "history" and alone["unambiguous"] is False
    assert "no open invoice matches" in alone["reason"]


def test_a_default_beside_an_ambiguous_invoice_match_ranks_below_it_and_is_not_sure() -> None:
    twins = [
        item("a", "900.00", name="Folksam", kind="supplier_invoice"),
        item("b", "900.00", name="Folksam", kind="supplier_invoice", due=DAY + dt.timedelta(days=3)),
    ]
    ranked = suggest(row("-900.00", cp="Folksam", text="PG 95 77 00-1 Folksam"), twins, [], [])
    assert [(s["kind"], s["unambiguous"]) for s in ranked] == [("invoice", False), ("default", False)]
    assert ranked[1]["confidence"] < ranked[0]["confidence"]
    assert ranked[1]["lines"][1]["account"] == "6310" and "open invoices match" in ranked[1]["reason"]
