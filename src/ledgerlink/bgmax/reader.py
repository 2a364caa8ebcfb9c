"""A streaming reader of BgMax files: fixed 80-character records, one per line, ISO 8859-1.

Records (positions 1-based, inclusive): 01 start (``BGMAX`` at 3-22, version 23-24, timestamp 25-44,
test mark 45: T/P); 05 opening of a deposit section (recipient bankgiro 3-12, currency 23-25); 20 payment
(sender bankgiro 3-12, reference 13-37, amount in öre 38-55, reference code 56, channel 57, BGC serial
58-69); 21 deduction (same layout, the amount is taken off); 22/23 extra references (22 positive, 23
negative, same layout); 25 information text (3-52); 26 payer name (3-37, extra name 38-72); 27 address
(3-37, post code 38-46); 28 town (3-37, country 38-72); 29 payer org number (3-14); 15 deposit (the
recipient's bank account 3-37, payment date 38-45, deposit serial 46-50, amount in öre 51-68, currency
69-71, number of payments 72-79, deposit type 80); 70 end (number of payments 3-10, deductions 11-18,
extra references 19-26, deposits 27-34).

Each deposit closes with its 15 record: its amount must be the payments minus the deductions of its
section and its count the number of them; the 70 record's counts must match the file. A mismatch is a
:class:`BgmaxError` naming the line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

RECORD = 80


class BgmaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class Payment:
    """A payment (20) or deduction (21, negative amount) with what the following records add."""

    amount: Decimal
    reference: str
    reference_code: str
    sender_bankgiro: str
    serial: str
    line: int
    extra_references: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    payer: str | None = None
    address: str | None = None
    payer_org_number: str | None = None


@dataclass
class Deposit:
    recipient_bankgiro: str
    currency: str
    date: dt.date
    serial: str
    amount: Decimal
    bank_account: str
    payments: list[Payment]
    line: int

    @property
    def payment_count(self) -> int:
        return len(self.payments)


def _ore(field_: str, line: int, what: str) -> Decimal:
    if not field_.isdigit():
        raise BgmaxError(line, f"{what} is not a number of öre: {field_!r}")
    return Decimal(int(field_)).scaleb(-2)


def _count(field_: str, line: int, what: str) -> int:
    if not field_.strip().isdigit():
        raise BgmaxError(line, f"{what} is not a number: {field_!r}")
    return int(field_)


def _lines(source: Iterable[bytes | str]) -> Iterator[tuple[int, str]]:
    for n, raw in enumerate(source, start=1):
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        if len(text) > RECORD:
            raise BgmaxError(n, f"a record is {RECORD} characters, this one has {len(text)}")
        yield n, text.ljust(RECORD)


def read(source: Iterable[bytes | str]) -> Iterator[Deposit]:
    """Deposits one by one as their 15 record is read; checks counts and sums as it goes."""
    started = ended = False
    section: tuple[str, str] | None = None
    payments: list[Payment] = []
    totals = {"20": 0, "21": 0, "22": 0, "23": 0, "15": 0}
    last = 0
    for n, rec in _lines(source):
        last = n
        code = rec[:2]
        if not started:
            if code != "01" or rec[2:7] != "BGMAX":
                raise BgmaxError(n, "not a BgMax file: the first record must be 01 with BGMAX")
            started = True
            continue
        if ended:
            raise BgmaxError(n, "a record after the end record 70")
        if code == "05":
            if section is not None:
                raise BgmaxError(n, "a new opening record 05 before the deposit 15 of the last one")
            section = (rec[2:12].lstrip("0"), rec[22:25].strip() or "SEK")
            payments = []
        elif code in ("20", "21"):
            if section is None:
                raise BgmaxError(n, f"record {code} outside a section (05 ... 15)")
            amount = _ore(rec[37:55], n, "the amount")
            totals[code] += 1
            payments.append(
                Payment(
                    amount=amount if code == "20" else -amount,
                    reference=rec[12:37].strip(),
                    reference_code=rec[55],
                    sender_bankgiro=rec[2:12].lstrip("0"),
                    serial=rec[57:69].strip(),
                    line=n,
                )
            )
        elif code in ("22", "23", "25", "26", "27", "28", "29"):
            if not payments:
                raise BgmaxError(n, f"record {code} before any payment 20")
            payment = payments[-1]
            if code in ("22", "23"):
                totals[code] += 1
                payment.extra_references.append(rec[12:37].strip())
            elif code == "25":
                payment.text.append(rec[2:52].strip())
            elif code == "26":
                payment.payer = " ".join(x for x in (rec[2:37].strip(), rec[37:72].strip()) if x) or None
            elif code == "27":
                payment.address = " ".join(x for x in (rec[2:37].strip(), rec[37:46].strip()) if x) or None
            elif code == "29":
                org = rec[2:14].strip()
                payment.payer_org_number = org[-10:] if org else None
        elif code == "15":
            if section is None:
                raise BgmaxError(n, "a deposit 15 without its opening record 05")
            amount = _ore(rec[50:68], n, "the deposit amount")
            count = _count(rec[71:79], n, "the number of payments")
            expected = sum((p.amount for p in payments), Decimal(0))
            if amount != expected:
                raise BgmaxError(n, f"the deposit amount {amount} is not the sum of its payments {expected}")
            if count != len(payments):
                raise BgmaxError(n, f"the deposit counts {count} payments, the section has {len(payments)}")
            try:
                date = dt.datetime.strptime(rec[37:45], "%Y%m%d").date()
            except ValueError as exc:
                raise BgmaxError(n, f"the payment date {rec[37:45]!r} is not YYYYMMDD") from exc
            totals["15"] += 1
            yield Deposit(
                recipient_bankgiro=section[0],
                currency=rec[68:71].strip() or section[1],
                date=date,
                serial=rec[45:50],
                amount=amount,
                bank_account=rec[2:37].strip(),
                payments=payments,
                line=n,
            )
            section, payments = None, []
        elif code == "70":
            if section is not None:
                raise BgmaxError(n, "the end record 70 before the deposit 15 of the open section")
            counts = {
                "payments": (_count(rec[2:10], n, "payments"), totals["20"]),
                "deductions": (_count(rec[10:18], n, "deductions"), totals["21"]),
                "extra references": (_count(rec[18:26], n, "extra references"), totals["22"] + totals["23"]),
                "deposits": (_count(rec[26:34], n, "deposits"), totals["15"]),
            }
            for what, (said, found) in counts.items():
                if said != found:
                    raise BgmaxError(n, f"the end record counts {said} {what}, the file has {found}")
            ended = True
        else:
            raise BgmaxError(n, f"unknown record type {code!r}")
    if not started:
        raise BgmaxError(1, "the file is empty")
    if not ended:
        raise BgmaxError(last + 1, "the file ends without its end record 70")
