"""The sandbox Fortnox: an ASGI app that behaves like Fortnox's OAuth server and API v3.

``create_sandbox_fortnox_app()`` serves, relative to wherever it is mounted (the dev app mounts it at
``/sandbox/fortnox``):

* ``GET /oauth-v1/auth`` (an authorize page; ``approve=1`` / ``deny=1`` redirect at once),
  ``POST /oauth-v1/token`` (authorization_code and refresh_token grants, HTTP Basic client auth, access
  tokens valid one hour, rotating single-use refresh tokens), ``POST /oauth-v1/revoke``;
* the ``/3/`` endpoints the client uses, with Bearer auth (401 ``{"message": "unauthorized"}``),
  ``MetaInformation`` paging, Fortnox's ``ErrorInformation`` errors, the SIE 4E export and
  ``POST /3/vouchers`` with Fortnox's validation;
* 25 requests per 5 s per (client, tenant), enforced with 429 when ``enforce_rate_limit``.

Tests and benchmarks read ``app.state.fortnox`` (:class:`SandboxFortnox`): ``counters``, every request's
arrival time, ``faults`` (make the next N calls to a path fail, or accept a voucher and then stall),
``issue_tokens()`` to skip the browser step and ``expire_access_tokens()``.

With ``state_path`` (the embedded ``make run`` passes ``./var/sandbox-fortnox.json``) the sandbox keeps
what Fortnox keeps across its own restarts: the OAuth grants (access tokens with their expiry, refresh
tokens with their used/revoked flags; not authorization codes, which live ten minutes) and the vouchers
posted through ``POST /3/vouchers``, with their numbers. The company itself is regenerated (it is
deterministic) and the posted vouchers are booked on it again; the file is rewritten atomically after
every change. A file that cannot be read, or was written for another company, is ignored (the sandbox
starts afresh, so connections ask for a new login). Without ``state_path`` everything is in memory.

Error codes: 2000401, 2001304, 2000588, 2000587, 2001392 and 2002115 are Fortnox's documented codes.
Fortnox documents no codes for an unbalanced voucher, an inactive account, a missing or non-manual
series or a date outside every financial year; the sandbox uses 2004001-2004006 for those, with the
Swedish messages Fortnox shows.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import html
import json
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ledgerlink.logging import get_logger
from ledgerlink.sandbox.fortnox_data import SandboxCompany, SandboxInvoice, SandboxRow, SandboxVoucher
from ledgerlink.sie import dumps_sie

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

Clock = Callable[[], dt.datetime]


class FortnoxAPIError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"ErrorInformation": {"error": 1, "message": message, "code": code}}, status_code=status
    )


def _json(data: Any, status: int = 200) -> Response:
    return Response(_dumps(data), status_code=status, media_type="application/json")


def _dumps(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumps(v) for v in value) + "]"
    if isinstance(value, dt.date):
        return json.dumps(value.isoformat())
    return json.dumps(value, ensure_ascii=False)


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
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: dt.datetime
    used: bool = False


@dataclass
class _Grant:
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
    ) -> None:
        self.company = company
        self.enforce_rate_limit = enforce_rate_limit
        self.requests_per_window = requests_per_window
        self.window_seconds = window_seconds
        self.clock: Clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.clients = clients or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.codes: dict[str, _Code] = {}
        self.access_tokens: dict[str, _Grant] = {}
        self.refresh_tokens: dict[str, _Grant] = {}
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

    def issue_tokens(self, client_id: str = DEFAULT_CLIENT_ID, scope: str = "") -> dict[str, Any]:
        """A fresh token pair, as if the user had approved (for tests and benchmarks)."""
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = _Grant(
            client_id, scope, expires_at=self.clock() + dt.timedelta(seconds=ACCESS_TOKEN_SECONDS)
        )
        self.refresh_tokens[refresh] = _Grant(client_id, scope)
        self.save()
        return {
            "access_token": access,
            "refresh_token": refresh,
            "scope": scope,
            "expires_in": ACCESS_TOKEN_SECONDS,
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


def create_sandbox_fortnox_app(
    *,
    company: SandboxCompany | None = None,
    enforce_rate_limit: bool = True,
    clock: Clock | None = None,
    requests_per_window: int = 25,
    window_seconds: float = 5.0,
    state_path: Path | None = None,
) -> FastAPI:
    """Build a sandbox Fortnox for ``company`` (``SandboxCompany.generate()`` by default).

    ``state_path``: a JSON file that keeps the grants and posted vouchers across restarts (the embedded
    ``make run``); ``company`` must then be generated the same way each time.
    """
    state = SandboxFortnox(
        company or SandboxCompany.generate(),
        enforce_rate_limit=enforce_rate_limit,
        clock=clock,
        requests_per_window=requests_per_window,
        window_seconds=window_seconds,
    )
    if state_path is not None:
        state.load(state_path)
    app = FastAPI(title="Sandbox Fortnox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.fortnox = state

    @app.exception_handler(FortnoxAPIError)
    async def _api_error(_: Request, exc: FortnoxAPIError) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    _install_plain_errors(app)
    app.include_router(_oauth_router(state), prefix="/oauth-v1")
    app.include_router(_api_router(state), prefix="/3")
    return app


# -- OAuth ----------------------------------------------------------------------------------------


def _oauth_error(status: int, error: str, description: str, media_type: str = "application/json") -> Response:
    # Fortnox sends these JSON bodies with text/html or text/plain content types; so do we.
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status_code=status, media_type=media_type)


def _client_from_basic(state: SandboxFortnox, request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    expected = state.clients.get(client_id)
    return client_id if expected is not None and secrets.compare_digest(expected, secret) else None


def _oauth_router(state: SandboxFortnox) -> APIRouter:
    router = APIRouter()

    @router.get("/auth", response_model=None)
    async def authorize(request: Request) -> Response:
        q = request.query_params
        client_id, redirect_uri, state_param = (
            q.get("client_id", ""),
            q.get("redirect_uri", ""),
            q.get("state", ""),
        )
        if client_id not in state.clients or not redirect_uri:
            return HTMLResponse("<h1>Auth code or ClientID supplied is invalid</h1>", status_code=400)

        def back(**params: str) -> Response:
            sep = "&" if "?" in redirect_uri else "?"
            location = f"{redirect_uri}{sep}{urlencode({**params, 'state': state_param})}"
            return RedirectResponse(location, status_code=302)

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if q.get("deny"):
            return back(error="access_denied", error_description="The user denied the request")
        if q.get("approve"):
            code = secrets.token_urlsafe(16)
            state.codes[code] = _Code(
                client_id,
                redirect_uri,
                q.get("scope", ""),
                state.clock() + dt.timedelta(seconds=CODE_SECONDS),
            )
            return back(code=code)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in q.items()
        )
        page = (
            "<!doctype html><html lang=sv><head><meta charset=utf-8><title>Sandbox Fortnox</title></head><body>"
            f"<h1>Sandbox Fortnox</h1><p>{html.escape(state.company.name)} – koppla integrationen "
            f"<b>{html.escape(client_id)}</b> med behörigheterna <code>{html.escape(q.get('scope', ''))}</code>?</p>"
            f'<form method="get" action="auth">{hidden}'
            '<button name="approve" value="1">Godkänn</button> <button name="deny" value="1">Avbryt</button>'
            "</form></body></html>"
        )
        return HTMLResponse(page)

    @router.post("/token", response_model=None)
    async def token(request: Request) -> Response:
        state.counters.token_requests += 1
        client_id = _client_from_basic(state, request)
        if client_id is None:
            return _oauth_error(401, "invalid_client", "The client credentials are invalid", "text/plain")
        form = await request.form()
        grant_type = str(form.get("grant_type", ""))
        now = state.clock()
        if grant_type == "authorization_code":
            code = state.codes.get(str(form.get("code", "")))
            if code is None or code.used or code.expires_at < now or code.client_id != client_id:
                return _oauth_error(400, "invalid_grant", "Invalid authorization code", "text/html")
            code.used = True
            if form.get("redirect_uri", "") != code.redirect_uri:
                return _oauth_error(400, "invalid_grant", "Redirect URI mismatch", "text/html")
            return JSONResponse(state.issue_tokens(client_id, code.scope))
        if grant_type == "refresh_token":
            state.counters.refresh_grants += 1
            grant = state.refresh_tokens.get(str(form.get("refresh_token", "")))
            if grant is None or grant.used or grant.revoked or grant.client_id != client_id:
                return _oauth_error(400, "invalid_grant", "Invalid refresh token", "text/html")
            grant.used = True
            return JSONResponse(state.issue_tokens(client_id, grant.scope))
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type {grant_type!r}")

    @router.post("/revoke", response_model=None)
    async def revoke(request: Request) -> Response:
        client_id = _client_from_basic(state, request)
        if client_id is None:
            return _oauth_error(401, "invalid_client", "The client credentials are invalid", "text/plain")
        form = await request.form()
        grant = state.refresh_tokens.get(str(form.get("token", "")))
        if grant is None or grant.client_id != client_id:
            return _oauth_error(400, "invalid_grant", "Invalid token")
        grant.revoked = True
        state.save()
        return JSONResponse({"revoked": True})

    return router


# -- API v3 ---------------------------------------------------------------------------------------


def _api_router(state: SandboxFortnox) -> APIRouter:
    company = state.company

    async def gate(request: Request) -> None:
        """Bearer auth, the rate limit, counters and injected failures, in Fortnox's order."""
        path = request.url.path
        mount = request.scope.get("root_path", "")
        local = path[len(mount) :] if mount and path.startswith(mount) else path
        state.counters.api_requests += 1
        state.counters.by_path[f"{request.method} {local}"] += 1
        state.request_times.append(time.monotonic())
        header = request.headers.get("authorization", "")
        grant = state.access_tokens.get(header[7:]) if header.lower().startswith("bearer ") else None
        if (
            grant is None
            or grant.revoked
            or (grant.expires_at is not None and grant.expires_at <= state.clock())
        ):
            raise _Unauthorized
        if state.enforce_rate_limit and not state.check_rate(grant.client_id):
            state.counters.rate_limited += 1
            raise _TooMany(None)
        fault = state.faults.take(request.method, local, stall=False)
        if fault is not None:
            if fault.status == 429:
                state.counters.rate_limited += 1
                raise _TooMany(fault.retry_after)
            raise FortnoxAPIError(fault.status, 1000003, "System exception")

    router = APIRouter(dependencies=[Depends(gate)])

    @router.get("/companyinformation")
    async def company_information() -> Response:
        return _json({"CompanyInformation": {
            "Address": company.address, "City": company.city, "CompanyName": company.name,
            "CountryCode": "SE", "DatabaseNumber": company.database_number,
            "OrganizationNumber": company.org_number, "ZipCode": company.zip_code,
        }})  # fmt: skip

    @router.get("/financialyears")
    async def financial_years(request: Request) -> Response:
        day = _date_param(request, "date")
        years = [y for y in company.years if day is None or y.contains(day)]
        items = [_year_json(y) for y in years]
        return _json(_page(request, "FinancialYears", items))

    @router.get("/financialyears/{year_id}")
    async def financial_year(year_id: int) -> Response:
        year = company.year(year_id)
        if year is None:
            raise FortnoxAPIError(404, ERR_NOT_FOUND, "Kan inte hitta räkenskapsåret.")
        return _json({"FinancialYear": _year_json(year)})

    @router.get("/accounts")
    async def accounts(request: Request) -> Response:
        year_id = _year_param(request)
        ib, ub, _ = company.balances(year_id)
        items = [
            {
                "@url": f"/3/accounts/{a.number}", "Number": a.number, "Description": a.description,
                "Active": a.active_in(year_id), "BalanceBroughtForward": ib.get(a.number, Decimal(0)),
                "BalanceCarriedForward": ub.get(a.number, Decimal(0)), "SRU": int(a.sru) if a.sru else 0,
                "VATCode": "", "Year": year_id,
            }
            for a in sorted(company.accounts.values(), key=lambda a: a.number)
        ]  # fmt: skip
        return _json(_page(request, "Accounts", items))

    @router.get("/voucherseries")
    async def voucher_series(request: Request) -> Response:
        year_id = _year_param(request)
        items = [
            {"Code": s.code, "Description": s.description, "Manual": s.manual, "Year": year_id,
             "NextVoucherNumber": company.next_number(year_id, s.code)}
            for s in company.series
        ]  # fmt: skip
        return _json(_page(request, "VoucherSeriesCollection", items))

    @router.get("/settings/lockedperiod")
    async def locked_period() -> Response:
        end = company.locked_until.isoformat() if company.locked_until else ""
        return _json({"LockedPeriod": {"EndDate": end}})

    @router.get("/sie/{sie_type}")
    async def sie_export(request: Request, sie_type: int) -> Response:
        if sie_type != 4:
            raise FortnoxAPIError(400, ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet.")
        document = company.to_sie(_year_param(request), generated=state.clock().date())
        return Response(dumps_sie(document, "4E"), media_type="application/octet-stream")

    @router.get("/invoices")
    async def invoices(request: Request) -> Response:
        rows = _filter_invoices(company, company.invoices, request)
        return _json(_page(request, "Invoices", [_invoice_json(company, i) for i in rows]))

    @router.get("/supplierinvoices")
    async def supplier_invoices(request: Request) -> Response:
        rows = _filter_invoices(company, company.supplier_invoices, request)
        return _json(_page(request, "SupplierInvoices", [_invoice_json(company, i) for i in rows]))

    @router.get("/invoicepayments")
    async def invoice_payments(request: Request) -> Response:
        return _json(_page(request, "InvoicePayments", _payments_json(company.invoice_payments, request)))

    @router.get("/supplierinvoicepayments")
    async def supplier_invoice_payments(request: Request) -> Response:
        items = _payments_json(company.supplier_payments, request)
        return _json(_page(request, "SupplierInvoicePayments", items))

    @router.get("/vouchers")
    async def vouchers(request: Request) -> Response:
        return _json(_page(request, "Vouchers", _voucher_list(company, request, None)))

    @router.get("/vouchers/sublist/{series}")
    async def voucher_sublist(request: Request, series: str) -> Response:
        return _json(_page(request, "Vouchers", _voucher_list(company, request, series)))

    @router.get("/vouchers/{series}/{number}")
    async def voucher(request: Request, series: str, number: int) -> Response:
        year_id = _year_param(request)
        for v in company.vouchers:
            if v.series == series and v.number == number and v.year_id == year_id:
                return _json({"Voucher": _voucher_json(v, rows=True)})
        raise FortnoxAPIError(404, ERR_NOT_FOUND, "Kan inte hitta verifikationen.")

    @router.post("/vouchers")
    async def create_voucher(request: Request) -> Response:
        created = _create_voucher(company, await request.body())
        state.posted.append(created)
        state.save()
        state.counters.created_vouchers += 1
        body = _json({"Voucher": _voucher_json(created, rows=True)}, status=201)
        fault = state.faults.take("POST", "/3/vouchers", stall=True)
        if fault is not None:
            await asyncio.sleep(fault.stall_seconds)
        return body

    return router


class _Unauthorized(FortnoxAPIError):
    def __init__(self) -> None:
        super().__init__(401, 0, "unauthorized")


class _TooMany(FortnoxAPIError):
    def __init__(self, retry_after: str | None) -> None:
        super().__init__(429, 0, "Too Many Requests")
        self.retry_after = retry_after


def _install_plain_errors(app: FastAPI) -> None:
    """401 and 429 are not ``ErrorInformation`` at Fortnox: answer them as Fortnox does."""

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, __: _Unauthorized) -> Response:
        return JSONResponse({"message": "unauthorized"}, status_code=401)

    @app.exception_handler(_TooMany)
    async def _too_many(_: Request, exc: _TooMany) -> Response:
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        return JSONResponse({"message": "Too Many Requests"}, status_code=429, headers=headers)


# -- state file -----------------------------------------------------------------------------------


def _grant_json(grant: _Grant) -> dict[str, Any]:
    return {
        "client_id": grant.client_id,
        "scope": grant.scope,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at is not None else None,
        "used": grant.used,
        "revoked": grant.revoked,
    }


def _grant_from_json(data: dict[str, Any]) -> _Grant:
    expires_at = data["expires_at"]
    return _Grant(
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


# -- helpers --------------------------------------------------------------------------------------


def _date_param(request: Request, name: str) -> dt.date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise FortnoxAPIError(400, ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet.") from None


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise FortnoxAPIError(400, ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet.") from None


def _year_param(request: Request) -> int:
    """``financialyear`` (an Id), else ``financialyeardate``, else the latest year."""
    company: SandboxCompany = request.app.state.fortnox.company
    year_id = _int_param(request, "financialyear", 0)
    if year_id:
        if company.year(year_id) is None:
            raise FortnoxAPIError(400, ERR_NO_FINANCIAL_YEAR, "Räkenskapsår saknas.")
        return year_id
    day = _date_param(request, "financialyeardate")
    if day is not None:
        year = company.year_for(day)
        if year is None:
            raise FortnoxAPIError(400, ERR_NO_FINANCIAL_YEAR, "Det finns inget räkenskapsår för datumet.")
        return year.id
    return company.current_year.id


def _page(request: Request, key: str, items: list[Any]) -> dict[str, Any]:
    limit = _int_param(request, "limit", 100)
    page = _int_param(request, "page", 1)
    if not 1 <= limit <= 500 or page < 1:
        raise FortnoxAPIError(400, ERR_INVALID_PARAMETER, "Ogiltig parameter i anropet.")
    total_pages = (len(items) + limit - 1) // limit
    chunk = items[(page - 1) * limit : page * limit]
    meta = {"@TotalResources": len(items), "@TotalPages": total_pages, "@CurrentPage": page}
    return {"MetaInformation": meta, key: chunk}


def _year_json(year: Any) -> dict[str, Any]:
    return {
        "@url": f"/3/financialyears/{year.id}", "Id": year.id, "FromDate": year.from_date.isoformat(),
        "ToDate": year.to_date.isoformat(), "AccountChartType": "BAS 2014",
        "AccountingMethod": year.accounting_method,
    }  # fmt: skip


def _filter_invoices(
    company: SandboxCompany, invoices: list[SandboxInvoice], request: Request
) -> list[SandboxInvoice]:
    kind = request.query_params.get("filter")
    known = {"cancelled", "fullypaid", "unpaid", "unpaidoverdue", "unbooked"}
    if kind and kind not in known:
        raise FortnoxAPIError(400, ERR_INVALID_FILTER, "Ogiltigt filter.")
    from_date, to_date = _date_param(request, "fromdate"), _date_param(request, "todate")
    from_final, to_final = _date_param(request, "fromfinalpaydate"), _date_param(request, "tofinalpaydate")
    today = dt.date.today()
    result = []
    for inv in invoices:
        balance, final = company.balance_of(inv), company.final_pay_date(inv)
        if kind == "cancelled" and not inv.cancelled:
            continue
        if kind == "fullypaid" and (inv.cancelled or balance != 0):
            continue
        if kind in ("unpaid", "unpaidoverdue") and (inv.cancelled or balance == 0):
            continue
        if kind == "unpaidoverdue" and inv.due_date >= today:
            continue
        if kind == "unbooked" and (inv.booked or inv.cancelled):
            continue
        if (from_date and inv.invoice_date < from_date) or (to_date and inv.invoice_date > to_date):
            continue
        if (from_final or to_final) and (
            final is None or (from_final and final < from_final) or (to_final and final > to_final)
        ):
            continue
        result.append(inv)
    return result


def _invoice_json(company: SandboxCompany, inv: SandboxInvoice) -> dict[str, Any]:
    final = company.final_pay_date(inv)
    common: dict[str, Any] = {
        "InvoiceDate": inv.invoice_date.isoformat(), "DueDate": inv.due_date.isoformat(),
        "FinalPayDate": final.isoformat() if final else "", "Booked": inv.booked, "Cancelled": inv.cancelled,
        "Currency": "SEK", "CurrencyRate": "1",
    }  # fmt: skip
    v = inv.voucher
    if inv.supplier:  # Fortnox types supplier invoice amounts as strings
        return {
            **common, "GivenNumber": inv.number, "InvoiceNumber": inv.external_number,
            "SupplierNumber": inv.counterparty_number, "SupplierName": inv.counterparty_name,
            "Total": format(inv.total, "f"), "Balance": format(company.balance_of(inv), "f"),
            "VAT": format(inv.vat, "f"), "Credit": inv.credit,
            "VoucherSeries": v.series if v else "", "VoucherNumber": v.number if v else "",
        }  # fmt: skip
    return {
        **common, "@url": f"/3/invoices/{inv.number}", "DocumentNumber": inv.number,
        "CustomerNumber": inv.counterparty_number, "CustomerName": inv.counterparty_name,
        "Total": inv.total, "Balance": company.balance_of(inv), "TotalVAT": inv.vat,
        "Credit": "true" if inv.credit else "false", "CreditInvoiceReference": inv.credit_reference or "0",
        "InvoiceType": "INVOICE", "VoucherSeries": v.series if v else "", "VoucherNumber": v.number if v else "",
        "VoucherYear": v.year_id if v else "",
    }  # fmt: skip


def _payments_json(payments: list[Any], request: Request) -> list[dict[str, Any]]:
    wanted = request.query_params.get("invoicenumber")
    return [
        {
            "Number": p.number, "InvoiceNumber": int(p.invoice_number), "PaymentDate": p.payment_date.isoformat(),
            "Amount": p.amount, "AmountCurrency": p.amount, "Currency": "SEK", "Booked": p.voucher is not None,
            "WriteOffs": [],
        }
        for p in payments
        if not wanted or wanted in p.invoice_number  # Fortnox matches substrings
    ]  # fmt: skip


def _voucher_json(v: SandboxVoucher, *, rows: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "@url": f"/3/vouchers/{v.series}/{v.number}?financialyear={v.year_id}", "VoucherSeries": v.series,
        "VoucherNumber": v.number, "Year": v.year_id, "TransactionDate": v.date.isoformat(),
        "Description": v.description, "ReferenceType": v.reference_type, "ReferenceNumber": v.reference_number,
        "ApprovalState": 0,
    }  # fmt: skip
    if rows:
        data["VoucherRows"] = [
            {"Account": r.account, "Debit": r.debit, "Credit": r.credit, "TransactionInformation": r.text,
             "Description": "", "Removed": False}
            for r in v.rows
        ]  # fmt: skip
    return data


def _voucher_list(company: SandboxCompany, request: Request, series: str | None) -> list[dict[str, Any]]:
    year_id = _year_param(request)
    series = series or request.query_params.get("voucherseries") or None
    from_date, to_date = _date_param(request, "fromdate"), _date_param(request, "todate")
    selected = [
        v
        for v in company.vouchers
        if v.year_id == year_id
        and (series is None or v.series == series)
        and (from_date is None or v.date >= from_date)
        and (to_date is None or v.date <= to_date)
    ]
    selected.sort(key=lambda v: (v.series, v.number))
    return [_voucher_json(v, rows=False) for v in selected]


def _amount(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal(0)
    if isinstance(value, bool):
        raise FortnoxAPIError(400, 2000108, f"Värdet måste vara numeriskt ({value})")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise FortnoxAPIError(400, 2000108, f"Värdet måste vara numeriskt ({value})") from None
    if not amount.is_finite() or amount < 0:
        raise FortnoxAPIError(400, 2000108, f"Värdet måste vara numeriskt ({value})")
    return amount


def _create_voucher(company: SandboxCompany, raw: bytes) -> SandboxVoucher:
    """Validate a ``POST /3/vouchers`` body as Fortnox does and book it."""
    if not raw.strip():
        raise FortnoxAPIError(400, ERR_NO_DATA, "Ingen eller felaktig typ av data.")
    try:
        body = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise FortnoxAPIError(400, ERR_JSON, "Error deserializing JSON: JSON_ERROR_SYNTAX") from None
    data = body.get("Voucher") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise FortnoxAPIError(400, ERR_NO_DATA, "Ingen eller felaktig typ av data.")
    series_code = str(data.get("VoucherSeries") or "")
    description = str(data.get("Description") or "").strip()
    if not description:
        raise FortnoxAPIError(400, ERR_NO_DATA, "Beskrivning måste anges.")
    try:
        day = dt.date.fromisoformat(str(data.get("TransactionDate") or ""))
    except ValueError:
        raise FortnoxAPIError(400, ERR_INVALID_PARAMETER, "Ogiltigt datum (TransactionDate).") from None
    raw_rows = data.get("VoucherRows") or []
    if not isinstance(raw_rows, list) or len(raw_rows) < 2:
        raise FortnoxAPIError(400, ERR_TOO_FEW_ROWS, "En verifikation måste ha minst två rader.")
    year = company.year_for(day)
    if year is None:
        raise FortnoxAPIError(400, ERR_NO_FINANCIAL_YEAR, f"Det finns inget räkenskapsår för datumet {day}.")
    if company.locked_until is not None and day <= company.locked_until:
        raise FortnoxAPIError(
            400,
            ERR_LOCKED_PERIOD,
            f"Bokföringen har låst perioden t.o.m. {company.locked_until.isoformat()}.",
        )
    series = company.series_for(series_code)
    if series is None:
        raise FortnoxAPIError(400, ERR_SERIES_MISSING, f'Verifikationsserien "{series_code}" finns inte.')
    if not series.manual:
        raise FortnoxAPIError(
            400, ERR_SERIES_NOT_MANUAL, f"Verifikationsserien är inte manuell ({series_code})."
        )
    rows: list[SandboxRow] = []
    for item in raw_rows:
        if not isinstance(item, dict):
            raise FortnoxAPIError(400, ERR_NO_DATA, "Ingen eller felaktig typ av data.")
        try:
            number = int(str(item.get("Account")))
        except (TypeError, ValueError):
            raise FortnoxAPIError(400, ERR_ACCOUNT_NOT_FOUND, "Kunde inte hitta konto") from None
        account = company.accounts.get(number)
        if account is None:
            raise FortnoxAPIError(400, ERR_ACCOUNT_NOT_FOUND, f"Kunde inte hitta konto ({number})")
        if not account.active_in(year.id):
            raise FortnoxAPIError(400, ERR_ACCOUNT_INACTIVE, f'Konto "{number}" är inte aktivt')
        debit, credit = _amount(item.get("Debit")), _amount(item.get("Credit"))
        rows.append(SandboxRow(number, debit, credit, str(item.get("TransactionInformation") or "")[:100]))
    if sum((r.debit for r in rows), Decimal(0)) != sum((r.credit for r in rows), Decimal(0)):
        raise FortnoxAPIError(400, ERR_UNBALANCED, "Verifikationen är inte i balans.")
    return company.add_voucher(series.code, day, description[:200], rows)


__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "SandboxCompany",
    "SandboxFaults",
    "SandboxFortnox",
    "create_sandbox_fortnox_app",
    "error_response",
]
