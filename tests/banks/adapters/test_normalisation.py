"""The identity rule and the Berlin Group sign/date/text normalisation, with hypothesis."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerlink.banks.adapters.base import (
    BankTransaction,
    BookingStatus,
    InvalidResponse,
    transaction_identities,
)
from ledgerlink.banks.adapters.berlingroup.parsing import BerlinGroupParser

#: The pure Berlin Group parser (no HTTP client): the normalisation under test.
ADAPTER = BerlinGroupParser("sandbox")

amounts = st.decimals(min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2).filter(
    lambda d: d != 0
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(
    lambda s: s.strip() != ""
)
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def tx(
    amount: str = "-10.00", text: str = "Kortköp", pid: str | None = None, day: int = 1
) -> BankTransaction:
    return BankTransaction(
        booking_status=BookingStatus.booked,
        amount=Decimal(amount),
        currency="SEK",
        booking_date=dt.date(2026, 3, day),
        provider_id=pid,
        counterparty="ICA",
        description=text,
    )


# --------------------------------------------------------------------------- identity rule


def test_provider_id_is_the_identity() -> None:
    assert transaction_identities([tx(pid="A1"), tx(pid="B2")]) == ["id:A1", "id:B2"]


def test_identical_rows_without_id_stay_apart() -> None:
    ids = transaction_identities([tx(), tx(), tx()])
    assert len(set(ids)) == 3
    assert ids[1] == ids[0].replace("#0", "#1")


def test_hash_identity_is_stable_across_calls() -> None:
    assert transaction_identities([tx(), tx(text="Annat")]) == transaction_identities(
        [tx(), tx(text="Annat")]
    )


def test_whitespace_and_case_do_not_change_the_hash() -> None:
    assert transaction_identities([tx(text="Kortköp  ICA")]) == transaction_identities(
        [tx(text="kortköp ica")]
    )


def test_repeated_provider_id_is_disambiguated() -> None:
    ids = transaction_identities([tx(pid="9998"), tx(pid="9998", day=2)])
    assert ids == ["id:9998", "id:9998#1"]


def test_blank_provider_id_falls_back_to_hash() -> None:
    assert transaction_identities([tx(pid="  ")])[0].startswith("h:")


@given(st.lists(st.tuples(amounts, texts), min_size=1, max_size=20))
def test_identities_are_unique_within_an_answer(rows: list[tuple[Decimal, str]]) -> None:
    batch = [tx(amount=str(a), text=t) for a, t in rows]
    assert len(set(transaction_identities(batch))) == len(batch)


@given(amounts, texts)
def test_different_content_gives_different_identity(amount: Decimal, text: str) -> None:
    other = amount + Decimal("0.01")
    assert transaction_identities([tx(str(amount), text)]) != transaction_identities([tx(str(other), text)])


# --------------------------------------------------------------------------- BG normalisation


def bg_row(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "bookingDate": "2026-03-16",
        "transactionAmount": {"amount": "-1.00", "currency": "SEK"},
    }
    row.update(kw)
    return row


@given(amounts)
def test_amount_strings_become_exact_signed_decimals(amount: Decimal) -> None:
    raw = bg_row(transactionAmount={"amount": format(amount, "f"), "currency": "SEK"})
    result = ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row")
    assert result.amount == amount
    assert isinstance(result.amount, Decimal)


@given(amounts, texts, texts)
def test_counterparty_follows_the_sign(amount: Decimal, creditor: str, debtor: str) -> None:
    raw = bg_row(
        transactionAmount={"amount": format(amount, "f"), "currency": "SEK"},
        creditorName=creditor,
        debtorName=debtor,
    )
    result = ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row")
    assert result.counterparty == (creditor if amount < 0 else debtor).strip()


@given(texts, st.lists(texts, max_size=3))
def test_description_joins_unstructured_texts(single: str, array: list[str]) -> None:
    raw = bg_row(remittanceInformationUnstructured=single, remittanceInformationUnstructuredArray=array)
    description = ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row").description
    assert description is not None
    assert description.startswith(single.strip())
    for item in array:
        assert item.strip() in description


@given(dates)
def test_plain_dates_are_taken_as_bank_local(day: dt.date) -> None:
    raw = bg_row(bookingDate=day.isoformat(), valueDate=day.isoformat())
    result = ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row")
    assert result.booking_date == day
    assert result.value_date == day


@given(dates, st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
def test_utc_timestamps_become_stockholm_dates(day: dt.date, hour: int, minute: int) -> None:
    stamp = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
    raw = bg_row(bookingDate=stamp.isoformat().replace("+00:00", "Z"))
    result = ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row")
    assert result.booking_date == stamp.astimezone(ZoneInfo("Europe/Stockholm")).date()
    assert result.booking_date in (day, day + dt.timedelta(days=1))


def test_late_evening_utc_is_next_stockholm_day() -> None:
    raw = bg_row(bookingDate="2026-06-30T22:30:00Z")
    assert ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row").booking_date == dt.date(2026, 7, 1)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"transactionAmount": {"currency": "SEK"}}, "row.transactionAmount.amount"),
        ({"transactionAmount": {"amount": "12,50", "currency": "SEK"}}, "row.transactionAmount.amount"),
        ({"transactionAmount": {"amount": "NaN", "currency": "SEK"}}, "row.transactionAmount.amount"),
        ({"transactionAmount": {"amount": "1.00"}}, "row.transactionAmount.currency"),
        ({"transactionAmount": "1.00"}, "row.transactionAmount"),
        ({"bookingDate": "2026-02-30"}, "row.bookingDate"),
        ({"bookingDate": None}, "row.bookingDate"),
    ],
)
def test_malformed_rows_name_bank_and_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidResponse) as info:
        ADAPTER.normalise_transaction(bg_row(**patch), BookingStatus.booked, "row")
    assert info.value.bank_id == "sandbox"
    assert info.value.field == field


@given(st.text(alphabet=" \t", max_size=3))
def test_blank_ids_are_none(blank: str) -> None:
    raw = bg_row(transactionId=blank, entryReference=blank)
    assert ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row").provider_id is None


def test_entry_reference_when_no_transaction_id() -> None:
    raw = bg_row(entryReference="E-77")
    assert ADAPTER.normalise_transaction(raw, BookingStatus.booked, "row").provider_id == "E-77"
