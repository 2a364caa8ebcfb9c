"""Makes up the sandbox Fortnox's company (:class:`~ledgerlink.sandbox.fortnox_data.SandboxCompany`):
customers, suppliers, a BAS chart, invoices with payments settled in realistic ways (some after the
year end), and the vouchers that book all of it, numbered per series and year in date order."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledgerlink.money import round_to_ore
from ledgerlink.sandbox.fortnox_records import (
    VAT_RATE,
    SandboxAccount,
    SandboxInvoice,
    SandboxPayment,
    SandboxRow,
    SandboxSeries,
    SandboxYear,
)

if TYPE_CHECKING:  # the company's module builds through this one
    from ledgerlink.sandbox.fortnox_data import SandboxCompany

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


class Generator:
    """Builds the company in date order; numbers are assigned per series and year as Fortnox does."""

    def __init__(
        self, company_type: type[SandboxCompany], rng: random.Random, target: int, year: int
    ) -> None:
        self.rng = rng
        self.target = target
        self.y = year
        prev, cur = year - 1, year
        self.company = company_type(
            name="Sandlådan Bygg & Konsult AB",
            org_number="556677-8899",
            database_number=1234567,
            years=[
                SandboxYear(1, dt.date(prev, 1, 1), dt.date(prev, 12, 31)),
                SandboxYear(2, dt.date(cur, 1, 1), dt.date(cur, 12, 31)),
            ],
            accounts={n: SandboxAccount(n, d, sru) for n, d, sru in _ACCOUNTS},
            series=list(_SERIES),
            opening_balances={
                1930: round_to_ore(250000),
                2081: round_to_ore(-50000),
                2091: round_to_ore(-200000),
            },
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
        return round_to_ore(self.rng.randrange(low, high, step))

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
        invoice = _invoice(
            str(1001 + len(self.company.invoices)),
            (number, name),
            day,
            net,
            booked=booked and not cancelled,
            cancelled=cancelled,
            credit_reference=credit_reference,
        )
        vat = invoice.vat
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
        self.payment(invoice, day, amount, customer=True)

    def supplier_payment(self, invoice: SandboxInvoice, day: dt.date, amount: Decimal) -> None:
        self.payment(invoice, day, amount, customer=False)

    def payment(self, invoice: SandboxInvoice, day: dt.date, amount: Decimal, *, customer: bool) -> None:
        """A payment of ``invoice`` (negative: a refund of a credit), booked between the bank (1930) and
        the receivable (1510, series C) or the payable (2440, series E)."""
        payments = self.company.invoice_payments if customer else self.company.supplier_payments
        payment = SandboxPayment(str(len(payments) + 1), invoice.number, day, amount)
        payments.append(payment)
        a = abs(amount)
        into, out_of = (1930, 1510) if customer else (2440, 1930)  # the debit and credit of a payment
        rows = (
            [SandboxRow(into, debit=a), SandboxRow(out_of, credit=a)]
            if amount > 0
            else [SandboxRow(out_of, debit=a), SandboxRow(into, credit=a)]
        )
        if customer:
            text, series, ref = f"Inbetalning faktura {invoice.number}", "C", "INVOICEPAYMENT"
        else:
            text, series, ref = f"Betalning leverantörsfaktura {invoice.number}", "E", "SUPPLIERPAYMENT"
        self.book(series, day, f"{text}, {invoice.counterparty_name}", rows, ref, invoice.number, payment)

    def supplier_invoice(
        self, day: dt.date, net: Decimal, supplier: tuple[str, str, int] | None = None
    ) -> SandboxInvoice:
        number, name, cost_account = supplier or self.rng.choice(_SUPPLIERS[:4])
        external_number = f"{self.rng.randint(10000, 99999)}"
        invoice = _invoice(
            str(501 + len(self.company.supplier_invoices)),
            (number, name),
            day,
            net,
            supplier=True,
            external_number=external_number,
        )
        vat = invoice.vat
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

    def settle(self, invoice: SandboxInvoice, *, customer: bool, year_end: dt.date) -> None:
        """Pay an invoice in one of several realistic ways, some of them after ``year_end``."""
        pay = self.customer_payment if customer else self.supplier_payment
        roll = self.rng.random()
        late = invoice.due_date + dt.timedelta(days=self.rng.randint(-10, 15))
        if roll < 0.08:
            return  # never paid (still open today)
        if roll < 0.20:
            half = round_to_ore(invoice.total / 2)
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
                rent_invoice = self.supplier_invoice(first, round_to_ore(12000), rent)
                self.supplier_payment(rent_invoice, rent_invoice.due_date, rent_invoice.total)
                self.book("A", dt.date(y, month, 25), f"Lön {first:%Y-%m}", [
                    SandboxRow(7010, debit=round_to_ore(35000)), SandboxRow(2710, credit=round_to_ore(10500)),
                    SandboxRow(1930, credit=round_to_ore(24500)),
                ])  # fmt: skip
                self.book("A", dt.date(y, month, 25), f"Arbetsgivaravgifter {first:%Y-%m}", [
                    SandboxRow(7510, debit=round_to_ore("10997.00")), SandboxRow(2730, credit=round_to_ore("10997.00")),
                ])  # fmt: skip
                tax_day = dt.date(y + (month == 12), month % 12 + 1, 12)
                self.book("A", tax_day, f"Skatter och avgifter {first:%Y-%m}", [
                    SandboxRow(2710, debit=round_to_ore(10500)), SandboxRow(2730, debit=round_to_ore("10997.00")),
                    SandboxRow(1930, credit=round_to_ore("21497.00")),
                ])  # fmt: skip
                self.book("A", dt.date(y, month, 28), "Bankavgift", [
                    SandboxRow(6570, debit=round_to_ore(150)), SandboxRow(1930, credit=round_to_ore(150)),
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
        straddling = self.customer_invoice(
            dt.date(self.y - 1, 12, 20), round_to_ore(18000), customer=_CUSTOMERS[0]
        )
        self.customer_payment(straddling, dt.date(self.y, 1, 15), straddling.total)
        supplier_straddling = self.supplier_invoice(
            dt.date(self.y - 1, 12, 18), round_to_ore(6400), _SUPPLIERS[2]
        )
        self.supplier_payment(supplier_straddling, dt.date(self.y, 1, 17), supplier_straddling.total)

        # Year-end edge cases in the current year.
        original = self.customer_invoice(dt.date(self.y, 12, 5), round_to_ore(32000), customer=_CUSTOMERS[2])
        credit = self.customer_invoice(
            dt.date(self.y, 12, 15),
            round_to_ore(-8000),
            customer=_CUSTOMERS[2],
            credit_reference=original.number,
        )
        offset_day = dt.date(self.y + 1, 1, 10)
        self.customer_payment(original, offset_day, original.total)
        self.customer_payment(credit, offset_day, credit.total)
        cancelled = self.customer_invoice(dt.date(self.y, 11, 20), round_to_ore(5000), cancelled=True)
        assert cancelled.cancelled
        self.customer_invoice(dt.date(self.y, 12, 28), round_to_ore(7000), booked=False)
        supplier_credit = self.supplier_invoice(dt.date(self.y, 12, 20), round_to_ore(-2000), _SUPPLIERS[0])
        self.supplier_payment(supplier_credit, dt.date(self.y + 1, 1, 15), supplier_credit.total)

        # Card purchases fill the current year up to the target.
        in_year = sum(1 for p in self.pending if p[0].year == self.y)
        while in_year < self.target - 9:  # + closing vouchers
            booked = len(self.pending)
            day = self.day_in(dt.date(self.y, 1, 2), dt.date(self.y, 12, 30))
            account = self.rng.choice([5410, 6110, 6212, 4010])
            net = self.amount(100, 5000, 10)
            self.book("A", day, f"Kortköp {self.company.accounts[account].description.lower()}", [
                SandboxRow(account, debit=net), SandboxRow(2640, debit=round_to_ore(net * VAT_RATE)),
                SandboxRow(1930, credit=net + round_to_ore(net * VAT_RATE)),
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


def generate_company(
    company_type: type[SandboxCompany], *, seed: int = 0, vouchers: int = 200, year: int = 2025
) -> SandboxCompany:
    """A ``company_type`` with about ``vouchers`` vouchers in financial year ``year`` (at least ~120)."""
    return Generator(company_type, random.Random(seed), vouchers, year).build()


__all__ = ["Generator", "generate_company"]


def _invoice(
    number: str, counterparty: tuple[str, str], day: dt.date, net: Decimal, **kind: Any
) -> SandboxInvoice:
    """An invoice of ``net`` plus VAT, due in 30 days; ``kind`` holds what is a customer's or a supplier's."""
    vat = round_to_ore(net * VAT_RATE)
    return SandboxInvoice(
        number=number,
        counterparty_number=counterparty[0],
        counterparty_name=counterparty[1],
        invoice_date=day,
        due_date=day + dt.timedelta(days=30),
        total=net + vat,
        vat=vat,
        **kind,
    )
