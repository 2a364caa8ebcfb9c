"""The bank adapter contract: a Protocol, the normalised DTOs and the adapter error family.

An adapter is a pure translator between one bank's PSD2 API and these types. It never touches the
database and never retries (the sync engine decides what to do with each error kind). The error tree::

    AdapterError
    ├── ReauthRequired       the consent or token is no longer accepted: the user must log in again
    │   └── ConsentExpired   the consent reached its end of validity
    ├── RateLimited          the bank refused for quota reasons (429 / ACCESS_EXCEEDED); retry_at is when
    ├── TemporaryFailure     5xx, timeouts, connection errors: retry with backoff
    ├── BankUnavailable      the bank (or this bank id) cannot be reached at all / is not offered
    ├── InvalidResponse      the bank answered something we cannot read (names bank and field)
    │   ├── PeriodTooLong    the bank refuses the date range; ask again with at most ``max_days`` days
    │   └── AccountVanished  the account is unknown to the bank under this consent (closed, removed)
    ├── CertificateInvalid   mutual TLS failed: our QWAC (or the bank's certificate) was refused
    └── SignatureInvalid     the bank refused our request signature (QSealC)

Nothing else may escape an adapter, and the sync engine knows only this tree: a bank family maps its
own answers onto it (Berlin Group's ``PERIOD_INVALID`` and ``RESOURCE_UNKNOWN`` errors subclass
``PeriodTooLong`` and ``AccountVanished``).
``PeriodTooLong`` and ``AccountVanished`` are ``InvalidResponse`` subclasses, so code that only knows
the older tree still treats them as unreadable answers.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from ledgerlink.clock import STOCKHOLM as STOCKHOLM  # the adapters and their callers take it from here

#: How many days back a bank serves transactions without a fresh SCA (the user not present): PSD2's
#: 90-day limit, with one day of margin for the bank's own clock. A bank that serves less says so in
#: its catalogue entry (``BankEntry.unattended_max_days``); this is the default.
UNATTENDED_MAX_DAYS = 89

AccountUsage = Literal["business", "private"]
ScaMethod = Literal["redirect", "decoupled"]


class BookingStatus(enum.StrEnum):
    booked = "booked"
    pending = "pending"


class ConsentStatus(enum.StrEnum):
    """Normalised consent status (Berlin Group `consentStatus` and equivalents)."""

    received = "received"  # created, SCA not finished
    valid = "valid"
    rejected = "rejected"
    expired = "expired"
    revoked = "revoked"


# --------------------------------------------------------------------------- errors


class AdapterError(Exception):
    """Root of the adapter error family."""

    def __init__(self, bank_id: str, message: str) -> None:
        super().__init__(f"{bank_id}: {message}")
        self.bank_id = bank_id
        self.message = message


class ReauthRequired(AdapterError):
    """The bank no longer accepts the consent or token; the user must authorise again."""


class ConsentExpired(ReauthRequired):
    """The consent has reached the end of its validity."""


class RateLimited(AdapterError):
    """The bank refused for quota reasons. ``retry_at`` is when to try again (UTC, aware)."""

    def __init__(self, bank_id: str, message: str, retry_at: dt.datetime) -> None:
        super().__init__(bank_id, message)
        self.retry_at = retry_at


class TemporaryFailure(AdapterError):
    """A transient failure (5xx, timeout, connection reset): retry with backoff."""


class BankUnavailable(AdapterError):
    """The bank cannot be used now (down for maintenance, not configured, or not offered)."""


class InvalidResponse(AdapterError):
    """The bank answered something we cannot read. ``field`` names what was wrong."""

    def __init__(self, bank_id: str, message: str, field: str | None = None) -> None:
        super().__init__(bank_id, f"{message}" + (f" (field {field})" if field else ""))
        self.field = field


class PeriodTooLong(InvalidResponse):
    """The bank refused the requested date range: ask again with a window of at most ``max_days`` days
    back from today. The adapter never retries by itself; the sync engine shrinks the window once."""

    def __init__(
        self, bank_id: str, message: str, max_days: int = UNATTENDED_MAX_DAYS, field: str | None = "dateFrom"
    ) -> None:
        super().__init__(bank_id, message, field)
        self.max_days = max_days


class AccountVanished(InvalidResponse):
    """The account no longer exists at the bank under this consent (closed, or removed from the
    consent). Retrying will not help; the sync engine pauses the account."""


class CertificateInvalid(AdapterError):
    """Our TLS client certificate (QWAC) or the bank's server certificate was refused or is unusable:
    an operator must fix the bank's certificate settings; retrying will not help."""


class SignatureInvalid(AdapterError):
    """The bank refused our request signature (QSealC), or the signing key is unusable: an operator
    must fix the bank's signing settings; retrying will not help."""


# --------------------------------------------------------------------------- DTOs


@dataclass(frozen=True, slots=True)
class Credentials:
    """What we keep for a connection between calls (encrypted at rest by the caller).

    ``consent_id`` is the Berlin Group consent id (or the aggregator session id); ``access_token`` and
    ``refresh_token`` are OAuth tokens where the bank uses them; ``extra`` holds anything else a bank
    needs to resume (e.g. Swedbank's detailed consent id). All of it is secret.
    """

    consent_id: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    token_expires_at: dt.datetime | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectionContext:
    """Who we act for in a call. ``psu_ip_address`` is set only when the user is present."""

    account_type: AccountUsage
    psu_id: str | None = None
    corporate_id: str | None = None
    psu_ip_address: str | None = None

    @property
    def user_present(self) -> bool:
        return self.psu_ip_address is not None


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """The result of starting SCA.

    For ``method == "redirect"`` the user is sent to ``url`` and comes back to the redirect URI with
    ``code`` (OAuth banks) and our ``state``. For ``"decoupled"`` the frontend starts BankID with
    ``autostart_token`` and we poll ``get_authorization_status``.
    """

    method: ScaMethod
    credentials: Credentials
    url: str | None = None
    autostart_token: str | None = None
    poll_interval_seconds: int = 2


@dataclass(frozen=True, slots=True)
class AuthorizationStatus:
    """State of a decoupled SCA: ``pending``, ``finalised`` (then ``credentials`` are usable) or ``failed``."""

    status: Literal["pending", "finalised", "failed"]
    credentials: Credentials
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentInfo:
    status: ConsentStatus
    valid_until: dt.date | None


@dataclass(frozen=True, slots=True)
class Balance:
    amount: Decimal
    currency: str
    as_of: dt.date | None = None


@dataclass(frozen=True, slots=True)
class BankAccountInfo:
    external_id: str
    currency: str
    iban: str | None = None
    bban: str | None = None
    name: str | None = None
    usage: AccountUsage | None = None
    balance: Balance | None = None


@dataclass(frozen=True, slots=True)
class BankTransaction:
    """One normalised transaction.

    ``amount`` is signed (negative = money out). Dates are bank-local (Europe/Stockholm) dates.
    ``provider_id`` is the bank's stable id (``transactionId``, else ``entryReference``) or None;
    the sync engine derives the identity with :func:`transaction_identities`.
    """

    booking_status: BookingStatus
    amount: Decimal
    currency: str
    booking_date: dt.date | None
    value_date: dt.date | None = None
    provider_id: str | None = None
    counterparty: str | None = None
    description: str | None = None
    reference: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


# --------------------------------------------------------------------------- identity (rule 4)


def _content_key(tx: BankTransaction) -> str:
    parts = [
        tx.booking_status.value,
        tx.booking_date.isoformat() if tx.booking_date else "",
        format(tx.amount.normalize(), "f"),
        tx.currency.upper(),
        " ".join((tx.counterparty or "").split()).casefold(),
        " ".join((tx.description or "").split()).casefold(),
    ]
    return "\x1f".join(parts)


def transaction_identities(transactions: Iterable[BankTransaction]) -> list[str]:
    """Identity per transaction, per account (ARCHITECTURE rule 4).

    The bank's ``provider_id`` when it has one (``id:<provider_id>``); otherwise a SHA-256 of
    (status, booking date, amount, currency, counterparty, text) plus the occurrence index of that
    content within the given sequence, so two genuine identical purchases on one day stay two rows.
    The sequence must be everything the bank returned for the window, in the bank's order.
    A provider id that repeats inside one answer (some banks reuse ids) is disambiguated the same way.
    """
    seen: dict[str, int] = {}
    out: list[str] = []
    for tx in transactions:
        pid = (tx.provider_id or "").strip()
        base = f"id:{pid}" if pid else "h:" + hashlib.sha256(_content_key(tx).encode()).hexdigest()[:40]
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if pid and n == 0 else f"{base}#{n}")
    return out


def stockholm_date(value: dt.datetime) -> dt.date:
    """Bank-local date of an aware timestamp (a naive one is taken as Stockholm time already)."""
    if value.tzinfo is None:
        return value.date()
    return value.astimezone(STOCKHOLM).date()


# --------------------------------------------------------------------------- the Protocol


@runtime_checkable
class BankAdapter(Protocol):
    """What every bank module implements. All methods raise only :class:`AdapterError` subclasses."""

    bank_id: str

    async def start_authorization(
        self, ctx: ConnectionContext, *, redirect_uri: str, state: str, sca_method: ScaMethod | None = None
    ) -> AuthorizationStart:
        """Create the consent (or OAuth request) and start SCA.

        Args:
            ctx: who the consent is for; ``ctx.psu_ip_address`` is set (the user is present).
            redirect_uri: where the bank sends the user back (already checked against the allow-list).
            state: our single-use state, to be echoed back by the bank on the redirect.
            sca_method: the preferred SCA approach, or None for the bank's default.
        """
        ...

    async def complete_authorization(
        self, ctx: ConnectionContext, credentials: Credentials, *, code: str | None, redirect_uri: str
    ) -> Credentials:
        """Finish a redirect SCA (exchange ``code`` where the bank uses OAuth). Returns usable credentials."""
        ...

    async def get_authorization_status(
        self, ctx: ConnectionContext, credentials: Credentials
    ) -> AuthorizationStatus:
        """Poll a decoupled SCA once."""
        ...

    async def refresh_credentials(self, ctx: ConnectionContext, credentials: Credentials) -> Credentials:
        """Renew short-lived tokens (OAuth refresh grant); unchanged where the bank has none.
        Raises :class:`ReauthRequired` when the refresh token is no longer accepted."""
        ...

    async def get_consent(self, ctx: ConnectionContext, credentials: Credentials) -> ConsentInfo:
        """Read the consent's status and the validity the bank actually granted."""
        ...

    async def list_accounts(self, ctx: ConnectionContext, credentials: Credentials) -> list[BankAccountInfo]:
        """The accounts the consent covers, with balances where the bank gives them."""
        ...

    async def fetch_transactions(
        self,
        ctx: ConnectionContext,
        credentials: Credentials,
        account_id: str,
        date_from: dt.date,
        date_to: dt.date,
    ) -> Sequence[BankTransaction]:
        """Booked and pending transactions of the window (inclusive), all pages, in the bank's order."""
        ...

    async def fetch_balance(
        self, ctx: ConnectionContext, credentials: Credentials, account_id: str
    ) -> Balance:
        """The booked balance (closingBooked / interimBooked or the bank's nearest)."""
        ...

    async def revoke(self, ctx: ConnectionContext, credentials: Credentials) -> None:
        """Delete the consent at the bank."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client."""
        ...
