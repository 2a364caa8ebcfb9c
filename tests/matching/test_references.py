"""OCR, org number and reference extraction (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledgerlink.matching.references import (
    counterparty_key,
    extract,
    history_key,
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


def test_history_keys_tell_counterparties_that_share_a_first_word_apart() -> None:
    assert history_key("Svenska Handelsbanken AB") != history_key("Svenska Kraftnät")
    assert history_key("ICA Supermarket Hornstull") != history_key("ICA Kvantum Malmborgs")
    assert history_key("Telia Sverige AB") != history_key("Telia Finance AB")


def test_history_keys_fold_case_diacritics_legal_forms_and_punctuation() -> None:
    same = ["Svenska Kraftnät", "SVENSKA KRAFTNAT", "Svenska Kraftnät AB", "Svenska Kraftnät Aktiebolag"]
    assert {history_key(name) for name in same} == {"svenska kraftnat"}
    assert history_key("Nordlund Konsult HB") == history_key("Nordlund Konsult Handelsbolag")
    assert history_key("Kaffe & Co KB") == history_key("Kaffe & Co. Kommanditbolaget") == "kaffe co"
    assert history_key("Telia Sverige AB (publ)") == history_key("telia sverige ab") == "telia sverige"


def test_history_keys_prefer_an_org_number_and_fall_back_to_the_text_stem() -> None:
    # an org number written in the counterparty or the text is the identity, whatever the name says
    assert history_key("Telia", "Org.nr 556036-0793 faktura") == "org:556036-0793"
    assert history_key("Telia Sverige AB 556036-0793") == history_key("TELIA", "556036-0793")
    # a bare run of ten digits is an OCR or account number more often than an org number
    assert history_key(None, "Skattekonto 16 5560360793") == "skattekonto"
    # no counterparty: the first words of the text, without payment words, digits and months
    assert history_key(None, "TELIA SVERIGE AB faktura mars 2026") == "telia sverige"
    assert history_key(None, "Lön april") == history_key(None, "Lön maj") == "lon"
    assert history_key(None, None) == history_key("", "12345") == ""
