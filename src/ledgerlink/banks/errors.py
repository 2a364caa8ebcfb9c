"""The banks feature's errors, and how adapter errors become problems while the user waits."""

from __future__ import annotations

import datetime as dt
import math

from ledgerlink.banks.adapters.base import (
    AdapterError,
    BankUnavailable,
    CertificateInvalid,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    SignatureInvalid,
    TemporaryFailure,
)
from ledgerlink.errors import (
    AppError,
    BadGateway,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)


class ConnectionNotFound(NotFound):
    code, title = "bank_connection_not_found", "Bank connection not found"


class BankAccountNotFound(NotFound):
    code, title = "bank_account_not_found", "Bank account not found"


class BankNotOffered(Conflict):
    """A catalogue bank that is ``coming_soon``."""

    code, title = "bank_unavailable", "Bank not available yet"


class BankNotConfigured(Conflict):
    """The bank requires a client certificate or signing key that this deployment has not set."""

    code, title = "bank_not_configured", "Bank not configured"


class ConnectionExists(Conflict):
    """The company already has a connection at the bank (for the same person): a second consent would
    end the first at a Berlin Group bank. ``connection_id`` names it."""

    code, title = "connection_exists", "Bank already connected"


class ConnectionNotActive(Conflict):
    code, title = "connection_not_active", "Bank connection is not active"


class ConnectionStateConflict(Conflict):
    code, title = "connection_state_conflict", "Bank connection is in another state"


class AccountAlreadyLinked(Conflict):
    code, title = "bank_account_already_linked", "Bank account already linked"


class LedgerAccountInUse(Conflict):
    code, title = "ledger_account_in_use", "Ledger account already mapped"


class AccountStateConflict(Conflict):
    code, title = "bank_account_state_conflict", "Bank account is in another state"


def ledger_account_invalid(value: str, loc: list[str | int]) -> Unprocessable:
    return Unprocessable(
        f"{value!r} is not a BAS account in 1900-1999 (Kassa och bank)",
        loc=loc,
        code="ledger_account_invalid",
    )


#: Adapter error kind → (problem class, code, what the user is told, retryable). First match wins.
_PROBLEMS: tuple[tuple[type[AdapterError], type[AppError], str, str, bool], ...] = (
    (RateLimited, ServiceUnavailable, "bank_rate_limited", "the bank is rate limiting requests", True),
    (BankUnavailable, ServiceUnavailable, "bank_unavailable", "the bank cannot be reached right now", True),
    (TemporaryFailure, ServiceUnavailable, "bank_unavailable", "the bank cannot be reached right now", True),
    (CertificateInvalid, BadGateway, "certificate_invalid", "the bank refused our client certificate", False),
    (SignatureInvalid, BadGateway, "signature_invalid", "the bank refused our request signature", False),
    (ReauthRequired, BadGateway, "bank_error", "the bank refused the authorization", False),
    (InvalidResponse, BadGateway, "bank_error", "the bank answered something we could not read", False),
)


def adapter_problem(exc: AdapterError) -> AppError:
    """An adapter error during a user-present call, as a problem the frontend can show (never a 500).

    Messages are the adapter's own (bank id, path, bank code): they carry no secrets."""
    cls: type[AppError] = BadGateway
    code, what, retryable = "bank_error", "the bank answered something we could not read", False
    detail = str(exc)
    for kind, problem, problem_code, text, can_retry in _PROBLEMS:
        if isinstance(exc, kind):
            cls, code, what, retryable, detail = problem, problem_code, text, can_retry, exc.message
            break
    headers = None
    if isinstance(exc, RateLimited):
        seconds = max(1, math.ceil((exc.retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
        headers = {"Retry-After": str(seconds)}
    return cls(
        f"{what}: {detail}",
        code=code,
        headers=headers,
        extra={"bank_id": exc.bank_id, "retryable": retryable},
    )
