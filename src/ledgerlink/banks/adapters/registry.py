"""The bank catalogue: an explicit dict from bank id to catalogue metadata and adapter class.

The adapter class is named by import path and loaded on first use, so the catalogue can be listed
without importing every bank module. Every base URL and credential comes from settings
(``LEDGERLINK_BANKS__<BANK_ID>__BASE_URL`` ...); ``default_base_url`` is the production host.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

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

BOTH: tuple[AccountUsage, ...] = ("business", "private")
PRIVATE: tuple[AccountUsage, ...] = ("private",)
REDIRECT_AND_DECOUPLED: tuple[ScaMethod, ...] = ("redirect", "decoupled")
REDIRECT: tuple[ScaMethod, ...] = ("redirect",)


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


def _entry(**kw: Any) -> BankEntry:
    return BankEntry(**kw)


# Every bank we reach directly requires our QWAC (PSD2 RTS art. 34); Nordea, Swedbank and Bank
# Norwegian also want signed requests (QSealC). Banks reached through the aggregator are redirect-only
# for us: the aggregator runs Mobile BankID on its own page. Facts in docs/banks.md (history = what the
# bank serves with the user present, right after SCA; consents are read back from the bank,
# consent_max_days is only the ceiling we ask for).
BANKS: dict[str, BankEntry] = {
    "nordea": _entry(
        id="nordea",
        name="Nordea",
        bic="NDEASESS",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.nordea:NordeaAdapter",
        default_base_url="https://api.nordeaopenbanking.com",
        requires_client_cert=True,
        requires_signing=True,
    ),
    "seb": _entry(
        id="seb",
        name="SEB",
        bic="ESSESESS",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=395,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.seb:SebAdapter",
        default_base_url="https://api.seb.se/open",
        requires_client_cert=True,
    ),
    "handelsbanken": _entry(
        id="handelsbanken",
        name="Handelsbanken",
        bic="HANDSESS",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=420,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.handelsbanken:HandelsbankenAdapter",
        default_base_url="https://api.handelsbanken.com/openbanking",
        requires_client_cert=True,
    ),
    "swedbank": _entry(
        id="swedbank",
        name="Swedbank",
        bic="SWEDSESS",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=89,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.swedbank:SwedbankAdapter",
        default_base_url="https://psd2.api.swedbank.com",
        requires_client_cert=True,
        requires_signing=True,
    ),
    "revolut": _entry(
        id="revolut",
        name="Revolut",
        bic="REVOLT21",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.revolut:RevolutAdapter",
        default_base_url="https://oba.revolut.com",
        requires_client_cert=True,
    ),
    "ekobanken": _entry(
        id="ekobanken",
        name="Ekobanken",
        bic="EKOBSE21",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.aggregator:AggregatorAdapter",
        default_base_url="https://api.enablebanking.com",
    ),
    "danske": _entry(
        id="danske",
        name="Danske Bank",
        bic="DABASESX",
        status="coming_soon",
        account_types=BOTH,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.danske:DanskeAdapter",
        default_base_url="https://psd2-api.danskebank.com",
        requires_client_cert=True,
    ),
    "seb_enkla_firman": _entry(
        id="seb_enkla_firman",
        name="SEB Enkla firman",
        bic="ESSESESS",
        status="coming_soon",
        account_types=("business",),
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=395,
        consent_max_days=180,
        adapter=None,
    ),
    "jak": _entry(
        id="jak",
        name="JAK Medlemsbank",
        bic="JAKMSE22",
        status="coming_soon",
        account_types=BOTH,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.aggregator:AggregatorAdapter",
        default_base_url="https://api.enablebanking.com",
    ),
    "lansforsakringar": _entry(
        id="lansforsakringar",
        name="Länsförsäkringar Bank",
        bic="ELLFSESS",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=395,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.lansforsakringar:LansforsakringarAdapter",
        default_base_url="https://api.bank.lansforsakringar.se/openbanking",
        requires_client_cert=True,
    ),
    "icabanken": _entry(
        id="icabanken",
        name="ICA Banken",
        bic="IBCASES1",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=540,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.icabanken:IcaBankenAdapter",
        default_base_url="https://api.icabanken.se",
        requires_client_cert=True,
    ),
    "skandia": _entry(
        id="skandia",
        name="Skandiabanken",
        bic="SKIASESS",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=730,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.skandia:SkandiaAdapter",
        default_base_url="https://apis.skandia.se/open-banking/core-bank",
        requires_client_cert=True,
    ),
    "banknorwegian": _entry(
        id="banknorwegian",
        name="Bank Norwegian",
        bic="NORWNOK1",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.banknorwegian:BankNorwegianAdapter",
        default_base_url="https://api.banknorwegian.com/openbanking",
        requires_client_cert=True,
        requires_signing=True,
    ),
    "n26": _entry(
        id="n26",
        name="N26",
        bic="NTSBDEB1",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.n26:N26Adapter",
        default_base_url="https://xs2a.tech26.de",
        requires_client_cert=True,
    ),
    "alandsbanken": _entry(
        id="alandsbanken",
        name="Ålandsbanken",
        bic="AABASESS",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=89,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.alandsbanken:AlandsbankenAdapter",
        default_base_url="https://api.alandsbanken.se",
        requires_client_cert=True,
    ),
    "lanospar": _entry(
        id="lanospar",
        name="Lån & Spar Bank",
        bic="LAHYSESS",
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.aggregator:AggregatorAdapter",
        default_base_url="https://api.enablebanking.com",
    ),
    "brabank": _entry(
        id="brabank",
        name="Brabank",
        bic=None,
        status="available",
        account_types=PRIVATE,
        sca_methods=REDIRECT,
        max_history_days=365,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.aggregator:AggregatorAdapter",
        default_base_url="https://api.enablebanking.com",
    ),
    "sandbox": _entry(
        id="sandbox",
        name="Sandbox Bank",
        bic="SANDSESS",
        status="available",
        account_types=BOTH,
        sca_methods=REDIRECT_AND_DECOUPLED,
        max_history_days=730,
        consent_max_days=180,
        adapter="ledgerlink.banks.adapters.sandbox:SandboxAdapter",
        default_base_url="http://127.0.0.1:8000/sandbox/bank",
        sandbox_only=True,
    ),
}


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
    bank_id: str,
    endpoint: BankEndpointSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> BankAdapter:
    """Build the adapter for ``bank_id`` with its settings; ``transport`` lets tests inject one."""
    entry = BANKS.get(bank_id)
    if entry is None or entry.adapter is None:
        raise BankUnavailable(bank_id, "no adapter for this bank")
    module_name, _, class_name = entry.adapter.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    adapter: BankAdapter = cls(entry, endpoint, transport=transport)
    return adapter
