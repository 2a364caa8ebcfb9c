"""Berlin Group NextGenPSD2 payloads → the adapter DTOs. Pure: no I/O, no HTTP client.

:class:`BerlinGroupParser` reads consents, accounts, balances, transaction reports and the SCA links;
a bank whose rows differ subclasses it (``parser_class`` on its adapter) and overrides only the
normalisation hooks (``description``, ``provider_id``, ``normalise_transaction``, ``pick_balance``...).

Normalisation: signed ``Decimal`` from the ``transactionAmount.amount`` string; bank-local dates
(timestamps converted to Europe/Stockholm); counterparty = ``creditorName`` for debits, ``debtorName``
for credits; description = ``remittanceInformationUnstructured`` (+ ``...Array``); reference = the
structured (OCR) reference, else ``endToEndId``; ``provider_id`` = ``transactionId`` else
``entryReference`` (blank → None). A malformed payload raises
:class:`~ledgerlink.banks.adapters.base.InvalidResponse` naming the bank and the field (``where``
strings such as ``transactions.booked[3].transactionAmount.amount``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledgerlink.banks.adapters import base
from ledgerlink.banks.adapters.parsing import PayloadReader, blank_to_none

CONSENT_STATUSES: dict[str, base.ConsentStatus] = {
    "received": base.ConsentStatus.received,
    "partiallyauthorised": base.ConsentStatus.received,
    "valid": base.ConsentStatus.valid,
    "rejected": base.ConsentStatus.rejected,
    "expired": base.ConsentStatus.expired,
    "revokedbypsu": base.ConsentStatus.revoked,
    "terminatedbytpp": base.ConsentStatus.revoked,
}
SCA_FINAL_OK = frozenset({"finalised", "exempted"})
SCA_FAILED = frozenset({"failed"})
USAGES: dict[str, base.AccountUsage] = {"PRIV": "private", "ORGA": "business"}
BALANCE_PREFERENCE = (
    "closingBooked",
    "interimBooked",
    "expected",
    "interimAvailable",
    "openingBooked",
    "forwardAvailable",
)
AUTOSTART_KEYS = ("autoStartToken", "autostartToken", "bankIdAutoStartToken", "autoStart")


def link(body: Any, name: str) -> str | None:
    """``body._links[name].href`` (or a bare string link), or None."""
    links = body.get("_links") if isinstance(body, dict) else None
    if not isinstance(links, dict):
        return None
    value = links.get(name)
    if isinstance(value, dict):
        value = value.get("href")
    return blank_to_none(value)


def authorisation_id_from_link(auth: dict[str, Any]) -> str | None:
    """The authorisation id at the end of an ``scaStatus`` link (``.../authorisations/{id}``)."""
    href = link(auth, "scaStatus")
    if href and "/authorisations/" in href:
        return href.rstrip("/").rsplit("/", 1)[-1] or None
    return None


def autostart_token_from(payload: dict[str, Any]) -> str | None:
    """The BankID autostart token: ``challengeData.data[0]`` (or ``.additionalInformation``), a
    bank field (``autoStartToken``...), or a ``psuMessage`` that is a bare token."""
    challenge = payload.get("challengeData")
    if isinstance(challenge, dict):
        data = challenge.get("data")
        if isinstance(data, list) and data and blank_to_none(data[0]):
            return str(data[0]).strip()
        if blank_to_none(challenge.get("additionalInformation")):
            return str(challenge["additionalInformation"]).strip()
    for key in AUTOSTART_KEYS:
        value = blank_to_none(payload.get(key))
        if value:
            return value
    message = blank_to_none(payload.get("psuMessage"))
    if message and " " not in message and len(message) >= 16:
        return message
    return None


class BerlinGroupParser(PayloadReader):
    """Reads one bank's Berlin Group payloads (``bank_id`` names it in every error)."""

    # -- consent and SCA --------------------------------------------------------------------------

    def consent(self, body: Any) -> base.ConsentInfo:
        raw_status = str(self.require(body, "consentStatus")).strip()
        status = CONSENT_STATUSES.get(raw_status.casefold())
        if status is None:
            self.fail(f"unknown consent status {raw_status[:40]!r}", "consentStatus")
        valid_until = self.parse_date(body.get("validUntil"), "validUntil", required=False)
        return base.ConsentInfo(status=status, valid_until=valid_until)

    def sca_status(self, body: Any) -> tuple[str, str | None]:
        """``(scaStatus, psuMessage)`` of an authorisation resource."""
        status = str(self.require(body, "scaStatus")).strip()
        message = blank_to_none(body.get("psuMessage")) if isinstance(body, dict) else None
        return status, message

    # -- accounts and balances --------------------------------------------------------------------

    def accounts(self, body: Any) -> list[base.BankAccountInfo]:
        return [self.account(raw, f"accounts[{i}]") for i, raw in enumerate(self.accounts_from(body))]

    def accounts_from(self, body: Any) -> list[Any]:
        accounts = body.get("accounts") if isinstance(body, dict) else None
        if not isinstance(accounts, list):
            self.fail("no account list", "accounts")
        return accounts

    def account(self, raw: Any, where: str) -> base.BankAccountInfo:
        if not isinstance(raw, dict):
            self.fail("account is not an object", where)
        external_id = str(self.require(raw, "resourceId", f"{where}.resourceId"))
        currency = str(self.require(raw, "currency", f"{where}.currency"))
        usage = USAGES.get(str(raw.get("usage") or "").upper())
        balances = raw.get("balances")
        balance = self.pick_balance(balances, f"{where}.balances") if isinstance(balances, list) else None
        return base.BankAccountInfo(
            external_id=external_id,
            currency=currency,
            iban=blank_to_none(raw.get("iban")),
            bban=blank_to_none(raw.get("bban")),
            name=blank_to_none(raw.get("name"))
            or blank_to_none(raw.get("displayName"))
            or blank_to_none(raw.get("product")),
            usage=usage,
            balance=balance,
        )

    def balance(self, body: Any) -> base.Balance:
        """The preferred balance of a ``balances`` answer (an object holding ``balances: [...]``)."""
        balances = body.get("balances") if isinstance(body, dict) else None
        if not isinstance(balances, list):
            self.fail("no balance list", "balances")
        balance = self.pick_balance(balances, "balances")
        if balance is None:
            self.fail("no usable balance", "balances")
        return balance

    def pick_balance(self, balances: list[Any], where: str) -> base.Balance | None:
        """The booked balance by preference (closingBooked, interimBooked, expected, ...)."""
        by_type: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, item in enumerate(balances):
            if isinstance(item, dict) and item.get("balanceType"):
                by_type.setdefault(str(item["balanceType"]).casefold(), (i, item))
        chosen = next((by_type[t.casefold()] for t in BALANCE_PREFERENCE if t.casefold() in by_type), None)
        if chosen is None:
            return None
        i, item = chosen
        amount_obj = self.require_object(item, "balanceAmount", f"{where}[{i}].balanceAmount")
        return base.Balance(
            amount=self.parse_amount(
                self.require(amount_obj, "amount", f"{where}[{i}].balanceAmount.amount"),
                f"{where}[{i}].balanceAmount.amount",
            ),
            currency=str(self.require(amount_obj, "currency", f"{where}[{i}].balanceAmount.currency")),
            as_of=self.parse_date(
                item.get("referenceDate") or item.get("lastChangeDateTime"),
                f"{where}[{i}].referenceDate",
                required=False,
            ),
        )

    # -- transactions -----------------------------------------------------------------------------

    def report_of(self, body: Any) -> dict[str, Any]:
        report = body.get("transactions") if isinstance(body, dict) else None
        if not isinstance(report, dict):
            self.fail("no transaction report", "transactions")
        return report

    def next_link(self, body: Any) -> str | None:
        """``transactions._links.next`` (or a top-level ``_links.next``), or None on the last page."""
        return link(self.report_of(body), "next") or link(body, "next")

    def transactions_page(self, body: Any, page: int) -> list[base.BankTransaction]:
        report = self.report_of(body)
        out: list[base.BankTransaction] = []
        for status in (base.BookingStatus.booked, base.BookingStatus.pending):
            rows = report.get(status.value)
            if rows is None:
                continue
            if not isinstance(rows, list):
                self.fail("rows are not a list", f"transactions.{status.value}")
            for i, raw in enumerate(rows):
                where = f"transactions.{status.value}[{i}]" + (f" (page {page + 1})" if page else "")
                if not isinstance(raw, dict):
                    self.fail("transaction is not an object", where)
                out.append(self.normalise_transaction(raw, status, where))
        return out

    # -- normalisation (hooks) --------------------------------------------------------------------

    def normalise_transaction(
        self, raw: dict[str, Any], status: base.BookingStatus, where: str
    ) -> base.BankTransaction:
        amount_obj = self.require_object(raw, "transactionAmount", f"{where}.transactionAmount")
        amount = self.parse_amount(amount_obj.get("amount"), f"{where}.transactionAmount.amount")
        currency = str(self.require(amount_obj, "currency", f"{where}.transactionAmount.currency")).upper()
        booking_date, value_date = self.transaction_dates(raw, status, where)
        return base.BankTransaction(
            booking_status=status,
            amount=amount,
            currency=currency,
            booking_date=booking_date,
            value_date=value_date,
            provider_id=self.provider_id(raw, status),
            counterparty=self.counterparty(raw, amount.is_signed()),
            description=self.description(raw),
            reference=self.reference(raw),
            raw=raw,
        )

    def transaction_dates(
        self, raw: dict[str, Any], status: base.BookingStatus, where: str
    ) -> tuple[dt.date | None, dt.date | None]:
        """Booked rows need a booking date (falling back to the value date); pending ones may lack it."""
        value_date = self.parse_date(raw.get("valueDate"), f"{where}.valueDate", required=False)
        booking_date = self.parse_date(
            raw.get("bookingDate") or raw.get("transactionDate"), f"{where}.bookingDate", required=False
        )
        if booking_date is None:
            booking_date = value_date
        if booking_date is None and status is base.BookingStatus.booked:
            self.fail("missing date", f"{where}.bookingDate")
        return booking_date, value_date

    def provider_id(self, raw: dict[str, Any], status: base.BookingStatus) -> str | None:
        return blank_to_none(raw.get("transactionId")) or blank_to_none(raw.get("entryReference"))

    def counterparty(self, raw: dict[str, Any], is_debit: bool) -> str | None:
        if is_debit:
            return blank_to_none(raw.get("creditorName")) or blank_to_none(raw.get("ultimateCreditor"))
        return blank_to_none(raw.get("debtorName")) or blank_to_none(raw.get("ultimateDebtor"))

    def description(self, raw: dict[str, Any]) -> str | None:
        parts: list[str] = []
        single = blank_to_none(raw.get("remittanceInformationUnstructured"))
        if single:
            parts.append(single)
        array = raw.get("remittanceInformationUnstructuredArray")
        if isinstance(array, list):
            parts.extend(text for item in array if (text := blank_to_none(item)) and text not in parts)
        if parts:
            return " ".join(parts)
        return blank_to_none(raw.get("additionalInformation"))

    def reference(self, raw: dict[str, Any]) -> str | None:
        """OCR/structured reference, else the end-to-end id (``NOTPROVIDED`` is no reference)."""
        candidates: list[Any] = [raw.get("remittanceInformationStructured")]
        array = raw.get("remittanceInformationStructuredArray")
        if isinstance(array, list):
            candidates.extend(array)
        for item in candidates:
            value = item.get("reference") if isinstance(item, dict) else item
            text = blank_to_none(value) if not isinstance(value, dict | list) else None
            if text:
                return text
        end_to_end = blank_to_none(raw.get("endToEndId"))
        if end_to_end and end_to_end.upper() != "NOTPROVIDED":
            return end_to_end
        return None


__all__ = [
    "BerlinGroupParser",
    "authorisation_id_from_link",
    "autostart_token_from",
    "blank_to_none",
    "link",
]
