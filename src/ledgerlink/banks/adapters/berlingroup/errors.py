"""Berlin Group ``tppMessages`` codes mapped onto the adapter error family.

Choices that the spec leaves open (docs/banks.md, "Berlin Group"):

* ``PERIOD_INVALID`` (the bank refuses the date range, typically > 90 days without fresh SCA) raises
  :class:`PeriodInvalid`, the contract's :class:`PeriodTooLong` carrying ``max_days = 89``. The adapter
  never retries by itself; the sync engine catches ``PeriodTooLong`` and asks again with a window of at
  most ``max_days`` days (a plain ``except InvalidResponse`` still treats it as unreadable).
* ``RESOURCE_UNKNOWN`` on an account resource (404/403) raises :class:`ResourceUnknown`, the contract's
  :class:`AccountVanished`: the account no longer exists under this consent (closed, or a deleted N26
  space). Retrying will not help; the sync engine pauses the account.
* 503 is :class:`TemporaryFailure` (a flapping backend) unless the body says the service is blocked or
  in maintenance (code ``SERVICE_BLOCKED``, or "maintenance" in a message text): then
  :class:`BankUnavailable`. ``SERVICE_BLOCKED`` is BankUnavailable on any status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledgerlink.banks.adapters.base import UNATTENDED_MAX_DAYS, AccountVanished, PeriodTooLong

REAUTH_CODES = frozenset(
    {
        "CONSENT_INVALID",
        "CONSENT_UNKNOWN",
        "TOKEN_UNKNOWN",
        "TOKEN_INVALID",
        "TOKEN_EXPIRED",
        "PSU_CREDENTIALS_INVALID",
        "CORPORATE_ID_INVALID",
    }
)
EXPIRED_CODES = frozenset({"CONSENT_EXPIRED"})
RATE_LIMIT_CODES = frozenset({"ACCESS_EXCEEDED"})
UNAVAILABLE_CODES = frozenset({"SERVICE_BLOCKED"})
PERIOD_CODES = frozenset({"PERIOD_INVALID"})
UNKNOWN_RESOURCE_CODES = frozenset({"RESOURCE_UNKNOWN"})


class PeriodInvalid(PeriodTooLong):
    """``PERIOD_INVALID``: the bank refused the requested date range; ask again with at most ``max_days``."""

    def __init__(self, bank_id: str, message: str, max_days: int = UNATTENDED_MAX_DAYS) -> None:
        super().__init__(bank_id, message, max_days, "dateFrom")


class ResourceUnknown(AccountVanished):
    """``RESOURCE_UNKNOWN``: the addressed resource (an account) is unknown to the bank under this consent."""


@dataclass(frozen=True, slots=True)
class TppMessage:
    code: str
    text: str
    category: str


def tpp_messages(body: Any) -> list[TppMessage]:
    """The ``tppMessages`` of an error body; tolerant of the singular and top-level shapes banks use."""
    if not isinstance(body, dict):
        return []
    raw: Any = body.get("tppMessages")
    if raw is None:
        raw = body.get("tppMessage")
    if raw is None and ("code" in body or "errorCode" in body):
        raw = [body]
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        return []
    out: list[TppMessage] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        code = item.get("code") or item.get("errorCode") or ""
        text = item.get("text") or item.get("message") or ""
        out.append(
            TppMessage(
                code=str(code).strip().upper(),
                text=str(text)[:200],
                category=str(item.get("category") or "ERROR"),
            )
        )
    return out


def first_code(messages: Iterable[TppMessage], codes: frozenset[str]) -> TppMessage | None:
    for message in messages:
        if message.code in codes:
            return message
    return None
