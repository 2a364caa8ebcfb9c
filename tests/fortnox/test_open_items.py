from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ledgerlink.fortnox.client import Invoice, Payment, SupplierInvoice, open_items_at, total_open
from ledgerlink.fortnox.client.models import parse_decimal

YE = dt.date(2025, 12, 31)


def invoice(number: str, day: dt.date, total: str, **kw: object) -> Invoice:
    values: dict[str, object] = {
        "document_number": number,
        "customer_number": "1",
        "customer_name": "Kund AB",
        "invoice_date": day,
        "due_date": day + dt.timedelta(days=30),
        "total": Decimal(total),
        "balance": Decimal(total),
    }
    values.update(kw)
    return Invoice(**values)  # type: ignore[arg-type]


def pay(number: str, day: dt.date, amount: str, write_offs: str = "0") -> Payment:
    return Payment(number="p" + number, invoice_number=number, payment_date=day, amount=Decimal(amount),
                   write_offs=Decimal(write_offs))  # fmt: skip


def test_unpaid_invoice_is_open_for_its_total() -> None:
    items = open_items_at([invoice("1", dt.date(2025, 12, 1), "1250.00")], [], YE)
    assert [(i.document_number, i.open_amount, i.counterparty) for i in items] == [
        ("1", Decimal("1250.00"), "Kund AB")
    ]


def test_paid_before_year_end_is_not_open() -> None:
    inv = invoice("1", dt.date(2025, 11, 1), "500", final_pay_date=dt.date(2025, 12, 15))
    assert open_items_at([inv], [pay("1", dt.date(2025, 12, 15), "500")], YE) == []


def test_paid_after_year_end_is_open_at_year_end() -> None:
    inv = invoice("1", dt.date(2025, 12, 10), "800", final_pay_date=dt.date(2026, 1, 9))
    items = open_items_at([inv], [pay("1", dt.date(2026, 1, 9), "800")], YE)
    assert total_open(items) == Decimal("800")


def test_partial_payment_before_year_end_reduces_open_amount() -> None:
    inv = invoice("1", dt.date(2025, 10, 1), "1000", final_pay_date=dt.date(2026, 2, 1))
    payments = [
        pay("1", dt.date(2025, 11, 1), "400", write_offs="0.40"),
        pay("1", dt.date(2026, 2, 1), "599.60"),
    ]
    assert [i.open_amount for i in open_items_at([inv], payments, YE)] == [Decimal("599.60")]


def test_cancelled_unbooked_and_later_invoices_are_excluded() -> None:
    invoices = [
        invoice("1", dt.date(2025, 12, 1), "100", cancelled=True),
        invoice("2", dt.date(2025, 12, 1), "100", booked=False),
        invoice("3", dt.date(2026, 1, 2), "100"),
        invoice("4", dt.date(2025, 12, 31), "100"),
    ]
    assert [i.document_number for i in open_items_at(invoices, [], YE)] == ["4"]


def test_credit_invoice_reduces_the_total_and_items_are_ordered() -> None:
    invoices = [
        invoice("11", dt.date(2025, 12, 15), "-250", credit=True),
        invoice("9", dt.date(2025, 12, 5), "1000"),
        invoice("10", dt.date(2025, 12, 5), "300"),
    ]
    items = open_items_at(invoices, [], YE)
    assert [i.document_number for i in items] == ["9", "10", "11"]
    assert total_open(items) == Decimal("1050")


def test_payments_of_other_invoices_do_not_leak() -> None:
    items = open_items_at(
        [invoice("1", dt.date(2025, 12, 1), "100")], [pay("10", dt.date(2025, 12, 2), "100")], YE
    )
    assert total_open(items) == Decimal("100")


def test_supplier_invoices_use_given_number() -> None:
    supplier = SupplierInvoice(
        given_number="501", invoice_number="F-77", supplier_number="101", supplier_name="Lev AB",
        invoice_date=dt.date(2025, 12, 1), due_date=None, total=Decimal("2000"), balance=Decimal("0"),
        final_pay_date=dt.date(2026, 1, 3),
    )  # fmt: skip
    items = open_items_at([supplier], [pay("501", dt.date(2025, 12, 20), "500")], YE)
    assert [(i.document_number, i.counterparty, i.open_amount) for i in items] == [
        ("501", "Lev AB", Decimal("1500"))
    ]


def test_fortnox_amounts_parse_without_float() -> None:
    assert parse_decimal("1 234,50") == Decimal("1234.50")
    assert parse_decimal("") == Decimal(0)
    assert parse_decimal(Decimal("0.1")) + parse_decimal("0.2") == Decimal("0.3")
    assert parse_decimal(12) == Decimal(12)
