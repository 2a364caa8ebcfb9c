"""Typed views of Fortnox API v3 resources, parsed defensively.

Fortnox is inconsistent about types (amounts as numbers or strings, ids as strings or ints, ``""`` for
zero or missing) and about key casing. The parsers here accept all of that: amounts become ``Decimal``
without ever passing through ``float``, ids become ``str``, dates ``datetime.date`` (Fortnox dates are
Swedish calendar dates already).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerlink.fortnox.errors import FortnoxError
from ledgerlink.money import round_to_ore


class FortnoxParseError(FortnoxError):
    """A response did not have the shape this client expects."""


# -- parsing helpers ------------------------------------------------------------------------------


def get_ci(obj: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``obj[key]`` with a case-insensitive fallback (``ErrorInformation`` vs ``errorinformation``)."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for name, value in obj.items():
        if name.lower() == lowered:
            return value
    return default


def parse_decimal(value: Any, *, default: Decimal | None = Decimal(0)) -> Decimal:
    """An amount from Fortnox JSON: Decimal, int, numeric string, ``""`` or None (-> ``default``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if default is None:
            raise FortnoxParseError("missing amount")
        return default
    if isinstance(value, bool):
        raise FortnoxParseError(f"not an amount: {value!r}")
    if isinstance(value, float):  # only if a caller bypassed parse_float=Decimal; keep the shortest repr
        value = repr(value)
    try:
        amount = Decimal(str(value).strip().replace(" ", "").replace(",", "."))
    except InvalidOperation as exc:
        raise FortnoxParseError(f"not an amount: {str(value)[:40]!r}") from exc
    if not amount.is_finite():
        raise FortnoxParseError("amount is not finite")
    return amount


def parse_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError as exc:
        raise FortnoxParseError(f"not a date: {str(value)[:40]!r}") from exc


def require_date(value: Any, what: str) -> dt.date:
    parsed = parse_date(value)
    if parsed is None:
        raise FortnoxParseError(f"missing date {what}")
    return parsed


def parse_id(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value).strip()


def parse_int(value: Any, default: int = 0) -> int:
    if value in (None, ""):
        return default
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise FortnoxParseError(f"not an integer: {str(value)[:40]!r}") from exc


def parse_optional_int(value: Any) -> int | None:
    """An integer, or None when Fortnox sent none (``null`` or ``""``)."""
    return None if value in (None, "") else parse_int(value)


def parse_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# -- resources ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompanyInformation:
    company_name: str
    organization_number: str
    database_number: str
    address: str = ""
    zip_code: str = ""
    city: str = ""
    country_code: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CompanyInformation:
        return cls(
            company_name=str(get_ci(data, "CompanyName", "") or ""),
            organization_number=str(
                get_ci(data, "OrganizationNumber", None) or get_ci(data, "OrganisationNumber", "") or ""
            ),
            database_number=parse_id(get_ci(data, "DatabaseNumber")),
            address=str(get_ci(data, "Address", "") or ""),
            zip_code=str(get_ci(data, "ZipCode", "") or ""),
            city=str(get_ci(data, "City", "") or ""),
            country_code=str(get_ci(data, "CountryCode", "") or ""),
        )


@dataclass(frozen=True, slots=True)
class FinancialYear:
    id: int
    from_date: dt.date
    to_date: dt.date
    accounting_method: str = "ACCRUAL"
    account_chart_type: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FinancialYear:
        return cls(
            id=parse_int(get_ci(data, "Id")),
            from_date=require_date(get_ci(data, "FromDate"), "FromDate"),
            to_date=require_date(get_ci(data, "ToDate"), "ToDate"),
            accounting_method=str(get_ci(data, "AccountingMethod", "") or "ACCRUAL"),
            account_chart_type=str(get_ci(data, "AccountChartType", "") or ""),
        )

    def contains(self, day: dt.date) -> bool:
        return self.from_date <= day <= self.to_date


@dataclass(frozen=True, slots=True)
class Account:
    number: int
    description: str
    active: bool = True
    balance_brought_forward: Decimal = Decimal(0)
    balance_carried_forward: Decimal = Decimal(0)
    sru: str = ""
    vat_code: str = ""
    year: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        return cls(
            number=parse_int(get_ci(data, "Number")),
            description=str(get_ci(data, "Description", "") or ""),
            active=parse_bool(get_ci(data, "Active", True)),
            balance_brought_forward=parse_decimal(get_ci(data, "BalanceBroughtForward")),
            balance_carried_forward=parse_decimal(get_ci(data, "BalanceCarriedForward")),
            sru=parse_id(get_ci(data, "SRU")),
            vat_code=parse_id(get_ci(data, "VATCode")),
            year=parse_optional_int(get_ci(data, "Year")),
        )


@dataclass(frozen=True, slots=True)
class VoucherSeries:
    code: str
    description: str
    manual: bool
    next_voucher_number: int | None = None
    year: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VoucherSeries:
        return cls(
            code=str(get_ci(data, "Code", "")),
            description=str(get_ci(data, "Description", "") or ""),
            manual=parse_bool(get_ci(data, "Manual", False)),
            next_voucher_number=parse_optional_int(get_ci(data, "NextVoucherNumber")),
            year=parse_optional_int(get_ci(data, "Year")),
        )


def _invoice_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """What customer and supplier invoices carry alike: dates, amounts, booked, credit, currency."""
    return {
        "invoice_date": require_date(get_ci(data, "InvoiceDate"), "InvoiceDate"),
        "due_date": parse_date(get_ci(data, "DueDate")),
        "total": parse_decimal(get_ci(data, "Total")),
        "balance": parse_decimal(get_ci(data, "Balance")),
        "final_pay_date": parse_date(get_ci(data, "FinalPayDate")),
        "booked": parse_bool(get_ci(data, "Booked", False)),
        "credit": parse_bool(get_ci(data, "Credit", False)),
        "currency": str(get_ci(data, "Currency", "") or "SEK"),
    }


@dataclass(frozen=True, slots=True)
class Invoice:
    """A customer invoice (list item of ``/3/invoices``). ``credit`` marks a credit invoice."""

    document_number: str
    customer_number: str
    customer_name: str
    invoice_date: dt.date
    due_date: dt.date | None
    total: Decimal
    balance: Decimal
    final_pay_date: dt.date | None = None
    booked: bool = True
    cancelled: bool = False
    credit: bool = False
    currency: str = "SEK"
    voucher_series: str = ""
    voucher_number: str = ""
    voucher_year: str = ""

    @property
    def counterparty(self) -> str:
        return self.customer_name

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Invoice:
        return cls(
            document_number=parse_id(get_ci(data, "DocumentNumber")),
            customer_number=parse_id(get_ci(data, "CustomerNumber")),
            customer_name=str(get_ci(data, "CustomerName", "") or ""),
            cancelled=parse_bool(get_ci(data, "Cancelled", False)),
            **_invoice_fields(data),
            voucher_series=parse_id(get_ci(data, "VoucherSeries")),
            voucher_number=parse_id(get_ci(data, "VoucherNumber")),
            voucher_year=parse_id(get_ci(data, "VoucherYear")),
        )


@dataclass(frozen=True, slots=True)
class SupplierInvoice:
    """A supplier invoice. ``given_number`` is Fortnox's own number (what payments refer to)."""

    given_number: str
    invoice_number: str
    supplier_number: str
    supplier_name: str
    invoice_date: dt.date
    due_date: dt.date | None
    total: Decimal
    balance: Decimal
    final_pay_date: dt.date | None = None
    booked: bool = True
    cancelled: bool = False
    credit: bool = False
    currency: str = "SEK"

    @property
    def document_number(self) -> str:
        return self.given_number

    @property
    def counterparty(self) -> str:
        return self.supplier_name

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SupplierInvoice:
        cancelled = parse_bool(get_ci(data, "Cancelled", False)) or parse_bool(get_ci(data, "Cancel", False))
        return cls(
            given_number=parse_id(get_ci(data, "GivenNumber")),
            invoice_number=parse_id(get_ci(data, "InvoiceNumber")),
            supplier_number=parse_id(get_ci(data, "SupplierNumber")),
            supplier_name=str(get_ci(data, "SupplierName", "") or ""),
            cancelled=cancelled,
            **_invoice_fields(data),
        )


@dataclass(frozen=True, slots=True)
class Payment:
    """An invoice payment or supplier invoice payment.

    ``invoice_number`` is the customer invoice's DocumentNumber, or the supplier invoice's GivenNumber.
    ``write_offs`` is the sum of the payment's ``WriteOffs`` amounts (they reduce the balance too).
    """

    number: str
    invoice_number: str
    payment_date: dt.date
    amount: Decimal
    write_offs: Decimal = Decimal(0)
    booked: bool = True

    @property
    def settled(self) -> Decimal:
        return self.amount + self.write_offs

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Payment:
        write_offs = get_ci(data, "WriteOffs") or []
        return cls(
            number=parse_id(get_ci(data, "Number")),
            invoice_number=parse_id(get_ci(data, "InvoiceNumber")),
            payment_date=require_date(get_ci(data, "PaymentDate"), "PaymentDate"),
            amount=parse_decimal(get_ci(data, "Amount")),
            write_offs=sum(
                (parse_decimal(get_ci(w, "Amount")) for w in write_offs if isinstance(w, Mapping)),
                Decimal(0),
            ),
            booked=parse_bool(get_ci(data, "Booked", True)),
        )


@dataclass(frozen=True, slots=True)
class VoucherRow:
    account: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    description: str = ""
    transaction_information: str = ""
    removed: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VoucherRow:
        return cls(
            account=parse_int(get_ci(data, "Account")),
            debit=parse_decimal(get_ci(data, "Debit")),
            credit=parse_decimal(get_ci(data, "Credit")),
            description=str(get_ci(data, "Description", "") or ""),
            transaction_information=str(get_ci(data, "TransactionInformation", "") or ""),
            removed=parse_bool(get_ci(data, "Removed", False)),
        )


@dataclass(frozen=True, slots=True)
class Voucher:
    """A voucher. ``rows`` is empty in list responses (Fortnox only returns rows for a single voucher)."""

    series: str
    number: int
    year: int
    transaction_date: dt.date
    description: str = ""
    reference_type: str = ""
    reference_number: str = ""
    rows: tuple[VoucherRow, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Voucher:
        rows = get_ci(data, "VoucherRows") or []
        return cls(
            series=str(get_ci(data, "VoucherSeries", "")),
            number=parse_int(get_ci(data, "VoucherNumber")),
            year=parse_int(get_ci(data, "Year")),
            transaction_date=require_date(get_ci(data, "TransactionDate"), "TransactionDate"),
            description=str(get_ci(data, "Description", "") or ""),
            reference_type=str(get_ci(data, "ReferenceType", "") or ""),
            reference_number=parse_id(get_ci(data, "ReferenceNumber")),
            rows=tuple(VoucherRow.from_json(r) for r in rows if isinstance(r, Mapping)),
        )


@dataclass(frozen=True, slots=True)
class VoucherDraftRow:
    account: int
    debit: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    transaction_information: str = ""


@dataclass(frozen=True, slots=True)
class VoucherDraft:
    """A voucher to create (``POST /3/vouchers``)."""

    series: str
    transaction_date: dt.date
    description: str
    rows: tuple[VoucherDraftRow, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        """The request body; amounts stay ``Decimal`` (quantised to öre) for the JSON encoder to emit."""
        rows: list[dict[str, Any]] = []
        for row in self.rows:
            item: dict[str, Any] = {
                "Account": row.account,
                "Debit": round_to_ore(row.debit),
                "Credit": round_to_ore(row.credit),
            }
            if row.transaction_information:
                item["TransactionInformation"] = row.transaction_information[:100]
            rows.append(item)
        return {
            "Voucher": {
                "VoucherSeries": self.series,
                "TransactionDate": self.transaction_date.isoformat(),
                "Description": self.description[:200],
                "VoucherRows": rows,
            }
        }


@dataclass(frozen=True, slots=True)
class CreatedVoucher:
    series: str
    number: int
    year: int


__all__ = [
    "Account",
    "CompanyInformation",
    "CreatedVoucher",
    "FinancialYear",
    "FortnoxParseError",
    "Invoice",
    "Payment",
    "SupplierInvoice",
    "Voucher",
    "VoucherDraft",
    "VoucherDraftRow",
    "VoucherRow",
    "VoucherSeries",
    "get_ci",
    "parse_date",
    "parse_decimal",
]
