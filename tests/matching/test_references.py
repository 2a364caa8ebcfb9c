"""OCR, org number and reference extraction (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledgerlink.matching.references import (
    counterparty_key,
    extract,
    luhn_digit,
    luhn_ok,
    make_ocr,
    names_match,
    ocr_valid,
    org_number_valid,
)

bases = st.text(alphabet="0123456789", min_size=1, max_size=22)


@given(bases)
def test_a_made_ocr_is_valid(base: str) -> None:
    assert ocr_valid(make_ocr(base))


@given(bases, st.integers(min_value=1, max_value=9))
def test_a_changed_digit_is_caught(base: str, delta: int) -> None:
    ocr = make_ocr(base)
    position = len(ocr) // 2
    changed = ocr[:position] + str((int(ocr[position]) + delta) % 10) + ocr[position + 1 :]
    assert not ocr_valid(changed)


@given(st.text(alphabet="0123456789", min_size=1, max_size=21))
def test_the_length_digit_variant(base: str) -> None:
    ocr = make_ocr(base, length_digit=True)
    assert ocr_valid(ocr, length_digit=True)
    assert int(ocr[-2]) == len(ocr) % 10
    wrong = str((len(base) + 3) % 10)  # a length digit off by one, check digit still right
    mislabelled = base + wrong + str(luhn_digit(base + wrong))
    assert ocr_valid(mislabelled)
    assert not ocr_valid(mislabelled, length_digit=True)


@given(bases)
def test_without_a_length_digit_the_strict_check_usually_fails(base: str) -> None:
    ocr = make_ocr(base)
    assert ocr_valid(ocr, length_digit=True) == (len(ocr) >= 3 and int(ocr[-2]) == len(ocr) % 10)


def test_known_numbers() -> None:
    assert ocr_valid("4521000270") is luhn_ok("4521000270")
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")
    assert not ocr_valid("1")  # too short
    assert not ocr_valid("12a4")
    assert org_number_valid("556036-0793")  # Volvo Personvagnar's published org number
    assert not org_number_valid("556036-0794")


def test_extract_reads_ocr_invoice_org_and_name() -> None:
    ocr = make_ocr("4521000")
    refs = extract("Kund AB", f"BG inbet OCR {ocr[:4]} {ocr[4:]}", "Faktura 1043 org 556036-0793")
    assert ocr in refs.ocr
    assert "1043" in refs.invoice_numbers
    assert refs.org_numbers == ["556036-0793"]
    assert refs.name == "kund"


def test_names() -> None:
    assert counterparty_key("Telia Sverige AB") == "telia sverige"
    assert names_match("TELIA SVERIGE AB", "Telia Sverige")
    assert not names_match("ICA", "Telia")
