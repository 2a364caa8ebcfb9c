"""The statement readers: every bank form read from files made in the banks' shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledgerlink.statements.camt053 import parse_camt053
from ledgerlink.statements.csv_forms import parse_amount, parse_csv
from ledgerlink.statements.errors import StatementFormatUnknown, StatementRefused, StatementUnreadable
from ledgerlink.statements.parse import parse_statement
from tests.statements import files

D = dt.date
ROWS = [
    (D(2026, 1, 5), Decimal("-1234.50"), "Kortköp ICA Kvantum", Decimal("8765.50")),
    (D(2026, 1, 7), Decimal("25000.00"), "Inbetalning Åkesson AB", Decimal("33765.50")),
    (D(2026, 1, 9), Decimal("-99.00"), "Bankavgift", Decimal("33666.50")),
]


def test_camt053_reads_balances_entries_refs_parties_and_text() -> None:
    data = files.camt053(
        [
            {
                "amount": "-1234.50",
                "date": "2026-01-05",
                "ref": "A1",
                "text": "Faktura 77",
                "party": "Elbolaget",
            },
            {"amount": "250.00", "date": "2026-01-06", "valdate": "2026-01-07", "party": "Kund AB"},
            {"amount": "-10.00", "date": "2026-01-08", "status": "PDNG"},
        ],
        closing=("15.50", "2026-01-31"),
    )
    parsed = parse_camt053(data)
    assert parsed.iban == "SE4550000000058398257466"
    assert parsed.opening is not None and parsed.opening.amount == Decimal("1000.00")
    assert parsed.closing is not None and parsed.closing.as_of == D(2026, 1, 31)
    first, second, third = parsed.rows
    assert (first.amount, first.bank_ref, first.text, first.counterparty) == (
        Decimal("-1234.50"),
        "A1",
        "Faktura 77",
        "Elbolaget",
    )
    assert first.reference is None  # NOTPROVIDED is no reference
    assert (second.amount, second.value_date, second.counterparty) == (
        Decimal("250.00"),
        D(2026, 1, 7),
        "Kund AB",
    )
    assert third.booked is False and first.booked is True
    assert parsed.period == (D(2026, 1, 5), D(2026, 1, 8))


def test_camt053_xml_bomb_is_refused_before_expansion() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<Document><BkToCstmrStmt>&lol3;</BkToCstmrStmt></Document>"
    )
    with pytest.raises(StatementRefused):
        parse_camt053(bomb)


def test_camt053_external_entity_is_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "http://example.invalid/secret">]>'
        b"<Document><BkToCstmrStmt><Stmt>&x;</Stmt></BkToCstmrStmt></Document>"
    )
    with pytest.raises(StatementRefused):
        parse_statement(xxe)


def test_camt053_unreadable_amount_names_the_element() -> None:
    data = files.camt053([{"amount": "1.00", "date": "2026-01-05"}, {"amount": "2.00", "date": "2026-01-06"}])
    data = data.replace(b">2.00<", b">two<")
    with pytest.raises(StatementUnreadable) as err:
        parse_camt053(data)
    assert "Stmt/Ntry[2]/Amt" in err.value.detail


def test_camt053_broken_xml_names_the_line() -> None:
    with pytest.raises(StatementUnreadable) as err:
        parse_camt053(b"<?xml version='1.0'?>\n<Document>\n<BkToCstmrStmt>\n</Document>")
    assert "line 4" in err.value.detail


@pytest.mark.parametrize(
    ("maker", "fmt"),
    [
        (files.nordea_csv, "csv_nordea"),
        (files.swedbank_csv, "csv_swedbank"),
        (files.seb_csv, "csv_seb"),
        (files.handelsbanken_xls, "csv_handelsbanken"),
    ],
)
def test_bank_csv_forms_are_detected_and_read(maker, fmt) -> None:  # type: ignore[no-untyped-def]
    parsed = parse_statement(maker(ROWS))
    assert parsed.format == fmt
    assert [(r.booking_date, r.amount, r.balance_after) for r in parsed.rows] == [
        (d, a, b) for d, a, _, b in ROWS
    ]
    assert parsed.rows[1].text is not None and "Åkesson" in parsed.rows[1].text
    assert all(r.currency == "SEK" and r.booked for r in parsed.rows)


def test_nordea_reserved_rows_are_pending() -> None:
    parsed = parse_csv(files.nordea_csv(ROWS[:1], pending=[(Decimal("-50.00"), "Kortköp Pressbyrån")]))
    pending = [r for r in parsed.rows if not r.booked]
    assert len(pending) == 1 and pending[0].amount == Decimal("-50.00")


def test_named_format_must_match_the_header() -> None:
    with pytest.raises(StatementFormatUnknown):
        parse_statement(files.seb_csv(ROWS), "csv_nordea")


def test_unknown_header_is_refused() -> None:
    with pytest.raises(StatementFormatUnknown):
        parse_statement(b"Datum;Summa\n2026-01-01;1,00\n")


def test_unreadable_csv_amount_names_the_line() -> None:
    data = files.seb_csv(ROWS).replace(b"-99,00", b"nittionio")
    with pytest.raises(StatementUnreadable) as err:
        parse_csv(data)
    assert "line 4" in err.value.detail


@pytest.mark.parametrize(
    ("raw", "decimal", "value"),
    [
        ("-1 234,50", ",", "-1234.50"),
        ("1.234.567,00", ",", "1234567.00"),
        ("\u22125\u00a0000,5", ",", "-5000.5"),
        ("-1234.50", ".", "-1234.50"),
        ("1,234.50", ".", "1234.50"),
    ],
)
def test_amount_forms(raw: str, decimal: str, value: str) -> None:
    assert parse_amount(raw, decimal) == Decimal(value)
