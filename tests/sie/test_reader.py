"""Reader behaviour on crafted input: errors with line numbers, encodings, line ends, streaming."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from ledgerlink.sie import SieDocument, SieError, SieReader, dumps_sie, read_document
from tests.sie.conftest import CORPUS_FILES
from tests.sie.strategies import documents

HEADER = '#FLAGGA 0\n#PROGRAM test 1\n#FORMAT PC8\n#GEN 20250101\n#SIETYP 4\n#FNAMN "Bolaget AB"\n'


def _sie(body: str, header: str = HEADER) -> bytes:
    return (header + body).encode("cp437")


def test_not_sie_at_all() -> None:
    with pytest.raises(SieError) as caught:
        read_document(b"Hello, this is a letter.\nNot a SIE file.\n")

    assert caught.value.line_number == 1
    assert caught.value.line == "Hello, this is a letter."


def test_unknown_first_record_is_not_sie() -> None:
    with pytest.raises(SieError) as caught:
        read_document(b"#!/bin/sh\necho hi\n")

    assert caught.value.line_number == 1


def test_empty_input_is_not_sie() -> None:
    with pytest.raises(SieError):
        read_document(b"")
    with pytest.raises(SieError):
        read_document(b"\n\n  \n")


def test_ver_without_closing_brace_at_end_of_file() -> None:
    data = _sie('#VER A 1 20250102 "Fika"\n{\n#TRANS 1910 {} -10\n#TRANS 7690 {} 10\n')

    with pytest.raises(SieError) as caught:
        read_document(data)

    assert caught.value.line_number == 7
    assert caught.value.line == '#VER A 1 20250102 "Fika"'
    assert "}" in caught.value.message


def test_ver_without_closing_brace_before_next_ver() -> None:
    data = _sie("#VER A 1 20250102\n{\n#TRANS 1910 {} -10\n#VER A 2 20250103\n{\n}\n")

    with pytest.raises(SieError) as caught:
        read_document(data)

    assert caught.value.line_number == 7
    assert "line 10" in caught.value.message


@pytest.mark.parametrize("bad_date", ["20251301", "2025011", "2025-01-01", "yyyymmdd"])
def test_bad_date_names_the_line(bad_date: str) -> None:
    data = _sie(f"#VER A 1 {bad_date}\n{{\n}}\n")

    with pytest.raises(SieError) as caught:
        read_document(data)

    assert caught.value.line_number == 7
    assert bad_date in caught.value.message


@pytest.mark.parametrize("bad_amount", ["12,50", "1e5", "NaN", "--1", "1_000", "abc"])
def test_bad_amount_names_the_line(bad_amount: str) -> None:
    data = _sie(f"#VER A 1 20250102\n{{\n#TRANS 1910 {{}} {bad_amount}\n}}\n")

    with pytest.raises(SieError) as caught:
        read_document(data)

    assert caught.value.line_number == 9
    assert caught.value.line == f"#TRANS 1910 {{}} {bad_amount}"


def test_missing_required_field() -> None:
    """A balance without its amount (an incomplete #RAR is only a warning: see test_lenient)."""
    with pytest.raises(SieError) as caught:
        read_document(_sie("#UB 0 1930\n"))

    assert caught.value.line_number == 7
    assert "missing" in caught.value.message


def test_trans_outside_voucher_is_an_error() -> None:
    with pytest.raises(SieError) as caught:
        read_document(_sie("#TRANS 1910 {} 10\n"))

    assert caught.value.line_number == 7


def test_amounts_keep_their_decimals() -> None:
    data = _sie(
        "#VER A 1 20250102\n{\n#TRANS 1910 {} 1997\n#TRANS 1920 {} -3.7\n"
        "#TRANS 1930 {} 125266.2\n#TRANS 2440 {} -127259.50\n}\n"
    )

    amounts = [row.amount for row in read_document(data).vouchers[0].rows]

    assert amounts == [Decimal("1997"), Decimal("-3.7"), Decimal("125266.2"), Decimal("-127259.50")]
    assert [str(amount) for amount in amounts] == ["1997", "-3.7", "125266.2", "-127259.50"]


def test_fortnox_2025_style_row_with_empty_optional_fields() -> None:
    data = _sie(
        '#VER A 1 20250506 "Account:NORDEA Text:x" 20250812\n{\n'
        '#TRANS 1920 {} -1.85 "" "" 0\n#TRANS 6570 {} 1.85 "" "" 0\n}\n'
    )

    voucher = read_document(data).vouchers[0]

    assert voucher.registration_date == date(2025, 8, 12)
    assert voucher.rows[0].date is None
    assert voucher.rows[0].text == ""
    assert voucher.rows[0].quantity == Decimal(0)


def test_crlf_and_lf_read_the_same() -> None:
    body = '#KONTO 1910 "Kassa"\n#VER A 1 20250102 "Fika"\n{\n#TRANS 1910 {} -10\n#TRANS 7690 {} 10\n}\n'
    lf = read_document(_sie(body))
    crlf = read_document(_sie(body).replace(b"\n", b"\r\n"))

    assert lf == crlf
    assert crlf.accounts["1910"].name == "Kassa"
    assert crlf.vouchers[0].text == "Fika"


def test_utf8_detected_despite_pc8_claim() -> None:
    data = (HEADER.replace("Bolaget", "Åkeri") + '#KONTO 1910 "Kassa här"\n').encode("utf-8")

    document = read_document(data)

    assert document.company_name == "Åkeri AB"
    assert document.accounts["1910"].name == "Kassa här"
    assert document.diagnostics.encoding == "utf-8"


def test_utf8_byte_order_mark_is_skipped() -> None:
    document = read_document(b"\xef\xbb\xbf" + HEADER.encode("utf-8"))

    assert document.flag == 0
    assert document.diagnostics.encoding == "utf-8"


def test_pc8_bytes_decode_as_cp437() -> None:
    document = read_document(_sie("", HEADER.replace("Bolaget", "Öst & Väst")))

    assert document.company_name == "Öst & Väst AB"
    assert document.diagnostics.encoding == "cp437"


def test_unknown_records_become_warnings() -> None:
    document = read_document(_sie('#NYPOST 1 2\n#NYPOST 3\n#PROSA "fri text"\n'))

    assert document.diagnostics.warnings == ["unknown record #NYPOST ignored (2x, first at line 7)"]


def test_header_accumulates_while_vouchers_stream() -> None:
    data = _sie(
        '#KONTO 1910 "Kassa"\n#VER A 1 20250102\n{\n#TRANS 1910 {} -10\n#TRANS 7690 {} 10\n}\n'
        "#VER A 2 20250103\n{\n#TRANS 1910 {} -5\n#TRANS 7690 {} 5\n}\n"
    )
    reader = SieReader(io.BytesIO(data))
    iterator = iter(reader)

    first = next(iterator)

    assert first.number == "1"
    assert reader.document.company_name == "Bolaget AB"
    assert set(reader.document.accounts) == {"1910"}
    assert reader.diagnostics.voucher_count == 1
    assert [v.number for v in iterator] == ["2"]
    assert reader.document.vouchers == []


def test_reader_leaves_a_callers_stream_open() -> None:
    stream = io.BytesIO(_sie(""))
    with SieReader(stream) as reader:
        list(reader)

    assert not stream.closed


def test_lines_split_across_chunks() -> None:
    rows = "".join(
        f'#TRANS {1000 + i % 10} {{}} {"1" if i % 2 else "-1"}.50 20250102 "rad {i}"\n' for i in range(40000)
    )
    data = _sie(f"#VER A 1 20250102\n{{\n{rows}}}\n")
    assert len(data) > (1 << 20)  # more than one read chunk

    document = read_document(data)

    assert len(document.vouchers[0].rows) == 40000
    assert document.vouchers[0].rows[-1].text == "rad 39999"
    assert document.diagnostics.unbalanced_vouchers == []


# -- the common-shape fast path and the general path read the same ---------------------------------
# While a #KSUMMA checksum runs, every line takes the general path; without one, the usual #VER and
# #TRANS lines take the fast path. The same content read both ways must give the same document.


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_fast_and_general_paths_read_generated_documents_alike(document: SieDocument) -> None:
    fast = read_document(dumps_sie(document))
    general = read_document(dumps_sie(document, checksum=True))

    assert (fast.diagnostics.checksum, general.diagnostics.checksum) == ("absent", "ok")
    assert fast.vouchers == general.vouchers
    assert dataclasses.replace(fast, diagnostics=general.diagnostics) == general


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_fast_and_general_paths_read_every_corpus_file_alike(path: Path) -> None:
    data = path.read_bytes()
    if b"#KSUMMA" in data:
        pytest.skip("already read on the general path")
    first_break = data.index(b"\n") + 1
    # an empty #KSUMMA starts the checksum (which then cannot match): the rest takes the general path
    general = read_document(data[:first_break] + b"#KSUMMA\r\n" + data[first_break:])
    fast = read_document(data)

    assert general.diagnostics.checksum == "mismatch"
    assert fast.vouchers == general.vouchers
    shifted = [  # the inserted line moves every later line down by one
        dataclasses.replace(u, line_number=u.line_number + 1) for u in fast.diagnostics.unbalanced_vouchers
    ]
    assert shifted == general.diagnostics.unbalanced_vouchers
