"""Every real SIE file in the corpus reads, with counts and balances checked against a trivial scan."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ledgerlink.sie import SieReader, read_document
from tests.sie.conftest import CORPUS_FILES, corpus_file


def _labels(path: Path) -> list[list[str]]:
    """Each line split on whitespace: a deliberately naive scan, independent of the reader."""
    return [line.split() for line in path.read_bytes().decode("latin-1").splitlines() if line.strip()]


def _naive_sums(path: Path, label: str) -> dict[tuple[int, str], Decimal]:
    sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for fields in _labels(path):
        if fields[0] == label:
            sums[(int(fields[1]), fields[2].strip('"'))] += Decimal(fields[3])
    return dict(sums)


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) >= 14


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_voucher_and_transaction_counts_match_a_naive_line_scan(path: Path) -> None:
    scanned = _labels(path)
    expected_vouchers = sum(1 for fields in scanned if fields[0] == "#VER")
    expected_transactions = sum(1 for fields in scanned if fields[0] == "#TRANS")

    document = read_document(path)

    assert len(document.vouchers) == expected_vouchers
    assert sum(len(voucher.rows) for voucher in document.vouchers) == expected_transactions
    assert document.diagnostics.voucher_count == expected_vouchers
    assert document.diagnostics.transaction_count == expected_transactions


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_balances_match_a_naive_line_scan(path: Path) -> None:
    document = read_document(path)

    for label, balances in (
        ("#IB", document.opening_balances),
        ("#UB", document.closing_balances),
        ("#RES", document.results),
    ):
        read_sums: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
        for balance in balances:
            read_sums[(balance.year, balance.account)] += balance.amount
        assert dict(read_sums) == _naive_sums(path, label), label


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_accounts_match_a_naive_line_scan(path: Path) -> None:
    expected = {fields[1].strip('"') for fields in _labels(path) if fields[0] == "#KONTO"}

    document = read_document(path)

    assert set(document.accounts) == expected


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_streaming_yields_the_same_vouchers_without_keeping_them(path: Path) -> None:
    whole = read_document(path)

    with SieReader(path) as reader:
        streamed = list(reader)

    assert streamed == whole.vouchers
    assert reader.document.vouchers == []
    assert reader.document.accounts == whole.accounts
    assert reader.document.closing_balances == whole.closing_balances


def test_bad_balance_file_reports_its_unbalanced_voucher() -> None:
    document = read_document(corpus_file("transaktioner_ovnbolag-bad-balance.se"))

    unbalanced = document.diagnostics.unbalanced_vouchers
    # The copy changed one row of voucher B 1 from -128.00 to -12899.00.
    assert [(item.series, item.number, item.difference) for item in unbalanced] == [
        ("B", "1", Decimal("-12771.00"))
    ]
    voucher = next(v for v in document.vouchers if (v.series, v.number) == ("B", "1"))
    assert voucher.imbalance() == Decimal("-12771.00")


def test_good_twin_has_no_unbalanced_vouchers() -> None:
    document = read_document(corpus_file("transaktioner_ovnbolag.se"))

    assert document.diagnostics.unbalanced_vouchers == []
    assert all(voucher.imbalance() == 0 for voucher in document.vouchers)


def test_swedish_letters_in_pc8_decode() -> None:
    document = read_document(corpus_file("typ4.se"))

    assert document.company_name == "Övningsföretaget AB"
    assert document.program == "Edison Ekonomi Byrå"
    assert document.diagnostics.encoding == "cp437"


def test_closing_balance_spot_checks() -> None:
    bl = read_document(corpus_file("BL0001_typ4.SE"))
    ovn = read_document(corpus_file("transaktioner_ovnbolag.se"))

    assert [b.amount for b in bl.closing_balances if (b.year, b.account) == (0, "1220")] == [
        Decimal("272078.6")
    ]
    assert [b.amount for b in ovn.closing_balances if (b.year, b.account) == (0, "1930")] == [
        Decimal("1511049.94")
    ]
    assert [b.amount for b in ovn.opening_balances if (b.year, b.account) == (0, "1221")] == [
        Decimal("518057.53")
    ]


def test_header_records_of_a_bl_export() -> None:
    document = read_document(corpus_file("BL0001_typ4.SE"))

    assert document.program == "BL Administration"
    assert document.program_version == "2011.2.102"
    assert document.generated == date(2011, 11, 1)
    assert document.org_number == "556265-1892"
    assert document.address is not None
    assert document.address.street == "Flottbrovägen 14"
    assert [(y.index, y.start, y.end) for y in document.financial_years] == [
        (0, date(2009, 7, 1), date(2010, 6, 30)),
        (-1, date(2008, 7, 1), date(2009, 6, 30)),
    ]
    assert document.accounts["3010"].unit == "Styck"
    assert document.variant == "4E"


def test_added_and_removed_rows_are_kept_apart_from_the_ledger_rows() -> None:
    document = read_document(corpus_file("BL0001_typ4.SE"))

    voucher = next(v for v in document.vouchers if (v.series, v.number) == ("A", "8"))
    assert [(r.account, r.amount) for r in voucher.removed_rows] == [
        ("1930", Decimal("-1000")),
        ("2640", Decimal("200")),
        ("4010", Decimal("800")),
    ]
    assert [(r.account, r.amount) for r in voucher.added_rows] == [("1930", 0), ("2640", 0)]
    assert [r.account for r in voucher.rows] == ["1930", "2640"]
    assert voucher.signature == "2 Christer Bengtsson"
    assert voucher.registration_date == date(2009, 12, 14)


def test_tabs_and_object_lists_of_a_mamut_export() -> None:
    document = read_document(corpus_file("MAMUT_SIE4_EXPORT.SE"))

    assert document.format == "PC8"
    row = next(r for v in document.vouchers for r in v.rows if r.amount == Decimal("-301050.00"))
    assert row.account == "3051"
    assert row.objects == ((1, "2"), (10, "12"))
    assert row.text == "30083 Svenska Mässan i Göteborg, 12"
    assert row.date == date(2010, 1, 7)


def test_utf8_file_claiming_pc8_is_decoded_as_utf8_with_sub_dimensions() -> None:
    document = read_document(corpus_file("SIE4_Exempelfil_med_underdim.SE"))

    assert document.diagnostics.encoding == "utf-8"
    assert any("UTF-8" in warning for warning in document.diagnostics.warnings)
    # The file itself holds U+FFFD where the letter Ö once was.
    assert document.company_name == "\ufffdvningsbolaget AB"
    assert document.dimensions[61].name == "Kubernetesdrift"
    assert document.dimensions[61].parent == 6
    assert document.dimensions[1].parent is None


def test_norstedts_checksum_verifies() -> None:
    document = read_document(corpus_file("Bokslut_Norstedts_SIE_4E.se"))

    assert document.diagnostics.checksum == "ok"
    assert [b.amount for b in document.opening_balances if (b.year, b.account) == (0, "1220")] == [
        Decimal("219292")
    ]


def test_files_without_checksum_report_absent() -> None:
    assert read_document(corpus_file("typ4.se")).diagnostics.checksum == "absent"


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("BL0001_typ1.SE", "1"),
        ("BL0001_typ2.SE", "2"),
        ("BL0001_typ3.SE", "3"),
        ("BL0001_typ4.SE", "4E"),
        ("magenta_bokforing_SIE4I.se", "4I"),
        ("BokOrder.si", "4I"),
    ],
)
def test_variant_is_recognised(name: str, variant: str) -> None:
    assert read_document(corpus_file(name)).variant == variant


def test_period_balances_and_budgets_of_type_2() -> None:
    document = read_document(corpus_file("transaktioner_ovnbolag.se"))

    first = document.period_balances[0]
    assert first.period.isdigit()
    assert len(first.period) == 6
    budget = [b for b in document.period_budgets if (b.year, b.period, b.account) == (-1, "201104", "6090")]
    assert [b.amount for b in budget] == [Decimal("250.00")]


def test_unterminated_quote_in_a_real_export_runs_to_end_of_line() -> None:
    document = read_document(corpus_file("Sie4.se"))

    texts = [r.text for v in document.vouchers for r in v.rows if r.text.startswith("260 ")]
    assert texts
    assert any("#KTYP DIFF" in warning for warning in document.diagnostics.warnings)
