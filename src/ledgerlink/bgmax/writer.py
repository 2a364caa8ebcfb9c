"""Write a BgMax file from known payments (tests, the sandbox): the reader's layout in reverse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class PaymentIn:
    amount: Decimal  # negative: a deduction (21)
    reference: str
    payer: str | None = None
    payer_org_number: str | None = None
    reference_code: str = "2"


@dataclass(frozen=True)
class DepositIn:
    date: dt.date
    payments: Sequence[PaymentIn]
    serial: int = 1
    bank_account: str = "12345678901"


def _rec(text: str) -> str:
    assert len(text) <= 80, text
    return text.ljust(80)


def _ore(amount: Decimal, width: int) -> str:
    return str(int(abs(amount) * 100)).rjust(width, "0")


def write(
    deposits: Sequence[DepositIn], *, bankgiro: str = "9912346", at: dt.datetime | None = None
) -> bytes:
    stamp = (at or dt.datetime(2026, 1, 1)).strftime("%Y%m%d%H%M%S") + "000000"
    lines = [_rec("01" + "BGMAX".ljust(20) + "01" + stamp + "P")]
    counts = {"20": 0, "21": 0, "15": 0}
    for deposit in deposits:
        lines.append(_rec("05" + bankgiro.rjust(10, "0") + " " * 10 + "SEK"))
        for n, p in enumerate(deposit.payments, start=1):
            code = "20" if p.amount >= 0 else "21"
            counts[code] += 1
            lines.append(
                _rec(
                    code
                    + "0009912346"
                    + p.reference.ljust(25)
                    + _ore(p.amount, 18)
                    + p.reference_code
                    + "1"
                    + str(n).rjust(12, "0")
                    + "0"
                )
            )
            if p.payer:
                lines.append(_rec("26" + p.payer[:35].ljust(35)))
            if p.payer_org_number:
                lines.append(_rec("29" + p.payer_org_number.replace("-", "").rjust(12, "0")))
        total = sum((p.amount for p in deposit.payments), Decimal(0))
        counts["15"] += 1
        lines.append(
            _rec(
                "15"
                + deposit.bank_account.ljust(35)
                + deposit.date.strftime("%Y%m%d")
                + str(deposit.serial).rjust(5, "0")
                + _ore(total, 18)
                + "SEK"
                + str(len(deposit.payments)).rjust(8, "0")
                + "K"
            )
        )
    lines.append(
        _rec(
            "70"
            + str(counts["20"]).rjust(8, "0")
            + str(counts["21"]).rjust(8, "0")
            + "0" * 8
            + str(counts["15"]).rjust(8, "0")
        )
    )
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")
