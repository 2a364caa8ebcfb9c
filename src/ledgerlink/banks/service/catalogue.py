"""The bank catalogue as this deployment offers it: which entry a request names, and whether the
certificates and signing keys the bank requires are configured."""

from __future__ import annotations

from ledgerlink.banks.adapters.registry import BankEntry, catalogue, get_entry, missing_settings
from ledgerlink.banks.errors import BankNotConfigured, BankNotOffered
from ledgerlink.config import Settings
from ledgerlink.errors import Unprocessable


def catalogue_entry(settings: Settings, bank_id: str) -> BankEntry:
    """The bank's catalogue entry; unknown (or the sandbox when it is off) → 422, coming soon → 409."""
    entry = get_entry(bank_id)
    if entry is None or (entry.sandbox_only and not settings.sandbox):
        raise Unprocessable(f"unknown bank {bank_id!r}", loc=["body", "bank_id"], code="unknown_bank")
    if entry.status != "available" or entry.adapter is None:
        raise BankNotOffered(f"{entry.name} is coming soon and cannot be connected yet")
    return entry


def is_configured(settings: Settings, entry: BankEntry) -> bool:
    """Whether everything the bank requires (QWAC, QSealC) is set."""
    return not missing_settings(entry, settings.bank(entry.id))


def require_configured(settings: Settings, entry: BankEntry) -> None:
    """409 ``bank_not_configured`` naming the missing settings, before anything is sent to the bank."""
    missing = missing_settings(entry, settings.bank(entry.id))
    if missing:
        raise BankNotConfigured(
            f"{entry.name} requires settings this service does not have: {', '.join(missing)}",
            extra={"bank_id": entry.id, "missing_settings": missing},
        )


def offered(settings: Settings) -> list[BankEntry]:
    return catalogue(include_sandbox=settings.sandbox)


__all__ = ["catalogue_entry", "is_configured", "offered", "require_configured"]
