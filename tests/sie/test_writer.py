"""Writer output, and writer -> reader round trips (hand-built and generated documents)."""

from __future__ import annotations

import dataclasses
import io
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings

from ledgerlink.sie import (
    Account,
    Balance,
    Dimension,
    FinancialYear,
    SieDocument,
    SieObject,
    SieWriteError,
    Voucher,
    VoucherRow,
    dumps_sie,
    read_document,
    write_sie,
)
from tests.sie.strategies import documents


def _closing_document() -> SieDocument:
    return SieDocument(
        program="ledgerlink",
        program_version="0.1.0",
        company_name="Öst & Väst Åkeri AB",
        org_number="556677-8899",
        generated=date(2025, 2, 1),
        financial_years=[FinancialYear(0, date(2024, 1, 1), date(2024, 12, 31))],
        accounts={
            "1510": Account("1510", "Kundfordringar", "T"),
            "2440": Account("2440", "Leverantörsskulder", "S"),
            "6351": Account("6351", 'Befarade "osäkra" kundfordringar', "K"),
        },
        dimensions={1: Dimension(1, "Kostnadsställe"), 11: Dimension(11, "Region", parent=1)},
        objects=[SieObject(1, "100", "Göteborg")],
        opening_balances=[Balance(0, "1510", Decimal("120000.00"))],
        closing_balances=[Balance(0, "1510", Decimal("95500.5"))],
        results=[Balance(0, "6351", Decimal("4500"))],
        vouchers=[
            Voucher(
                "K",
                "1",
                date(2024, 12, 31),
                "Bokslut: osäkra kundfordringar",
                rows=[
                    VoucherRow("6351", Decimal("4500.00"), ((1, "100"),), text="Kund 17"),
                    VoucherRow("1510", Decimal("-4500.00")),
                ],
            )
        ],
    )


def test_round_trip_of_a_hand_built_4e_document() -> None:
    document = _closing_document()

    assert read_document(dumps_sie(document, "4E")) == document


def test_4i_leaves_out_balances() -> None:
    document = _closing_document()

    read_back = read_document(dumps_sie(document, "4I"))

    assert read_back.opening_balances == []
    assert read_back.closing_balances == []
    assert read_back.results == []
    assert read_back.vouchers == document.vouchers
    assert read_back.accounts == document.accounts
    assert read_back.variant == "4I"
    expected = dataclasses.replace(document, opening_balances=[], closing_balances=[], results=[])
    assert read_back == expected


def test_output_is_pc8_with_crlf() -> None:
    data = dumps_sie(_closing_document())

    assert data.startswith(b"#FLAGGA 0\r\n")
    assert b"\r\n#FORMAT PC8\r\n" in data
    assert data.count(b"\n") == data.count(b"\r\n")
    assert '"Öst & Väst Åkeri AB"'.encode("cp437") in data
    assert b'"Befarade \\"os\x84kra\\" kundfordringar"' in data
    assert b'#TRANS 6351 {1 "100"} 4500.00 "" "Kund 17"\r\n' in data


def test_write_sie_to_a_stream_matches_dumps() -> None:
    stream = io.BytesIO()

    write_sie(_closing_document(), stream, "4I")

    assert stream.getvalue() == dumps_sie(_closing_document(), "4I")


def test_text_outside_code_page_437_is_refused() -> None:
    document = SieDocument(company_name="Euro € AB", generated=date(2025, 1, 1))

    with pytest.raises(SieWriteError, match="€"):
        dumps_sie(document)


def test_line_break_in_text_is_refused() -> None:
    document = SieDocument(company_name="Two\nlines", generated=date(2025, 1, 1))

    with pytest.raises(SieWriteError):
        dumps_sie(document)


def test_unknown_write_type_is_refused() -> None:
    with pytest.raises(SieWriteError):
        dumps_sie(SieDocument(), "3")  # type: ignore[arg-type]


def test_checksum_written_by_the_writer_verifies() -> None:
    data = dumps_sie(_closing_document(), checksum=True)

    assert data.splitlines()[1] == b"#KSUMMA"
    assert data.splitlines()[-1].startswith(b"#KSUMMA ")
    assert read_document(data).diagnostics.checksum == "ok"


def test_corrupted_content_gives_a_checksum_mismatch() -> None:
    data = dumps_sie(_closing_document(), checksum=True)
    corrupted = data.replace(b'4500.00 "" "Kund 17"', b'4600.00 "" "Kund 17"')
    assert corrupted != data

    document = read_document(corrupted)

    assert document.diagnostics.checksum == "mismatch"
    assert document.diagnostics.unbalanced_vouchers[0].difference == Decimal("100.00")


def test_truncated_checksummed_file_is_a_mismatch() -> None:
    data = dumps_sie(_closing_document(), checksum=True)
    truncated = data[: data.rindex(b"#KSUMMA ")]

    assert read_document(truncated).diagnostics.checksum == "mismatch"


def test_without_checksum_option_the_status_is_absent() -> None:
    assert read_document(dumps_sie(_closing_document())).diagnostics.checksum == "absent"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_generated_documents_round_trip_as_4e(document: SieDocument) -> None:
    assert read_document(dumps_sie(document, "4E")) == document


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_generated_documents_round_trip_as_4i_with_checksum(document: SieDocument) -> None:
    read_back = read_document(dumps_sie(document, "4I", checksum=True))

    assert read_back.vouchers == document.vouchers
    assert read_back.accounts == document.accounts
    assert read_back.company_name == document.company_name
    assert read_back.opening_balances == []
    assert read_back.diagnostics.checksum == "ok"
