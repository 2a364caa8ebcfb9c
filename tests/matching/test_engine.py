"""Invoice matching and ranking (pure): every matching order, every remainder kind, ambiguity."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

from ledgerlink.matching import engine
from ledgerlink.matching.engine import Item, Memory, Row, Rule, suggest
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


def test_the_combination_search_is_bounded() -> None:
    items = [item(f"x{n}", str(1000 + 7 * n)) for n in range(300)]
    started = time.perf_counter()
    suggest(row("1.00"), items, [], [])
    assert time.perf_counter() - started < 1.0


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


def test_history_split_is_not_confident() -> None:
    same = [Memory((("6212", Decimal(1), None),), DAY - dt.timedelta(days=n)) for n in range(1, 8)]
    confident = suggest(row("-500.00", cp="Telia"), [], [], same)
    history = next(s for s in confident if s["kind"] == "history")
    assert history["unambiguous"] is True and "7 of the last 7" in history["reason"]
    split = same[:4] + [Memory((("5410", Decimal(1), None),), DAY) for _ in range(4)]
    history = next(s for s in suggest(row("-500.00", cp="Telia"), [], [], split) if s["kind"] == "history")
    assert history["unambiguous"] is False and history["confidence"] < 0.5


def test_parts_are_each_matched() -> None:
    o1, o2 = make_ocr("5001"), make_ocr("5002")
    items = [item("p1", "1000.00", ocr=o1), item("p2", "900.00", ocr=o2, name="Annan AB")]
    lump = Row(Decimal("1900.00"), DAY, "BG insättning", None, None, "1930",
               parts=[engine.Part(Decimal("1000.00"), o1, "Kund AB"), engine.Part(Decimal("900.00"), o2, "Annan")])  # fmt: skip
    best = suggest(lump, items, [], [])[0]
    assert {a["open_item_external_id"] for a in best["allocations"]} == {"p1", "p2"}
    assert best["unambiguous"] is True and balanced(best)


def test_the_date_window_is_a_setting() -> None:
    late = [item("a", "480.00", due=DAY - dt.timedelta(days=12))]
    assert suggest(row("480.00"), late, [], []) == []
    widened = suggest(row("480.00"), late, [], [], window_days=15)
    assert widened[0]["allocations"][0]["open_item_external_id"] == "a"


def test_many_rows_against_many_items_stay_fast() -> None:
    """One index for 20,000 open items; 2,000 rows each look up their candidates instead of scanning."""
    items = engine.OpenItems(
        item(f"i{n}", f"{100 + n}.00", name=f"Kund {n % 3000} AB", ocr=make_ocr(str(500000 + n)))
        for n in range(20000)
    )
    rows = [
        row(f"{100 + n * 7}.00", cp=f"Kund {n % 3000} AB", ref=make_ocr(str(500000 + n * 7)))
        for n in range(2000)
    ]
    started = time.perf_counter()
    results = [suggest(r, items, [], []) for r in rows]
    elapsed = time.perf_counter() - started
    assert all(r[0]["kind"] == "invoice" and r[0]["unambiguous"] for r in results)
    assert elapsed < 5.0, f"{len(rows) / elapsed:.0f} rows/s"
