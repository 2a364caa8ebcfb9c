"""The BgMax reader against files made from known payments (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ledgerlink.bgmax import BgmaxError, read
from ledgerlink.bgmax.writer import DepositIn, PaymentIn, write

DAY = dt.date(2026, 3, 12)
# Bankgirot's published example: deposit 00074 = 1,000 + 1,400 - 500 = 1,900.00
KNOWN = [
    DepositIn(DAY, [PaymentIn(Decimal("1000.00"), "65598", "Kund Ett AB", "556036-0793"),
                    PaymentIn(Decimal("1400.00"), "1234567897", "Kund Två"),
                    PaymentIn(Decimal("-500.00"), "1234567897")], serial=74),
    DepositIn(DAY + dt.timedelta(days=1), [PaymentIn(Decimal("250.50"), "FAKTURA 77", "Tre HB")], serial=75),
]  # fmt: skip


def test_reads_deposits_payments_and_payers() -> None:
    deposits = list(read(write(KNOWN).splitlines(keepends=True)))
    assert [(d.date, d.amount, d.payment_count, d.serial) for d in deposits] == [
        (DAY, Decimal("1900.00"), 3, "00074"),
        (DAY + dt.timedelta(days=1), Decimal("250.50"), 1, "00075"),
    ]
    first = deposits[0].payments
    assert [p.amount for p in first] == [Decimal("1000.00"), Decimal("1400.00"), Decimal("-500.00")]
    assert first[0].payer == "Kund Ett AB" and first[0].payer_org_number == "5560360793"
    assert first[1].reference == "1234567897" and deposits[1].payments[0].reference == "FAKTURA 77"


def test_a_changed_amount_fails_the_sums_check_naming_the_line() -> None:
    lines = write(KNOWN).decode("latin-1").splitlines()
    n = next(i for i, line in enumerate(lines) if line.startswith("20") and "65598" in line)
    lines[n] = lines[n][:37] + "000000000000100100" + lines[n][55:]  # 1,001.00 instead of 1,000.00
    with pytest.raises(BgmaxError) as caught:
        list(read(lines))
    deposit_line = next(i for i, line in enumerate(lines) if line.startswith("15")) + 1
    assert caught.value.line == deposit_line and "sum" in caught.value.message


def test_wrong_counts_and_not_bgmax() -> None:
    lines = write(KNOWN).decode("latin-1").splitlines()
    lines[-1] = "70" + "00000009" + lines[-1][10:]
    with pytest.raises(BgmaxError, match="counts 9 payments"):
        list(read(lines))
    with pytest.raises(BgmaxError, match="not a BgMax file") as caught:
        list(read(["#FLAGGA 0", "#PROGRAM x"]))
    assert caught.value.line == 1
    with pytest.raises(BgmaxError, match="without its end record"):
        list(read(write(KNOWN).decode("latin-1").splitlines()[:-1]))
    with pytest.raises(BgmaxError, match="80 characters"):
        list(read([write(KNOWN).decode("latin-1").splitlines()[0] + "x"]))


def test_streaming_reads_a_deposit_before_the_rest_of_the_file() -> None:
    lines = iter(write(KNOWN).decode("latin-1").splitlines())
    first = next(read(lines))
    assert first.amount == Decimal("1900.00")
    assert next(lines).startswith("05")  # the reader has not read ahead into the next section
