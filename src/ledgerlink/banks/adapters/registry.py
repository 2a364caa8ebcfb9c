"""The bank catalogue: an explicit dict from bank id to catalogue metadata and adapter class.

The adapter class is named by import path and loaded on first use, so the catalogue can be listed
without importing every bank module. Every base URL and credential comes from settings
(``LEDGERLINK_BANKS__<BANK_ID>__BASE_URL`` ...); ``default_base_url`` is the production host.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from typing import Literal

import httpx

from ledgerlink.banks.adapters.base import (
    UNATTENDED_MAX_DAYS,
    AccountUsage,
    BankAdapter,
    BankUnavailable,
    ScaMethod,
)
from ledgerlink.banks.adapters.tls import setting_name
from ledgerlink.config import BankEndpointSettings

BankStatus = Literal["available", "coming_soon"]

AccountTypes = tuple[AccountUsage, ...]
ScaMethods = tuple[ScaMethod, ...]

BOTH: AccountTypes = ("business", "private")
PRIVATE: AccountTypes = ("private",)
BUSINESS: AccountTypes = ("business",)
BOTH_SCA: ScaMethods = ("redirect", "decoupled")
REDIRECT: ScaMethods = ("redirect",)


@dataclass(frozen=True, slots=True)
class BankEntry:
    id: str
    name: str
    bic: str | None
    status: BankStatus
    account_types: tuple[AccountUsage, ...]
    sca_methods: tuple[ScaMethod, ...]
    max_history_days: int
    consent_max_days: int
    adapter: str | None  # "module:Class"
    default_base_url: str | None = None
    sandbox_only: bool = False
    #: PSD2 RTS art. 34: the bank identifies us by an eIDAS QWAC in the TLS handshake (mutual TLS).
    requires_client_cert: bool = False
    #: The bank wants requests signed with our eIDAS QSealC (see :mod:`.signing`).
    requires_signing: bool = False
    #: Days back the bank serves without a fresh SCA (the sync window's floor when the user is absent).
    unattended_max_days: int = UNATTENDED_MAX_DAYS
    #: SCA that continues after the redirect: the PSU confirms the new consent in the bank's app within
    #: this window (its status reads ``received`` meanwhile); None where the redirect ends the SCA.
    confirm_in_app_within: dt.timedelta | None = None


#: One catalogue row (see ``_LISTED``).
_Row = tuple[str, str, str | None, BankStatus, AccountTypes, ScaMethods, int, tuple[bool, bool]]

#: What a bank requires of us besides OAuth/consents: our QWAC in the TLS handshake (PSD2 RTS art. 34),
#: requests signed with our QSealC as well (:mod:`.signing`), or nothing (reached through the aggregator).
QWAC = (True, False)
QWAC_QSEALC = (True, True)
QSEALC = (False, True)
NOTHING = (False, False)

#: The consent validity we ask every bank for (the PSD2 ceiling; the bank's answer is read back).
CONSENT_MAX_DAYS = 180

# The catalogue, one row a bank: id, name, BIC, status, account types, SCA methods, days of history the
# bank serves with the user present (right after SCA), what it requires of us. Facts in docs/banks.md.
# Every bank we reach directly requires our QWAC except Nordea, which identifies us by the QSealC
# signature on every request instead (its FAQ: no mutual TLS on the PSD2 APIs); Swedbank and Bank
# Norwegian want both. Banks reached through the aggregator are redirect-only for us: the aggregator runs Mobile
# BankID on its own page.
_LISTED: tuple[_Row, ...] = (
    ("nordea", "Nordea", "NDEASESS", "available", BOTH, BOTH_SCA, 365, QSEALC),
    ("seb", "SEB", "ESSESESS", "available", BOTH, BOTH_SCA, 395, QWAC),
    ("handelsbanken", "Handelsbanken", "HANDSESS", "available", BOTH, BOTH_SCA, 420, QWAC),
    ("swedbank", "Swedbank", "SWEDSESS", "available", BOTH, BOTH_SCA, 89, QWAC_QSEALC),
    ("revolut", "Revolut", "REVOLT21", "available", BOTH, REDIRECT, 365, QWAC),
    ("ekobanken", "Ekobanken", "EKOBSE21", "available", BOTH, REDIRECT, 365, NOTHING),
    ("danske", "Danske Bank", "DABASESX", "coming_soon", BOTH, REDIRECT, 365, QWAC),
    ("seb_enkla_firman", "SEB Enkla firman", "ESSESESS", "coming_soon", BUSINESS, BOTH_SCA, 395, NOTHING),
    ("jak", "JAK Medlemsbank", "JAKMSE22", "coming_soon", BOTH, REDIRECT, 365, NOTHING),
    ("lansforsakringar", "Länsförsäkringar Bank", "ELLFSESS", "available", PRIVATE, BOTH_SCA, 395, QWAC),
    ("icabanken", "ICA Banken", "IBCASES1", "available", PRIVATE, REDIRECT, 540, QWAC),
    ("skandia", "Skandiabanken", "SKIASESS", "available", PRIVATE, REDIRECT, 730, QWAC),
    ("banknorwegian", "Bank Norwegian", "NORWNOK1", "available", PRIVATE, REDIRECT, 365, QWAC_QSEALC),
    ("n26", "N26", "NTSBDEB1", "available", PRIVATE, REDIRECT, 365, QWAC),
    ("alandsbanken", "Ålandsbanken", "AABASESS", "available", PRIVATE, REDIRECT, 89, QWAC),
    ("lanospar", "Lån & Spar Bank", "LAHYSESS", "available", PRIVATE, REDIRECT, 365, NOTHING),
    ("brabank", "Brabank", None, "available", PRIVATE, REDIRECT, 365, NOTHING),
    ("sandbox", "Sandbox Bank", "SANDSESS", "available", BOTH, BOTH_SCA, 730, NOTHING),
)

#: The aggregator's adapter and host, shared by every bank reached through it.
THROUGH_AGGREGATOR = ("aggregator:AggregatorAdapter", "https://api.enablebanking.com")

# How we reach each bank: its adapter class (in the module named like the bank, unless given as
# ``module:Class``) and the production base URL. A bank missing here has no adapter yet.
_ADAPTERS: dict[str, tuple[str, str]] = {
    "nordea": ("NordeaAdapter", "https://api.nordeaopenbanking.com"),
    "seb": ("SebAdapter", "https://tpp-api.sebgroup.com/tpp"),
    "handelsbanken": ("HandelsbankenAdapter", "https://api.handelsbanken.com/openbanking"),
    "swedbank": ("SwedbankAdapter", "https://psd2.api.swedbank.com"),
    "revolut": ("RevolutAdapter", "https://oba.revolut.com"),
    "ekobanken": THROUGH_AGGREGATOR,
    "danske": ("DanskeAdapter", "https://psd2-api.danskebank.com"),
    "jak": THROUGH_AGGREGATOR,
    "lansforsakringar": ("LansforsakringarAdapter", "https://api.bank.lansforsakringar.se/openbanking"),
    "icabanken": ("IcaBankenAdapter", "https://api.icabanken.se"),
    "skandia": ("SkandiaAdapter", "https://apis.skandia.se/open-banking/core-bank"),
    "banknorwegian": ("BankNorwegianAdapter", "https://api.banknorwegian.com/openbanking"),
    "n26": ("N26Adapter", "https://xs2a.tech26.de"),
    "alandsbanken": ("AlandsbankenAdapter", "https://api.alandsbanken.se"),
    "lanospar": THROUGH_AGGREGATOR,
    "brabank": THROUGH_AGGREGATOR,
    "sandbox": ("SandboxAdapter", "http://127.0.0.1:8000/sandbox/bank"),
}


def _entry(row: _Row) -> BankEntry:
    bank_id, name, bic, status, account_types, sca_methods, history_days, (client_cert, signing) = row
    adapter, base_url = _ADAPTERS.get(bank_id, (None, None))
    if adapter is not None and ":" not in adapter:
        adapter = f"{bank_id}:{adapter}"
    return BankEntry(
        id=bank_id,
        name=name,
        bic=bic,
        status=status,
        account_types=account_types,
        sca_methods=sca_methods,
        max_history_days=history_days,
        consent_max_days=CONSENT_MAX_DAYS,
        adapter=f"{__package__}.{adapter}" if adapter else None,
        default_base_url=base_url,
        sandbox_only=bank_id == "sandbox",
        requires_client_cert=client_cert,
        requires_signing=signing,
        confirm_in_app_within=_CONFIRM_IN_APP.get(bank_id),
    )


#: SCA that continues in the bank's app after the redirect, and its window (N26's TPP docs: 5 minutes).
_CONFIRM_IN_APP: dict[str, dt.timedelta] = {"n26": dt.timedelta(minutes=5)}

BANKS: dict[str, BankEntry] = {row[0]: _entry(row) for row in _LISTED}


#: What each requirement needs configured, as ``BankEndpointSettings`` field names.
CERT_SETTINGS = ("client_cert_file", "client_key_file")
SIGNING_SETTINGS = ("signing_key_file", "signing_cert_file")


def missing_settings(entry: BankEntry, endpoint: BankEndpointSettings) -> list[str]:
    """The settings this bank requires that are not set, as environment variable names."""
    wanted = (CERT_SETTINGS if entry.requires_client_cert else ()) + (
        SIGNING_SETTINGS if entry.requires_signing else ()
    )
    return [setting_name(entry.id, name) for name in wanted if not getattr(endpoint, name)]


def catalogue(*, include_sandbox: bool) -> list[BankEntry]:
    return [b for b in BANKS.values() if include_sandbox or not b.sandbox_only]


def get_entry(bank_id: str) -> BankEntry | None:
    return BANKS.get(bank_id)


def unattended_max_days(bank_id: str) -> int:
    """How many days back ``bank_id`` serves without the user present (the contract's default for a
    bank not in the catalogue)."""
    entry = BANKS.get(bank_id)
    return entry.unattended_max_days if entry is not None else UNATTENDED_MAX_DAYS


def create_adapter(
    bank_id: str, endpoint: BankEndpointSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> BankAdapter:
    """Build the adapter for ``bank_id`` with its settings; ``transport`` lets tests inject one."""
    entry = BANKS.get(bank_id)
    if entry is None or entry.adapter is None:
        raise BankUnavailable(bank_id, "no adapter for this bank")
    module_name, _, class_name = entry.adapter.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    adapter: BankAdapter = cls(entry, endpoint, transport=transport)
    return adapter
