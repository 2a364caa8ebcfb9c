"""The sandbox Fortnox's company: a deterministic, realistic Swedish limited company.

``SandboxCompany.generate(seed=..., vouchers=N, year=2025)`` builds two financial years (``year - 1``
and ``year``), a BAS chart, the usual Fortnox voucher series, customer and supplier invoices with
payments, and the vouchers that book all of it. Everything ties together: the ledger balance of 1510
(kundfordringar) and 2440 (leverantörsskulder) at each year end equals the open invoices at that date,
reconstructed from invoices and payments (some paid after the year end, some partly paid, some never,
a credit invoice on each side; a cancelled and an unbooked invoice that must not count).

Payments dated after the last financial year have no vouchers (that year does not exist yet).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from ledgerlink import sie
from ledgerlink.money import round_to_ore as _money

VAT_RATE = Decimal("0.25")


@dataclass(slots=True)
class SandboxYear:
    id: int
    from_date: dt.date
    to_date: dt.date
    accounting_method: str = "ACCRUAL"

    def contains(self, day: dt.date) -> bool:
        return self.from_date <= day <= self.to_date


@dataclass(slots=True)
class SandboxAccount:
    number: int
    description: str
    sru: str = ""
    inactive_in: set[int] = field(default_factory=set)
    """Financial-year ids where the account exists but is not active."""

    def active_in(self, year_id: int) -> bool:
        return year_id not in self.inactive_in

    @property
    def is_balance_account(self) -> bool:
        return self.number < 3000


@dataclass(slots=True)
class SandboxSeries:
    code: str
    description: str
    manual: bool


@dataclass(slots=True)
class SandboxRow:
    account: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    text: str = ""

    @property
    def amount(self) -> Decimal:
        return self.debit - self.credit


@dataclass(slots=True)
class SandboxVoucher:
    series: str
    number: int
    year_id: int
    date: dt.date
    description: str
    rows: list[SandboxRow]
    reference_type: str = "MANUAL"
    reference_number: str = ""


@dataclass(slots=True)
class SandboxInvoice:
    """A customer invoice (``supplier=False``) or a supplier invoice (``supplier=True``)."""

    number: str
    """DocumentNumber for customer invoices, GivenNumber for supplier invoices."""
    counterparty_number: str
    counterparty_name: str
    invoice_date: dt.date
    due_date: dt.date
    total: Decimal
    vat: Decimal
    supplier: bool = False
    booked: bool = True
    cancelled: bool = False
    credit_reference: str = ""
    external_number: str = ""
    """The supplier's own invoice number (supplier invoices)."""
    voucher: SandboxVoucher | None = None

    @property
    def credit(self) -> bool:
        return self.total < 0


@dataclass(slots=True)
class SandboxPayment:
    number: str
    invoice_number: str
    payment_date: dt.date
    amount: Decimal
    voucher: SandboxVoucher | None = None


_CUSTOMERS = [
    ("1", "Byggmästarna i Uppsala AB"),
    ("2", "Café Kanelbullen HB"),
    ("3", "Nordströms Fastigheter AB"),
    ("4", "Ekologiska Gården i Skåne AB"),
    ("5", "Tandläkare Öberg AB"),
    ("6", "Malmö Måleri & Tapet AB"),
    ("7", "Fjällstugan Åre AB"),
    ("8", "Göteborgs Hamnlogistik AB"),
]
_SUPPLIERS = [
    ("101", "Bygghandeln Syd AB", 4010),
    ("102", "Kontorsvaruhuset i Sverige AB", 6110),
    ("103", "Verktygsboden AB", 5410),
    ("104", "Telia Sverige AB", 6212),
    ("105", "Fastighets AB Ängen", 5010),
]
_ACCOUNTS: list[tuple[int, str, str]] = [
    (1220, "Inventarier och verktyg", "7215"),
    (1510, "Kundfordringar", "7251"),
    (1630, "Avräkning för skatter och avgifter (skattekonto)", "7261"),
    (1930, "Företagskonto/checkkonto/affärskonto", "7281"),
    (2081, "Aktiekapital", "7301"),
    (2091, "Balanserad vinst eller förlust", "7302"),
    (2099, "Årets resultat", "7302"),
    (2440, "Leverantörsskulder", "7365"),
    (2610, "Utgående moms, 25 %", "7369"),
    (2620, "Utgående moms, 12 %", "7369"),
    (2630, "Utgående moms, 6 %", "7369"),
    (2640, "Ingående moms", "7369"),
    (2650, "Redovisningskonto för moms", "7369"),
    (2710, "Personalskatt", "7369"),
    (2730, "Lagstadgade sociala avgifter och särskild löneskatt", "7369"),
    (3001, "Försäljning inom Sverige, 25 % moms", "7410"),
    (3740, "Öres- och kronutjämning", "7410"),
    (4010, "Inköp material och varor", "7511"),
    (5010, "Lokalhyra", "7513"),
    (5410, "Förbrukningsinventarier", "7513"),
    (6110, "Kontorsmateriel", "7513"),
    (6212, "Mobiltelefon", "7513"),
    (6570, "Bankkostnader", "7513"),
    (6991, "Övriga externa kostnader, ej avdragsgilla", "7513"),
    (7010, "Löner till kollektivanställda", "7514"),
    (7510, "Arbetsgivaravgifter 31,42 %", "7514"),
    (8310, "Ränteintäkter från omsättningstillgångar", "7417"),
    (8999, "Årets resultat", "7450"),
]
_SERIES = [
    SandboxSeries("A", "Bokföringsorder", True),
    SandboxSeries("B", "Kundfakturor", False),
    SandboxSeries("C", "Kundinbetalningar", False),
    SandboxSeries("D", "Leverantörsfakturor", False),
    SandboxSeries("E", "Leverantörsbetalningar", False),
    SandboxSeries("I", "Förra årets resultat", False),
    SandboxSeries("M", "Momsredovisning", True),
]


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
        return _Generator(random.Random(seed), vouchers, year).build()


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


class _Generator:
    """Builds the company in date order; numbers are assigned per series and year as Fortnox does."""

    def __init__(self, rng: random.Random, target: int, year: int) -> None:
        self.rng = rng
        self.target = target
        self.y = year
        prev, cur = year - 1, year
        self.company = SandboxCompany(
            name="Sandlådan Bygg & Konsult AB",
            org_number="556677-8899",
            database_number=1234567,
            years=[
                SandboxYear(1, dt.date(prev, 1, 1), dt.date(prev, 12, 31)),
                SandboxYear(2, dt.date(cur, 1, 1), dt.date(cur, 12, 31)),
            ],
            accounts={n: SandboxAccount(n, d, sru) for n, d, sru in _ACCOUNTS},
            series=list(_SERIES),
            opening_balances={1930: _money(250000), 2081: _money(-50000), 2091: _money(-200000)},
            locked_until=dt.date(prev, 12, 31),
        )
        self.company.accounts[6991].inactive_in = {1, 2}
        self.company.accounts[2620].inactive_in = {2}
        # Booking intents, sorted by date before numbering: (date, seq, series, text, rows, ref, target)
        self.pending: list[tuple[dt.date, int, str, str, list[SandboxRow], str, str, object]] = []
        self.seq = 0
        self.last_day = dt.date(cur, 12, 31)

    def book(
        self,
        series: str,
        day: dt.date,
        text: str,
        rows: list[SandboxRow],
        ref_type: str = "MANUAL",
        ref_number: str = "",
        target: object = None,
    ) -> None:
        if day > self.last_day:
            return  # that financial year does not exist in the sandbox
        self.seq += 1
        self.pending.append((day, self.seq, series, text, rows, ref_type, ref_number, target))

    def day_in(self, start: dt.date, end: dt.date) -> dt.date:
        return start + dt.timedelta(days=self.rng.randint(0, max(0, (end - start).days)))

    def amount(self, low: int, high: int, step: int = 100) -> Decimal:
        return _money(self.rng.randrange(low, high, step))

    # -- invoices ---------------------------------------------------------------------------------

    def customer_invoice(
        self,
        day: dt.date,
        net: Decimal,
        *,
        customer: tuple[str, str] | None = None,
        credit_reference: str = "",
        booked: bool = True,
        cancelled: bool = False,
    ) -> SandboxInvoice:
        number, name = customer or self.rng.choice(_CUSTOMERS)
        vat = _money(net * VAT_RATE)
        invoice = SandboxInvoice(
            number=str(1001 + len(self.company.invoices)),
            counterparty_number=number,
            counterparty_name=name,
            invoice_date=day,
            due_date=day + dt.timedelta(days=30),
            total=net + vat,
            vat=vat,
            booked=booked and not cancelled,
            cancelled=cancelled,
            credit_reference=credit_reference,
        )
        self.company.invoices.append(invoice)
        if invoice.booked:
            total, n, v = abs(invoice.total), abs(net), abs(vat)
            if invoice.credit:
                rows = [SandboxRow(1510, credit=total), SandboxRow(3001, debit=n), SandboxRow(2610, debit=v)]
            else:
                rows = [SandboxRow(1510, debit=total), SandboxRow(3001, credit=n), SandboxRow(2610, credit=v)]
            text = f"{'Kreditfaktura' if invoice.credit else 'Kundfaktura'} {invoice.number}, {name}"
            self.book("B", day, text, rows, "INVOICE", invoice.number, invoice)
        return invoice

    def customer_payment(self, invoice: SandboxInvoice, day: dt.date, amount: Decimal) -> None:
        payment = SandboxPayment(str(len(self.company.invoice_payments) + 1), invoice.number, day, amount)
        self.company.invoice_payments.append(payment)
        a = abs(amount)
        rows = (
            [SandboxRow(1930, debit=a), SandboxRow(1510, credit=a)]
            if amount > 0
            else [SandboxRow(1510, debit=a), SandboxRow(1930, credit=a)]
        )
        text = f"Inbetalning faktura {invoice.number}, {invoice.counterparty_name}"
        self.book("C", day, text, rows, "INVOICEPAYMENT", invoice.number, payment)

    def supplier_invoice(
        self, day: dt.date, net: Decimal, supplier: tuple[str, str, int] | None = None
    ) -> SandboxInvoice:
        number, name, cost_account = supplier or self.rng.choice(_SUPPLIERS[:4])
        vat = _money(net * VAT_RATE)
        invoice = SandboxInvoice(
            number=str(501 + len(self.company.supplier_invoices)),
            counterparty_number=number,
            counterparty_name=name,
            invoice_date=day,
            due_date=day + dt.timedelta(days=30),
            total=net + vat,
            vat=vat,
            supplier=True,
            external_number=f"{self.rng.randint(10000, 99999)}",
        )
        self.company.supplier_invoices.append(invoice)
        total, n, v = abs(invoice.total), abs(net), abs(vat)
        if invoice.credit:
            rows = [
                SandboxRow(2440, debit=total),
                SandboxRow(cost_account, credit=n),
                SandboxRow(2640, credit=v),
            ]
        else:
            rows = [
                SandboxRow(cost_account, debit=n),
                SandboxRow(2640, debit=v),
                SandboxRow(2440, credit=total),
            ]
        text = f"{'Leverantörskredit' if invoice.credit else 'Leverantörsfaktura'} {invoice.number}, {name}"
        self.book("D", day, text, rows, "SUPPLIERINVOICE", invoice.number, invoice)
        return invoice

    def supplier_payment(self, invoice: SandboxInvoice, day: dt.date, amount: Decimal) -> None:
        payment = SandboxPayment(str(len(self.company.supplier_payments) + 1), invoice.number, day, amount)
        self.company.supplier_payments.append(payment)
        a = abs(amount)
        rows = (
            [SandboxRow(2440, debit=a), SandboxRow(1930, credit=a)]
            if amount > 0
            else [SandboxRow(1930, debit=a), SandboxRow(2440, credit=a)]
        )
        text = f"Betalning leverantörsfaktura {invoice.number}, {invoice.counterparty_name}"
        self.book("E", day, text, rows, "SUPPLIERPAYMENT", invoice.number, payment)

    def settle(self, invoice: SandboxInvoice, *, customer: bool, year_end: dt.date) -> None:
        """Pay an invoice in one of several realistic ways, some of them after ``year_end``."""
        pay = self.customer_payment if customer else self.supplier_payment
        roll = self.rng.random()
        late = invoice.due_date + dt.timedelta(days=self.rng.randint(-10, 15))
        if roll < 0.08:
            return  # never paid (still open today)
        if roll < 0.20:
            half = _money(invoice.total / 2)
            pay(invoice, min(late, invoice.due_date), half)
            pay(invoice, late + dt.timedelta(days=self.rng.randint(20, 60)), invoice.total - half)
            return
        pay(invoice, max(late, invoice.invoice_date + dt.timedelta(days=3)), invoice.total)

    # -- the company ------------------------------------------------------------------------------

    def build(self) -> SandboxCompany:
        prev_end = dt.date(self.y - 1, 12, 31)
        year_end = dt.date(self.y, 12, 31)
        rent = next(s for s in _SUPPLIERS if s[2] == 5010)

        for y, end in ((self.y - 1, prev_end), (self.y, year_end)):
            months = range(1, 13) if y == self.y else range(9, 13)
            for month in months:
                first = dt.date(y, month, 1)
                rent_invoice = self.supplier_invoice(first, _money(12000), rent)
                self.supplier_payment(rent_invoice, rent_invoice.due_date, rent_invoice.total)
                self.book("A", dt.date(y, month, 25), f"Lön {first:%Y-%m}", [
                    SandboxRow(7010, debit=_money(35000)), SandboxRow(2710, credit=_money(10500)),
                    SandboxRow(1930, credit=_money(24500)),
                ])  # fmt: skip
                self.book("A", dt.date(y, month, 25), f"Arbetsgivaravgifter {first:%Y-%m}", [
                    SandboxRow(7510, debit=_money("10997.00")), SandboxRow(2730, credit=_money("10997.00")),
                ])  # fmt: skip
                tax_day = dt.date(y + (month == 12), month % 12 + 1, 12)
                self.book("A", tax_day, f"Skatter och avgifter {first:%Y-%m}", [
                    SandboxRow(2710, debit=_money(10500)), SandboxRow(2730, debit=_money("10997.00")),
                    SandboxRow(1930, credit=_money("21497.00")),
                ])  # fmt: skip
                self.book("A", dt.date(y, month, 28), "Bankavgift", [
                    SandboxRow(6570, debit=_money(150)), SandboxRow(1930, credit=_money(150)),
                ])  # fmt: skip
            start = dt.date(y, months[0], 1)
            n_customer = 4 if y < self.y else max(12, self.target // 6)
            n_supplier = 3 if y < self.y else max(8, self.target // 8)
            for _ in range(n_customer):
                invoice = self.customer_invoice(
                    self.day_in(start, end - dt.timedelta(days=3)), self.amount(4000, 90000)
                )
                self.settle(invoice, customer=True, year_end=end)
            for _ in range(n_supplier):
                invoice = self.supplier_invoice(
                    self.day_in(start, end - dt.timedelta(days=3)), self.amount(1000, 40000)
                )
                self.settle(invoice, customer=False, year_end=end)

        # Something is always open across the previous year end: paid in January.
        straddling = self.customer_invoice(dt.date(self.y - 1, 12, 20), _money(18000), customer=_CUSTOMERS[0])
        self.customer_payment(straddling, dt.date(self.y, 1, 15), straddling.total)
        supplier_straddling = self.supplier_invoice(dt.date(self.y - 1, 12, 18), _money(6400), _SUPPLIERS[2])
        self.supplier_payment(supplier_straddling, dt.date(self.y, 1, 17), supplier_straddling.total)

        # Year-end edge cases in the current year.
        original = self.customer_invoice(dt.date(self.y, 12, 5), _money(32000), customer=_CUSTOMERS[2])
        credit = self.customer_invoice(
            dt.date(self.y, 12, 15), _money(-8000), customer=_CUSTOMERS[2], credit_reference=original.number
        )
        offset_day = dt.date(self.y + 1, 1, 10)
        self.customer_payment(original, offset_day, original.total)
        self.customer_payment(credit, offset_day, credit.total)
        cancelled = self.customer_invoice(dt.date(self.y, 11, 20), _money(5000), cancelled=True)
        assert cancelled.cancelled
        self.customer_invoice(dt.date(self.y, 12, 28), _money(7000), booked=False)
        supplier_credit = self.supplier_invoice(dt.date(self.y, 12, 20), _money(-2000), _SUPPLIERS[0])
        self.supplier_payment(supplier_credit, dt.date(self.y + 1, 1, 15), supplier_credit.total)

        # Card purchases fill the current year up to the target.
        in_year = sum(1 for p in self.pending if p[0].year == self.y)
        while in_year < self.target - 9:  # + closing vouchers
            booked = len(self.pending)
            day = self.day_in(dt.date(self.y, 1, 2), dt.date(self.y, 12, 30))
            account = self.rng.choice([5410, 6110, 6212, 4010])
            net = self.amount(100, 5000, 10)
            self.book("A", day, f"Kortköp {self.company.accounts[account].description.lower()}", [
                SandboxRow(account, debit=net), SandboxRow(2640, debit=_money(net * VAT_RATE)),
                SandboxRow(1930, credit=net + _money(net * VAT_RATE)),
            ])  # fmt: skip
            in_year += len(self.pending) - booked
        self._vat_settlements()
        self._number_pending(up_to=prev_end)
        self._close_year(prev_end)
        self._number_pending()
        self.company.vouchers.sort(key=lambda v: (v.year_id, v.series, v.number))
        self._number_payments()
        return self.company

    def _number_payments(self) -> None:
        """Fortnox numbers a payment when it is registered: number the payments in date order, as a
        company registering them day by day gets (they were generated invoice by invoice)."""
        for payments in (self.company.invoice_payments, self.company.supplier_payments):
            payments.sort(key=lambda p: (p.payment_date, int(p.number)))
            for i, payment in enumerate(payments, start=1):
                payment.number = str(i)

    def _vat_settlements(self) -> None:
        for y in (self.y - 1, self.y):
            for quarter_end in (dt.date(y, 3, 31), dt.date(y, 6, 30), dt.date(y, 9, 30), dt.date(y, 12, 31)):
                quarter_start = dt.date(y, quarter_end.month - 2, 1)
                out = sum(
                    (r.credit - r.debit for p in self.pending if quarter_start <= p[0] <= quarter_end
                     for r in p[4] if r.account == 2610),
                    Decimal(0),
                )  # fmt: skip
                inp = sum(
                    (r.debit - r.credit for p in self.pending if quarter_start <= p[0] <= quarter_end
                     for r in p[4] if r.account == 2640),
                    Decimal(0),
                )  # fmt: skip
                if not out and not inp:
                    continue
                rows = [SandboxRow(2610, debit=out), SandboxRow(2640, credit=inp)]
                net = out - inp
                rows.append(SandboxRow(2650, credit=net) if net >= 0 else SandboxRow(2650, debit=-net))
                self.book(
                    "M", quarter_end, f"Momsredovisning {quarter_start:%Y-%m} - {quarter_end:%Y-%m}", rows
                )

    def _number_pending(self, *, up_to: dt.date | None = None) -> None:
        ready = sorted(
            (p for p in self.pending if up_to is None or p[0] <= up_to), key=lambda p: (p[0], p[1])
        )
        self.pending = [p for p in self.pending if up_to is not None and p[0] > up_to]
        for day, _, series, text, rows, ref_type, ref_number, target in ready:
            voucher = self.company.add_voucher(
                series, day, text, rows, reference_type=ref_type, reference_number=ref_number
            )
            if isinstance(target, SandboxInvoice | SandboxPayment):
                target.voucher = voucher

    def _close_year(self, prev_end: dt.date) -> None:
        """Book the previous year's result to 2099 and move it to 2091 on the first day of the next year."""
        prev = self.company.year_for(prev_end)
        assert prev is not None
        result = sum(
            (
                r.amount
                for v in self.company.vouchers
                if v.year_id == prev.id
                for r in v.rows
                if r.account >= 3000
            ),
            Decimal(0),
        )
        profit = -result
        rows = (
            [SandboxRow(8999, debit=profit), SandboxRow(2099, credit=profit)]
            if profit >= 0
            else [SandboxRow(2099, debit=-profit), SandboxRow(8999, credit=-profit)]
        )
        self.company.add_voucher("A", prev_end, "Årets resultat", rows)
        move = (
            [SandboxRow(2099, debit=profit), SandboxRow(2091, credit=profit)]
            if profit >= 0
            else [SandboxRow(2091, debit=-profit), SandboxRow(2099, credit=-profit)]
        )
        self.book("I", prev_end + dt.timedelta(days=1), "Omföring förra årets resultat", move)


__all__ = [
    "SandboxAccount",
    "SandboxCompany",
    "SandboxInvoice",
    "SandboxPayment",
    "SandboxRow",
    "SandboxSeries",
    "SandboxVoucher",
    "SandboxYear",
]
