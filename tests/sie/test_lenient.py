"""SIE files as real programs write them: a record whose optional or required-but-harmless fields are
missing or empty, and stray spaces, are read with a warning naming the line; a file is refused only where
the data itself would be wrong (a voucher without its date, a row or a balance without its amount)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledgerlink.sie import SieError, read_document

HEAD = '#FLAGGA 0\r\n#SIETYP 4\r\n#RAR 0 20250101 20251231\r\n#KONTO 1930 "Bank"\r\n'
VOUCHER = "{\r\n#TRANS 1930 {} 1.00\r\n#TRANS 1930 {} -1.00\r\n}\r\n"


def _read(body: str):  # type: ignore[no-untyped-def]
    return read_document((HEAD + body).encode("cp437"))


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        ("#RAR -1\r\n", "line 5: #RAR without its required fields"),
        ("#RAR -1 20240101\r\n", "line 5: #RAR without its required fields"),
        ('#RAR -1 "" ""\r\n', "line 5: #RAR without its required fields"),
        ('#GEN ""\r\n', "line 5: #GEN without its required fields"),
        ("#FLAGGA\r\n", "line 5: #FLAGGA without its required fields"),
        ("#TAXAR\r\n", "line 5: #TAXAR without its required fields"),
        ('#OMFATTN ""\r\n', "line 5: #OMFATTN without its required fields"),
        ("#OBJEKT 1\r\n", "line 5: #OBJEKT without its required fields"),
        ("#PSALDO 0 202501 1930 {}\r\n", "line 5: #PSALDO without its required fields"),
        ('#VER "" "" 20250115 "Utan serie"\r\n' + VOUCHER, "line 5: #VER with an empty series or number"),
        ('#VER A "" 20250115\r\n' + VOUCHER, "line 5: #VER with an empty series or number"),
    ],
)
def test_a_record_with_missing_or_empty_fields_is_read_with_a_warning_naming_its_line(
    body: str, warning: str
) -> None:
    document = _read(body)

    assert any(w.startswith(warning) for w in document.diagnostics.warnings), document.diagnostics.warnings
    assert document.financial_years[0].start == dt.date(2025, 1, 1)  # the rest is read as before


def test_the_year_of_an_incomplete_rar_is_left_out_and_the_others_kept() -> None:
    document = _read("#RAR -1\r\n")

    assert [(y.index, y.start, y.end) for y in document.financial_years] == [
        (0, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    ]


def test_a_voucher_with_an_empty_series_keeps_its_rows_and_every_one_is_counted_once() -> None:
    body = "".join(f'#VER "" "" 2025011{n} "v{n}"\r\n' + VOUCHER for n in range(3))

    document = _read(body)

    assert [(v.series, v.number, v.text) for v in document.vouchers] == [("", "", f"v{n}") for n in range(3)]
    assert [r.amount for r in document.vouchers[0].rows] == [Decimal("1.00"), Decimal("-1.00")]
    assert "line 5: #VER with an empty series or number, read as given (3x)" in document.diagnostics.warnings


def test_stray_spaces_are_read_as_the_fields_they_separate() -> None:
    body = '  #VER  A  7   20250115  "Text"  \r\n {  \r\n  #TRANS  1930  {  }  12.50 \r\n#TRANS 1930 {} -12.50\r\n } \r\n'

    [voucher] = _read(body).vouchers

    assert (voucher.series, voucher.number, voucher.date, voucher.text) == (
        "A",
        "7",
        dt.date(2025, 1, 15),
        "Text",
    )
    assert [(r.account, r.amount, r.objects) for r in voucher.rows] == [
        ("1930", Decimal("12.50"), ()),
        ("1930", Decimal("-12.50"), ()),
    ]


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("#VER A 1\r\n" + VOUCHER, 5),  # a voucher without its date
        ('#VER A 1 "" "x"\r\n' + VOUCHER, 5),
        ("#VER A 1 20250115\r\n{\r\n#TRANS 1930 {}\r\n#TRANS 1930 {} -1\r\n}\r\n", 7),  # a row without amount
        ("#VER A 1 20250115\r\n{\r\n#TRANS 1930 {} 1,00\r\n#TRANS 1930 {} -1\r\n}\r\n", 7),
        ("#UB 0 1930\r\n", 5),  # a balance without its amount
        ('#IB 0 1930 ""\r\n', 5),
        ("#RAR 0 20251301 20251231\r\n", 5),  # a date that does not exist
    ],
)
def test_a_file_whose_data_would_be_wrong_is_still_refused_naming_the_line(body: str, line: int) -> None:
    with pytest.raises(SieError) as raised:
        _read(body)

    assert raised.value.line_number == line
