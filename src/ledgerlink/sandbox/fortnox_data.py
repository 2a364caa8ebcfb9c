"""The sandbox Fortnox's company: a deterministic, realistic Swedish limited company.

``SandboxCompany.generate(seed=..., vouchers=N, year=2025)`` builds two financial years (``year - 1``
and ``year``), a BAS chart, the usual Fortnox voucher series, customer and supplier invoices with
payments, and the vouchers that book all of it. Everything ties together: the ledger balance of 1510
(kundfordringar) and 2440 (leverantörsskulder) at each year end equals the open invoices at that date,
reconstructed from invoices and payments (some paid after the year end, some partly paid, some never,
a credit invoice on each side; a cancelled and an unbooked invoice that must not count).

Payments dated after the last financial year have no vouchers (that year does not exist yet).

This module holds the company's records (:mod:`ledgerlink.sandbox.fortnox_records`) and what Fortnox computes from them (balances, the SIE
export); :mod:`ledgerlink.sandbox.fortnox_generator` makes them up.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from ledgerlink import sie
from ledgerlink.sandbox.fortnox_generator import generate_company
from ledgerlink.sandbox.fortnox_records import (
    SandboxAccount,
    SandboxInvoice,
    SandboxPayment,
    SandboxRow,
    SandboxSeries,
    SandboxVoucher,
    SandboxYear,
)


@dataclass
class SandboxCompany:
    """All data of the sandbox tenant. Mutable: ``POST /3/vouchers`` appends to ``vouchers``."""

    name: str
    org_number: str
    database_number: int
    years: list[SandboxYear]
    accounts: dict[int, SandboxAccount]
    series: list[SandboxSeries]
    opening_balances: dict[int, Decimal]
    """IB of the first year (balance-sheet accounts)."""
    vouchers: list[SandboxVoucher] = field(default_factory=list)
    invoices: list[SandboxInvoice] = field(default_factory=list)
    invoice_payments: list[SandboxPayment] = field(default_factory=list)
    supplier_invoices: list[SandboxInvoice] = field(default_factory=list)
    supplier_payments: list[SandboxPayment] = field(default_factory=list)
    locked_until: dt.date | None = None
    address: str = "Storgatan 12"
    zip_code: str = "753 20"
    city: str = "Uppsala"
    # the last number per (year, series), kept by add_voucher (generation is O(n), not O(n^2))
    _last_numbers: dict[tuple[int, str], int] = field(default_factory=dict, repr=False, compare=False)
    _numbered: int = field(default=0, repr=False, compare=False)
    # payments by invoice number, per ledger (supplier or not), with the count they were built from
    _payment_index: dict[bool, tuple[int, dict[str, list[SandboxPayment]]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    # -- lookups ----------------------------------------------------------------------------------

    def year(self, year_id: int) -> SandboxYear | None:
        return next((y for y in self.years if y.id == year_id), None)

    def year_for(self, day: dt.date) -> SandboxYear | None:
        return next((y for y in self.years if y.contains(day)), None)

    @property
    def current_year(self) -> SandboxYear:
        return self.years[-1]

    def series_for(self, code: str) -> SandboxSeries | None:
        return next((s for s in self.series if s.code == code), None)

    def next_number(self, year_id: int, series: str) -> int:
        if self._numbered != len(self.vouchers):  # vouchers appended without add_voucher: recount
            self._last_numbers.clear()
            for v in self.vouchers:
                key = (v.year_id, v.series)
                self._last_numbers[key] = max(self._last_numbers.get(key, 0), v.number)
            self._numbered = len(self.vouchers)
        return self._last_numbers.get((year_id, series), 0) + 1

    def add_voucher(
        self,
        series: str,
        day: dt.date,
        description: str,
        rows: list[SandboxRow],
        *,
        reference_type: str = "MANUAL",
        reference_number: str = "",
    ) -> SandboxVoucher:
        year = self.year_for(day)
        if year is None:
            raise ValueError(f"no financial year for {day}")
        voucher = SandboxVoucher(
            series, self.next_number(year.id, series), year.id, day, description, rows, reference_type,
            reference_number,
        )  # fmt: skip
        self.vouchers.append(voucher)
        if self._numbered == len(self.vouchers) - 1:
            key = (voucher.year_id, voucher.series)
            self._last_numbers[key] = max(self._last_numbers.get(key, 0), voucher.number)
            self._numbered += 1
        return voucher

    def payments_of(self, invoice: SandboxInvoice) -> list[SandboxPayment]:
        payments = self.supplier_payments if invoice.supplier else self.invoice_payments
        counted, index = self._payment_index.get(invoice.supplier, (-1, {}))
        if counted != len(payments):  # payments are appended: index them again (O(n) per change)
            index = defaultdict(list)
            for p in payments:
                index[p.invoice_number].append(p)
            self._payment_index[invoice.supplier] = (len(payments), index)
        return list(index.get(invoice.number, ()))

    def balance_of(self, invoice: SandboxInvoice) -> Decimal:
        """Today's balance (all payments, whatever their date)."""
        return invoice.total - sum((p.amount for p in self.payments_of(invoice)), Decimal(0))

    def final_pay_date(self, invoice: SandboxInvoice) -> dt.date | None:
        payments = sorted(self.payments_of(invoice), key=lambda p: p.payment_date)
        if invoice.cancelled or not payments or self.balance_of(invoice) != 0:
            return None
        return payments[-1].payment_date

    # -- balances ---------------------------------------------------------------------------------

    def balances(self, year_id: int) -> tuple[dict[int, Decimal], dict[int, Decimal], dict[int, Decimal]]:
        """``(IB, UB, RES)`` of a year: balance-sheet opening and closing balances, P&L results."""
        ib: dict[int, Decimal] = dict(self.opening_balances)
        for year in self.years:
            changes: dict[int, Decimal] = defaultdict(Decimal)
            for voucher in self.vouchers:
                if voucher.year_id == year.id:
                    for row in voucher.rows:
                        changes[row.account] += row.amount
            ub = {n: ib.get(n, Decimal(0)) + changes.get(n, Decimal(0)) for n in {*ib, *changes} if n < 3000}
            res = {n: amount for n, amount in changes.items() if n >= 3000}
            if year.id == year_id:
                return ib, ub, res
            ib = ub
        raise KeyError(year_id)

    def ledger_balance(self, account: int, at: dt.date) -> Decimal:
        """The balance of a balance-sheet account after every voucher dated on or before ``at``."""
        total = self.opening_balances.get(account, Decimal(0))
        for voucher in self.vouchers:
            if voucher.date <= at:
                total += sum((r.amount for r in voucher.rows if r.account == account), Decimal(0))
        return total

    # -- SIE --------------------------------------------------------------------------------------

    def to_sie(self, year_id: int, *, generated: dt.date | None = None) -> sie.SieDocument:
        """The SIE 4E document Fortnox would export for one financial year (plus the previous one)."""
        year = self.year(year_id)
        if year is None:
            raise KeyError(year_id)
        index = {year.id: 0}
        previous = [y for y in self.years if y.to_date < year.from_date]
        if previous:
            index[previous[-1].id] = -1
        document = sie.SieDocument(
            program="Fortnox",
            program_version="3.57.11",
            company_name=self.name,
            org_number=self.org_number,
            company_id=str(self.database_number),
            generated=generated or dt.date.today(),
            chart_type="BAS2014",
            currency="SEK",
            balances_until=year.to_date,
            address=sie.Address(
                contact=self.name, street=self.address, postal=f"{self.zip_code} {self.city}"
            ),
        )
        for year_entry_id, idx in sorted(index.items(), key=lambda item: -item[1]):
            entry = self.year(year_entry_id)
            assert entry is not None
            document.financial_years.append(sie.FinancialYear(idx, entry.from_date, entry.to_date))
            ib, ub, res = self.balances(year_entry_id)
            document.opening_balances += [sie.Balance(idx, str(n), a) for n, a in sorted(ib.items()) if a]
            document.closing_balances += [sie.Balance(idx, str(n), a) for n, a in sorted(ub.items()) if a]
            document.results += [sie.Balance(idx, str(n), a) for n, a in sorted(res.items()) if a]
        document.accounts = {
            str(n): sie.Account(str(n), a.description, type=_ktyp(n), sru=a.sru or None)
            for n, a in sorted(self.accounts.items())
        }
        for voucher in sorted(
            (v for v in self.vouchers if v.year_id == year.id), key=lambda v: (v.series, v.number)
        ):
            document.vouchers.append(
                sie.Voucher(
                    series=voucher.series,
                    number=str(voucher.number),
                    date=voucher.date,
                    text=_pc8(voucher.description),
                    registration_date=voucher.date,
                    rows=[sie.VoucherRow(str(r.account), r.amount, text=_pc8(r.text)) for r in voucher.rows],
                )
            )
        return document

    # -- generation -------------------------------------------------------------------------------

    @classmethod
    def generate(cls, *, seed: int = 0, vouchers: int = 200, year: int = 2025) -> SandboxCompany:
        """A company with about ``vouchers`` vouchers in financial year ``year`` (at least ~120)."""
        return generate_company(cls, seed=seed, vouchers=vouchers, year=year)


def _pc8(text: str) -> str:
    """Text the SIE writer can encode: characters outside code page 437 become ``?`` (as in Fortnox)."""
    return text.encode("cp437", "replace").decode("cp437").replace("\r", " ").replace("\n", " ")


def _ktyp(number: int) -> str:
    if number < 2000:
        return "T"
    if number < 3000:
        return "S"
    if number < 4000 or 8300 <= number < 8400:
        return "I"
    return "K"


__all__ = ["SandboxCompany"]  # the records it holds: ledgerlink.sandbox.fortnox_records
