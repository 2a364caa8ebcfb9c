"""The sandbox Fortnox's state: its tenant, the OAuth grants, counters, injected faults, rate windows,
and the state file that keeps grants and posted vouchers across restarts (see :mod:`ledgerlink.sandbox.fortnox`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from ledgerlink.logging import get_logger
from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sandbox.fortnox_records import SandboxRow, SandboxVoucher

log = get_logger(__name__)

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 600
STATE_VERSION = 1

ERR_LOCKED_PERIOD = 2000401
ERR_ACCOUNT_NOT_FOUND = 2001304
ERR_INVALID_PARAMETER = 2000588
ERR_INVALID_FILTER = 2000587
ERR_NO_DATA = 2001392
ERR_JSON = 2002115
ERR_NOT_FOUND = 2000434
ERR_UNBALANCED = 2004001
ERR_ACCOUNT_INACTIVE = 2004002
ERR_SERIES_MISSING = 2004003
ERR_SERIES_NOT_MANUAL = 2004004
ERR_NO_FINANCIAL_YEAR = 2004005
ERR_TOO_FEW_ROWS = 2004006
ERR_SCOPE = 2000663

RESOURCE_SCOPES: dict[str, str] = {
    "companyinformation": "companyinformation",
    "settings": "settings",
    "financialyears": "bookkeeping",
    "accounts": "bookkeeping",
    "voucherseries": "bookkeeping",
    "vouchers": "bookkeeping",
    "sie": "bookkeeping",
    "invoices": "invoice",
    "invoicepayments": "payment",
    "supplierinvoices": "supplierinvoice",
    "supplierinvoicepayments": "payment",
}
"""What Fortnox's scope table says each resource (the first segment below ``/3/``) needs."""
ALL_SCOPES = " ".join(sorted(set(RESOURCE_SCOPES.values())))

Clock = Callable[[], dt.datetime]


class FortnoxAPIError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"ErrorInformation": {"error": 1, "message": message, "code": code}}, status_code=status
    )


@dataclass
class Counters:
    api_requests: int = 0
    rate_limited: int = 0
    token_requests: int = 0
    refresh_grants: int = 0
    created_vouchers: int = 0
    by_path: Counter[str] = field(default_factory=Counter)


@dataclass
class _Fault:
    path: str
    method: str | None
    remaining: int
    status: int = 503
    retry_after: str | None = None
    stall_seconds: float = 0.0


class SandboxFaults:
    """Fault injection. A fault applies to requests whose path (below the mount) starts with ``path``."""

    def __init__(self) -> None:
        self._faults: list[_Fault] = []

    def fail_next(
        self,
        path: str,
        count: int = 1,
        *,
        status: int = 503,
        method: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """The next ``count`` matching requests answer ``status`` (with ``Retry-After`` if given)."""
        self._faults.append(_Fault(path, method, count, status=status, retry_after=retry_after))

    def stall_after_accept(self, count: int = 1, seconds: float = 60.0) -> None:
        """The next ``count`` ``POST /3/vouchers`` create the voucher, then wait ``seconds`` to answer."""
        self._faults.append(_Fault("/3/vouchers", "POST", count, status=201, stall_seconds=seconds))

    def clear(self) -> None:
        self._faults.clear()

    def take(self, method: str, path: str, *, stall: bool) -> _Fault | None:
        for fault in self._faults:
            if (
                fault.remaining > 0
                and path.startswith(fault.path)
                and (fault.method is None or fault.method == method)
                and (fault.stall_seconds > 0) == stall
            ):
                fault.remaining -= 1
                return fault
        return None


@dataclass
class AuthCode:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: dt.datetime
    used: bool = False


@dataclass
class Grant:
    client_id: str
    scope: str
    expires_at: dt.datetime | None = None
    used: bool = False
    revoked: bool = False


class SandboxFortnox:
    """The sandbox's state: one tenant (``company``), OAuth grants, counters, faults, rate windows."""

    def __init__(
        self,
        company: SandboxCompany,
        *,
        enforce_rate_limit: bool = True,
        requests_per_window: int = 25,
        window_seconds: float = 5.0,
        clock: Clock | None = None,
        clients: dict[str, str] | None = None,
        access_token_seconds: int = ACCESS_TOKEN_SECONDS,
    ) -> None:
        self.company = company
        self.access_token_seconds = access_token_seconds
        self.enforce_rate_limit = enforce_rate_limit
        self.requests_per_window = requests_per_window
        self.window_seconds = window_seconds
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.clients = clients or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.counters = Counters()
        self.request_times: list[float] = []
        """``time.monotonic()`` of every ``/3/`` request's arrival, including those answered 429."""
        self.faults = SandboxFaults()
        self._windows: dict[tuple[str, int], deque[float]] = {}
        self.posted: list[SandboxVoucher] = []
        """The vouchers ``POST /3/vouchers`` booked (also in ``company.vouchers``)."""
        self.state_path: Path | None = None
        self._base_fingerprint = ""

    # -- persistence ------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the grants and the posted vouchers to ``state_path`` (tmp file, then rename), if set.

        Access tokens already expired are left out: unknown or expired, the API answers 401 alike."""
        if self.state_path is None:
            return
        now = self.clock()
        state = {
            "version": STATE_VERSION,
            "company": self._base_fingerprint,
            "access_tokens": {
                token: _grant_json(grant)
                for token, grant in self.access_tokens.items()
                if grant.expires_at is None or grant.expires_at > now
            },
            "refresh_tokens": {token: _grant_json(grant) for token, grant in self.refresh_tokens.items()},
            "vouchers": [_voucher_state_json(v) for v in self.posted],
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        tmp.replace(self.state_path)

    def load(self, path: Path) -> None:
        """Use ``path`` as the state file, restoring the grants and vouchers a previous process saved
        there for this same company. Anything unreadable or incompatible: start afresh."""
        self.state_path = path
        self._base_fingerprint = _company_fingerprint(self.company)
        if not path.exists():
            return
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state["version"] != STATE_VERSION:
                raise ValueError("another version")
            if state["company"] != self._base_fingerprint:
                raise ValueError("another company")
            access = {str(t): _grant_from_json(g) for t, g in state["access_tokens"].items()}
            refresh = {str(t): _grant_from_json(g) for t, g in state["refresh_tokens"].items()}
            vouchers = [_voucher_from_state_json(v) for v in state["vouchers"]]
            _check_vouchers_fit(self.company, vouchers)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            # never the content: it holds tokens
            log.warning("sandbox.fortnox.state_discarded", path=str(path), reason=type(exc).__name__)
            return
        self.access_tokens.update(access)
        self.refresh_tokens.update(refresh)
        self.company.vouchers.extend(vouchers)
        self.posted.extend(vouchers)

    # -- OAuth helpers ----------------------------------------------------------------------------

    def issue_tokens(self, client_id: str = DEFAULT_CLIENT_ID, scope: str | None = None) -> dict[str, Any]:
        """A fresh token pair, as if the user had approved ``scope`` (every scope by default; for tests
        and benchmarks)."""
        scope = ALL_SCOPES if scope is None else scope
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        lifetime = self.access_token_seconds
        self.access_tokens[access] = Grant(
            client_id, scope, expires_at=self.clock() + dt.timedelta(seconds=lifetime)
        )
        self.refresh_tokens[refresh] = Grant(client_id, scope)
        self.save()
        return {
            "access_token": access,
            "refresh_token": refresh,
            "scope": scope,
            "expires_in": lifetime,
            "token_type": "bearer",
        }

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (the next API call gets 401)."""
        for grant in self.access_tokens.values():
            grant.expires_at = self.clock() - dt.timedelta(seconds=1)
        self.save()

    def vouchers_described(self, description: str) -> list[SandboxVoucher]:
        return [v for v in self.company.vouchers if v.description == description]

    def check_rate(self, client_id: str) -> bool:
        """Record one request against the (client, tenant) window; False when over the limit."""
        window = self._windows.setdefault((client_id, self.company.database_number), deque())
        now = time.monotonic()
        while window and now - window[0] >= self.window_seconds:
            window.popleft()
        if len(window) >= self.requests_per_window:
            return False
        window.append(now)
        return True


# -- state file -----------------------------------------------------------------------------------


def _grant_json(grant: Grant) -> dict[str, Any]:
    return {
        "client_id": grant.client_id,
        "scope": grant.scope,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at is not None else None,
        "used": grant.used,
        "revoked": grant.revoked,
    }


def _grant_from_json(data: dict[str, Any]) -> Grant:
    expires_at = data["expires_at"]
    return Grant(
        client_id=str(data["client_id"]),
        scope=str(data["scope"]),
        expires_at=dt.datetime.fromisoformat(expires_at) if expires_at is not None else None,
        used=bool(data["used"]),
        revoked=bool(data["revoked"]),
    )


def _voucher_state_json(v: SandboxVoucher) -> dict[str, Any]:
    return {
        "series": v.series, "number": v.number, "year_id": v.year_id, "date": v.date.isoformat(),
        "description": v.description, "reference_type": v.reference_type,
        "reference_number": v.reference_number,
        "rows": [[r.account, str(r.debit), str(r.credit), r.text] for r in v.rows],
    }  # fmt: skip


def _voucher_from_state_json(data: dict[str, Any]) -> SandboxVoucher:
    rows = [
        SandboxRow(int(account), Decimal(debit), Decimal(credit), str(text))
        for account, debit, credit, text in data["rows"]
    ]
    return SandboxVoucher(
        series=str(data["series"]),
        number=int(data["number"]),
        year_id=int(data["year_id"]),
        date=dt.date.fromisoformat(data["date"]),
        description=str(data["description"]),
        rows=rows,
        reference_type=str(data["reference_type"]),
        reference_number=str(data["reference_number"]),
    )


def _check_vouchers_fit(company: SandboxCompany, vouchers: list[SandboxVoucher]) -> None:
    """Saved vouchers must fall in the company's years and series, each number unused."""
    taken = {(v.year_id, v.series, v.number) for v in company.vouchers}
    for v in vouchers:
        year = company.year(v.year_id)
        key = (v.year_id, v.series, v.number)
        if year is None or not year.contains(v.date) or company.series_for(v.series) is None or key in taken:
            raise ValueError("a saved voucher does not fit the company")
        taken.add(key)


def _company_fingerprint(company: SandboxCompany) -> str:
    """Identifies the generated company the saved vouchers were booked on (a new seed, size or
    generator makes the saved state incompatible)."""
    digest = hashlib.sha256()
    digest.update(f"{company.database_number}|{company.org_number}|{company.locked_until}".encode())
    for y in company.years:
        digest.update(f"|y{y.id}:{y.from_date}:{y.to_date}".encode())
    for s in company.series:
        digest.update(f"|s{s.code}:{s.manual}".encode())
    for n in sorted(company.accounts):
        digest.update(f"|a{n}".encode())
    for v in company.vouchers:
        digest.update(f"|v{v.year_id}:{v.series}:{v.number}:{v.date}".encode())
        for r in v.rows:
            digest.update(f":{r.account}:{r.debit}:{r.credit}".encode())
    return digest.hexdigest()
