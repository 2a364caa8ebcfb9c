"""What a consent shows: the accounts the bank listed (kept on the connection as JSON), the identity
of a bank account across consents, and the end of a consent's validity."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ledgerlink.banks.adapters.base import STOCKHOLM, BankAccountInfo
from ledgerlink.banks.schemas import AvailableAccount, MoneyRead
from ledgerlink.models.bank import BankConnection


def identity_key(iban: str | None, bban: str | None, external_id: str) -> str:
    """What identifies a bank account across consents: IBAN, else BBAN, else the bank's id."""
    if iban and iban.strip():
        return "iban:" + "".join(iban.split()).upper()
    if bban and bban.strip():
        return "bban:" + "".join(bban.split()).upper()
    return "ext:" + external_id.strip()


def consent_end(valid_until: dt.date | None) -> dt.datetime | None:
    """The end of the consent's last valid day, Stockholm time."""
    if valid_until is None:
        return None
    return dt.datetime.combine(valid_until, dt.time(23, 59, 59), STOCKHOLM)


def account_json(info: BankAccountInfo) -> dict[str, Any]:
    balance = (
        {
            "amount": format(info.balance.amount, "f"),
            "currency": info.balance.currency,
            "as_of": info.balance.as_of.isoformat() if info.balance.as_of else None,
        }
        if info.balance is not None
        else None
    )
    return {
        "external_id": info.external_id,
        "iban": info.iban,
        "bban": info.bban,
        "name": info.name,
        "currency": info.currency,
        "usage": info.usage,
        "balance": balance,
    }


def available_of(connection: BankConnection) -> list[dict[str, Any]]:
    return list(connection.available_accounts or [])


def available_account(raw: dict[str, Any], linked_bank_account_id: uuid.UUID | None) -> AvailableAccount:
    """One stored account (:func:`account_json`) as the API shows it."""
    balance = raw.get("balance")
    return AvailableAccount(
        external_id=raw["external_id"],
        iban=raw.get("iban"),
        bban=raw.get("bban"),
        name=raw.get("name"),
        currency=raw["currency"],
        usage=raw.get("usage"),
        balance=MoneyRead(**balance) if balance else None,
        linked_bank_account_id=linked_bank_account_id,
    )


__all__ = ["account_json", "available_account", "available_of", "consent_end", "identity_key"]
