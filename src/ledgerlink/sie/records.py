"""The SIE reader's records by family: the limits it enforces, the header (company, years, format),
the chart (accounts, dimensions, objects) and the balances. Mixins of :class:`SieReader`, which owns the
state they fill: ``document``, ``diagnostics``, ``_limits`` and ``_known_accounts``."""

from __future__ import annotations

from decimal import Decimal

from ledgerlink.sie.fields import (
    FieldError,
    object_list,
    opt,
    opt_amount,
    text_field,
    to_amount,
    to_date,
    to_int,
)
from ledgerlink.sie.limits import SieLimits
from ledgerlink.sie.model import (
    Account,
    Address,
    Balance,
    Dimension,
    FinancialYear,
    ObjectBalance,
    PeriodBalance,
    ReadDiagnostics,
    SieDocument,
    SieObject,
    Voucher,
    VoucherRow,
)
from ledgerlink.sie.tokens import ObjectList, parse_objects


class _ReaderState:
    document: SieDocument
    diagnostics: ReadDiagnostics
    _limits: SieLimits | None
    _known_accounts: set[str]


class LimitChecks(_ReaderState):
    """What an untrusted file may hold (see :class:`SieLimits`); a breach is a ``FieldError``."""

    def _check_account(self, number: str) -> None:
        """An account within the id length, and within the number of distinct accounts."""
        if number in self._known_accounts:
            return
        limits = self._limits
        assert limits is not None
        if limits.max_id_length is not None and len(number) > limits.max_id_length:
            raise FieldError(f"an account number longer than {limits.max_id_length} characters")
        self._known_accounts.add(number)
        if limits.max_accounts is not None and len(self._known_accounts) > limits.max_accounts:
            raise FieldError(f"more than {limits.max_accounts} accounts")

    def _check_amount(self, amount: Decimal) -> None:
        digits = self._limits.max_amount_digits if self._limits is not None else None
        if digits is not None and amount and amount.adjusted() >= digits:
            raise FieldError(f"an amount with more than {digits} digits before the decimal point")

    def _check_row(self, row: VoucherRow) -> None:
        if row.account not in self._known_accounts:
            self._check_account(row.account)
        self._check_amount(row.amount)
        if row.quantity is not None:
            self._check_amount(row.quantity)
        longest = self._limits.max_field_length if self._limits is not None else None
        if longest is not None and len(row.text) > longest:
            raise FieldError(f"a field longer than {longest} characters")

    def _check_voucher(self, voucher: Voucher) -> None:
        limits = self._limits
        assert limits is not None
        longest = limits.max_id_length
        if longest is not None and (len(voucher.series) > longest or len(voucher.number) > longest):
            raise FieldError(f"a voucher series or number longer than {longest} characters")
        if limits.max_field_length is not None and len(voucher.text) > limits.max_field_length:
            raise FieldError(f"a field longer than {limits.max_field_length} characters")

    def _check_fields(self, fields: list[str]) -> None:
        limits = self._limits
        longest = limits.max_field_length if limits is not None else None
        if longest is not None and any(len(f) > longest for f in fields):
            raise FieldError(f"a field longer than {longest} characters")


class HeaderRecords(_ReaderState):
    """``#FLAGGA`` ... ``#VALUTA``: who wrote the file, for which company and years."""

    def _flag(self, fields: list[str]) -> None:
        self.document.flag = to_int(fields[1])

    def _program(self, fields: list[str]) -> None:
        self.document.program = opt(fields, 1)
        self.document.program_version = opt(fields, 2)

    def _format(self, fields: list[str]) -> None:
        self.document.format = opt(fields, 1)

    def _generated(self, fields: list[str]) -> None:
        self.document.generated = to_date(fields[1])
        self.document.generated_by = opt(fields, 2)

    def _sie_type(self, fields: list[str]) -> None:
        value = fields[1]
        if value not in ("1", "2", "3", "4"):
            raise FieldError(f"unknown #SIETYP {value!r}")
        self.document.sie_type = value

    def _company_id(self, fields: list[str]) -> None:
        self.document.company_id = opt(fields, 1)

    def _company_name(self, fields: list[str]) -> None:
        self.document.company_name = opt(fields, 1)

    def _org_number(self, fields: list[str]) -> None:
        self.document.org_number = opt(fields, 1)

    def _company_type(self, fields: list[str]) -> None:
        self.document.company_type = opt(fields, 1)

    def _address(self, fields: list[str]) -> None:
        self.document.address = Address(opt(fields, 1), opt(fields, 2), opt(fields, 3), opt(fields, 4))

    def _financial_year(self, fields: list[str]) -> None:
        self.document.financial_years.append(
            FinancialYear(to_int(fields[1]), to_date(fields[2]), to_date(fields[3]))
        )

    def _tax_year(self, fields: list[str]) -> None:
        self.document.tax_year = to_int(fields[1])

    def _balances_until(self, fields: list[str]) -> None:
        self.document.balances_until = to_date(fields[1])

    def _chart_type(self, fields: list[str]) -> None:
        self.document.chart_type = opt(fields, 1)

    def _currency(self, fields: list[str]) -> None:
        self.document.currency = opt(fields, 1)


class ChartRecords(LimitChecks):
    """``#KONTO``, ``#KTYP``, ``#SRU``, ``#ENHET``, ``#DIM``, ``#UNDERDIM``, ``#OBJEKT``."""

    def _account_of(self, number: str) -> Account:
        account = self.document.accounts.get(number)
        if account is None:
            if self._limits is not None:
                self._check_account(number)
            account = self.document.accounts[number] = Account(number)
        return account

    def _account(self, fields: list[str]) -> None:
        self._account_of(text_field(fields[1])).name = opt(fields, 2)

    def _account_type(self, fields: list[str]) -> None:
        if len(fields) < 3:  # seen in a real export: "#KTYP DIFF"
            self.diagnostics.warnings.append(f"#KTYP {opt(fields, 1)} without a type ignored")
            return
        self._account_of(text_field(fields[1])).type = text_field(fields[2])

    def _account_sru(self, fields: list[str]) -> None:
        if len(fields) < 3:
            self.diagnostics.warnings.append(f"#SRU {opt(fields, 1)} without a code ignored")
            return
        self._account_of(text_field(fields[1])).sru = text_field(fields[2])

    def _account_unit(self, fields: list[str]) -> None:
        self._account_of(text_field(fields[1])).unit = opt(fields, 2)

    def _dimension(self, fields: list[str]) -> None:
        number = to_int(fields[1])
        self.document.dimensions[number] = Dimension(number, opt(fields, 2))

    def _sub_dimension(self, fields: list[str]) -> None:
        number = to_int(fields[1])
        self.document.dimensions[number] = Dimension(number, opt(fields, 2), to_int(fields[3]))

    def _object(self, fields: list[str]) -> None:
        self.document.objects.append(SieObject(to_int(fields[1]), text_field(fields[2]), opt(fields, 3)))


class BalanceRecords(LimitChecks):
    """``#IB``, ``#UB``, ``#RES``, ``#OIB``, ``#OUB``, ``#PSALDO``, ``#PBUDGET``."""

    def _balance(self, fields: list[str]) -> Balance:
        balance = Balance(
            to_int(fields[1]), text_field(fields[2]), to_amount(fields[3]), opt_amount(opt(fields, 4))
        )
        if self._limits is not None:
            self._check_account(balance.account)
            self._check_amount(balance.amount)
            if balance.quantity is not None:
                self._check_amount(balance.quantity)
        return balance

    def _opening_balance(self, fields: list[str]) -> None:
        self.document.opening_balances.append(self._balance(fields))

    def _closing_balance(self, fields: list[str]) -> None:
        self.document.closing_balances.append(self._balance(fields))

    def _result(self, fields: list[str]) -> None:
        self.document.results.append(self._balance(fields))

    def _object_balance(self, fields: list[str]) -> ObjectBalance:
        return ObjectBalance(
            to_int(fields[1]),
            text_field(fields[2]),
            object_list(fields[3]),
            to_amount(fields[4]),
            opt_amount(opt(fields, 5)),
        )

    def _object_opening_balance(self, fields: list[str]) -> None:
        self.document.object_opening_balances.append(self._object_balance(fields))

    def _object_closing_balance(self, fields: list[str]) -> None:
        self.document.object_closing_balances.append(self._object_balance(fields))

    def _period(self, fields: list[str]) -> PeriodBalance:
        period = fields[2]
        if len(period) != 6 or not (period.isascii() and period.isdigit()):
            raise FieldError(f"bad period {period!r} (expected YYYYMM)")
        account = text_field(fields[3])
        if type(fields[4]) is ObjectList:  # required by the standard, missing in some old exports
            objects, at = parse_objects(fields[4]), 5
        else:
            objects, at = (), 4
        return PeriodBalance(
            to_int(fields[1]),
            period,
            account,
            objects,
            to_amount(fields[at]),
            opt_amount(opt(fields, at + 1)),
        )

    def _period_balance(self, fields: list[str]) -> None:
        self.document.period_balances.append(self._period(fields))

    def _period_budget(self, fields: list[str]) -> None:
        self.document.period_budgets.append(self._period(fields))
