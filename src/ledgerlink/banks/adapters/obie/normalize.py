"""Pure translation of OBIE v3.1 AIS payloads (OBReadAccount6, OBReadBalance1, OBReadTransaction6,
OBReadConsentResponse1) into the normalised DTOs. Every missing or odd field raises
``InvalidResponse`` naming the bank and the field, through the adapter's strict parsers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.parsing import PayloadReader

CONSENT_STATUSES: dict[str, base.ConsentStatus] = {
    "AwaitingAuthorisation": base.ConsentStatus.received,
    "Authorised": base.ConsentStatus.valid,
    "Rejected": base.ConsentStatus.rejected,
    "Revoked": base.ConsentStatus.revoked,
    "Expired": base.ConsentStatus.expired,  # not in v3.1 itself, sent by some banks
}

BOOKING_STATUSES: dict[str, base.BookingStatus] = {
    "Booked": base.BookingStatus.booked,
    "Pending": base.BookingStatus.pending,
}

# Nearest to "the booked balance" first (OBBalanceType1Code).
BALANCE_PREFERENCE = ("ClosingBooked", "InterimBooked", "Expected", "InterimAvailable", "ClosingAvailable")

ACCOUNT_TYPES: dict[str, base.AccountUsage] = {"Business": "business", "Personal": "private"}


def data_list(p: PayloadReader, body: Any, key: str) -> list[dict[str, Any]]:
    """``body.Data.<key>`` as a list of objects (absent or empty list = no items)."""
    data = p.require(body, "Data")
    if not isinstance(data, dict):
        p.fail("Data is not an object", "Data")
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        p.fail("not a list of objects", f"Data.{key}")
    return items


def parse_timestamp(p: PayloadReader, value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not value.strip():
        p.fail("missing timestamp", field)
    try:
        stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        p.fail(f"unparseable timestamp {value[:40]!r}", field)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def signed_amount(p: PayloadReader, obj: Any, field: str) -> tuple[Decimal, str]:
    """``Amount{Amount, Currency}`` + ``CreditDebitIndicator`` → signed Decimal (Debit is money out)."""
    amount_obj = p.require(obj, "Amount", f"{field}.Amount")
    value = p.parse_amount(
        p.require(amount_obj, "Amount", f"{field}.Amount.Amount"), f"{field}.Amount.Amount"
    )
    currency = p.require(amount_obj, "Currency", f"{field}.Amount.Currency")
    indicator = p.require(obj, "CreditDebitIndicator", f"{field}.CreditDebitIndicator")
    if indicator == "Credit":
        return abs(value), str(currency).upper()
    if indicator == "Debit":
        return -abs(value), str(currency).upper()
    p.fail(f"unknown indicator {str(indicator)[:20]!r}", f"{field}.CreditDebitIndicator")


def consent_info(p: PayloadReader, body: Any, *, now: dt.datetime) -> base.ConsentInfo:
    data = p.require(body, "Data")
    raw_status = p.require(data, "Status", "Data.Status")
    status = CONSENT_STATUSES.get(str(raw_status))
    if status is None:
        p.fail(f"unknown consent status {str(raw_status)[:40]!r}", "Data.Status")
    expires_raw = data.get("ExpirationDateTime")
    valid_until = None
    if expires_raw:
        expires = parse_timestamp(p, expires_raw, "Data.ExpirationDateTime")
        if status is base.ConsentStatus.valid and expires <= now:
            status = base.ConsentStatus.expired  # OBIE v3.1 keeps "Authorised" past expiry
        valid_until = p.parse_date(expires_raw, "Data.ExpirationDateTime")
    return base.ConsentInfo(status=status, valid_until=valid_until)


def account(p: PayloadReader, raw: dict[str, Any], index: int) -> base.BankAccountInfo:
    field = f"Data.Account[{index}]"
    account_id = p.require(raw, "AccountId", f"{field}.AccountId")
    currency = p.require(raw, "Currency", f"{field}.Currency")
    iban = bban = None
    name = raw.get("Nickname")
    identifiers = raw.get("Account") or []
    if isinstance(identifiers, dict):  # v3.0 sent one object, v3.1 a list
        identifiers = [identifiers]
    if not isinstance(identifiers, list):
        p.fail("not a list", f"{field}.Account")
    for ident in identifiers:
        if not isinstance(ident, dict):
            continue
        scheme = str(ident.get("SchemeName") or "")
        value = str(ident.get("Identification") or "").replace(" ", "") or None
        if scheme.endswith("IBAN") and iban is None:
            iban = value
        elif value and bban is None and scheme.endswith(("BBAN", "SortCodeAccountNumber")):
            bban = value
        name = name or ident.get("Name")
    return base.BankAccountInfo(
        external_id=str(account_id),
        currency=str(currency).upper(),
        iban=iban,
        bban=bban,
        name=str(name) if name else None,
        usage=ACCOUNT_TYPES.get(str(raw.get("AccountType") or "")),
    )


def balance(p: PayloadReader, body: Any) -> base.Balance:
    items = data_list(p, body, "Balance")
    if not items:
        p.fail("no balances", "Data.Balance")
    by_type = {str(item.get("Type")): (i, item) for i, item in enumerate(items)}
    for kind in BALANCE_PREFERENCE:
        if kind in by_type:
            index, chosen = by_type[kind]
            break
    else:
        index, chosen = 0, items[0]
    field = f"Data.Balance[{index}]"
    amount, currency = signed_amount(p, chosen, field)
    as_of = p.parse_date(chosen.get("DateTime"), f"{field}.DateTime", required=False)
    return base.Balance(amount=amount, currency=currency, as_of=as_of)


def _name(obj: Any, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not value:
        return None
    return str(value).strip() or None


def transaction(p: PayloadReader, raw: dict[str, Any], field: str) -> base.BankTransaction | None:
    """One ``Data.Transaction[]`` item; None for rows that are not money movements (Rejected)."""
    raw_status = p.require(raw, "Status", f"{field}.Status")
    if raw_status == "Rejected":
        return None
    status = BOOKING_STATUSES.get(str(raw_status))
    if status is None:
        p.fail(f"unknown status {str(raw_status)[:20]!r}", f"{field}.Status")
    amount, currency = signed_amount(p, raw, field)
    # BookingDateTime is an instant: its Stockholm date, not its UTC date, is the bank date.
    booking_date = p.parse_date(raw.get("BookingDateTime"), f"{field}.BookingDateTime")
    value_date = p.parse_date(raw.get("ValueDateTime"), f"{field}.ValueDateTime", required=False)
    if amount < 0:
        counterparty = _name(raw.get("CreditorAccount"), "Name") or _name(
            raw.get("MerchantDetails"), "MerchantName"
        )
    else:
        counterparty = _name(raw.get("DebtorAccount"), "Name") or _name(
            raw.get("MerchantDetails"), "MerchantName"
        )
    provider_id = str(raw.get("TransactionId") or "").strip() or None
    return base.BankTransaction(
        booking_status=status,
        amount=amount,
        currency=currency,
        booking_date=booking_date,
        value_date=value_date,
        provider_id=provider_id,
        counterparty=counterparty,
        description=_name(raw, "TransactionInformation"),
        reference=_name(raw, "TransactionReference"),
        raw=raw,
    )
