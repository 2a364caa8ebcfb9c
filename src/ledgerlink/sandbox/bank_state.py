"""The sandbox bank's records and their wire forms: consents and authorisations, the scenario of a PSU,
Berlin Group's ``tppMessages`` errors, and the JSON the state file keeps (see :mod:`ledgerlink.sandbox.bank`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.responses import JSONResponse

from ledgerlink.sandbox.bank_data import CURRENCY
from ledgerlink.sandbox.scenarios import BANK_SCENARIOS

PAGE_SIZE = 50
MAX_VALIDITY_DAYS = 90
MAX_HISTORY_DAYS = 730
UNATTENDED_HISTORY_DAYS = 89
SCENARIOS = frozenset(BANK_SCENARIOS)


def scenario_of(psu_id: str | None) -> str | None:
    if not psu_id:
        return None
    head = psu_id.strip().casefold().split("-", 1)[0]
    return head if head in SCENARIOS else None


def tpp_error(status: int, code: str, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"tppMessages": [{"category": "ERROR", "code": code, "text": text}]}
    return JSONResponse(body, status_code=status, headers=headers)


class TppError(Exception):
    def __init__(self, status: int, code: str, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.response = tpp_error(status, code, text, headers)


@dataclasses.dataclass
class Authorisation:
    id: str
    psu_id: str | None
    polls: int = 0
    status: str = "received"


@dataclasses.dataclass
class Consent:
    id: str
    psu_id: str
    created: dt.date
    valid_until: dt.date
    frequency_per_day: int
    sca_approach: str
    redirect_uri: str | None
    nok_redirect_uri: str | None
    status: str = "received"
    code: str | None = None
    authorisations: dict[str, Authorisation] = dataclasses.field(default_factory=dict)
    listings: int = 0
    ais_calls: int = 0
    usage: dict[tuple[str, str, dt.date], int] = dataclasses.field(default_factory=dict)

    @property
    def scenario(self) -> str | None:
        return scenario_of(self.psu_id)


def balance_json(kind: str, amount: Any, day: dt.date) -> dict[str, Any]:
    return {
        "balanceType": kind,
        "balanceAmount": {"amount": format(amount, "f"), "currency": CURRENCY},
        "referenceDate": day.isoformat(),
    }


def break_rows(report: dict[str, Any]) -> None:
    """The ``malformed`` scenario: an amount and a date no parser can read."""
    booked = report["booked"]
    if booked:
        booked[0]["transactionAmount"]["amount"] = "12,5O kr"
    if len(booked) > 1:
        booked[-1]["bookingDate"] = "2024-13-45"


def consent_json(consent: Consent) -> dict[str, Any]:
    data = dataclasses.asdict(consent)
    data["created"] = consent.created.isoformat()
    data["valid_until"] = consent.valid_until.isoformat()
    data["usage"] = [
        [endpoint, account, day.isoformat(), n] for (endpoint, account, day), n in consent.usage.items()
    ]
    return data


def consent_from_json(data: dict[str, Any]) -> Consent:
    fields = dict(data)
    fields["created"] = dt.date.fromisoformat(data["created"])
    fields["valid_until"] = dt.date.fromisoformat(data["valid_until"])
    fields["authorisations"] = {k: Authorisation(**v) for k, v in data["authorisations"].items()}
    fields["usage"] = {(e, a, dt.date.fromisoformat(d)): int(n) for e, a, d, n in data["usage"]}
    return Consent(**fields)


def add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


__all__ = [
    "MAX_HISTORY_DAYS",
    "MAX_VALIDITY_DAYS",
    "PAGE_SIZE",
    "SCENARIOS",
    "UNATTENDED_HISTORY_DAYS",
    "Authorisation",
    "Consent",
    "TppError",
    "add_query",
    "balance_json",
    "break_rows",
    "consent_from_json",
    "consent_json",
    "scenario_of",
    "tpp_error",
]
