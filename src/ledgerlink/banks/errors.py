"""The banks feature's errors, and how adapter errors become problems while the user waits."""

from __future__ import annotations

import datetime as dt
import math

from ledgerlink.banks.adapters.base import (
    AdapterError,
    BankUnavailable,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
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


def adapter_problem(exc: AdapterError) -> AppError:
    """An adapter error during a user-present call, as a problem the frontend can show (never a 500).

    Messages are the adapter's own (bank id, path, bank code): they carry no secrets."""
    if isinstance(exc, RateLimited):
        seconds = max(1, math.ceil((exc.retry_at - dt.datetime.now(dt.UTC)).total_seconds()))
        return ServiceUnavailable(
            f"the bank is rate limiting requests: {exc.message}",
            code="bank_rate_limited",
            headers={"Retry-After": str(seconds)},
            extra={"bank_id": exc.bank_id, "retryable": True},
        )
    if isinstance(exc, BankUnavailable | TemporaryFailure):
        return ServiceUnavailable(
            f"the bank cannot be reached right now: {exc.message}",
            code="bank_unavailable",
            extra={"bank_id": exc.bank_id, "retryable": True},
        )
    if isinstance(exc, ReauthRequired):
        return BadGateway(
            f"the bank refused the authorization: {exc.message}",
            code="bank_error",
            extra={"bank_id": exc.bank_id, "retryable": False},
        )
    detail = exc.message if isinstance(exc, InvalidResponse) else str(exc)
    return BadGateway(
        f"the bank answered something we could not read: {detail}",
        code="bank_error",
        extra={"bank_id": exc.bank_id, "retryable": False},
    )
