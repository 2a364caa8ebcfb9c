"""The sandbox Fortnox's API v3 below ``/3/``: Bearer auth (401 ``{"message": "unauthorized"}``), the
scope each resource needs (403 ``2000663``), the rate limit (429), ``MetaInformation`` paging,
Fortnox's ``ErrorInformation`` errors, the SIE 4E export and ``POST /3/vouchers`` with Fortnox's
validation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ledgerlink.sandbox.fortnox_data import SandboxCompany
from ledgerlink.sandbox.fortnox_records import SandboxInvoice, SandboxRow, SandboxVoucher
from ledgerlink.sandbox.fortnox_state import (
    ERR_ACCOUNT_INACTIVE,
    ERR_ACCOUNT_NOT_FOUND,
    ERR_INVALID_FILTER,
    ERR_INVALID_PARAMETER,
    ERR_JSON,
    ERR_LOCKED_PERIOD,
    ERR_NO_DATA,
    ERR_NO_FINANCIAL_YEAR,
    ERR_NOT_FOUND,
    ERR_SCOPE,
    ERR_SERIES_MISSING,
    ERR_SERIES_NOT_MANUAL,
    ERR_TOO_FEW_ROWS,
    ERR_UNBALANCED,
    RESOURCE_SCOPES,
    FortnoxAPIError,
    SandboxFortnox,
    error_response,
)
from ledgerlink.sie import dumps_sie


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


def api_router(state: SandboxFortnox) -> APIRouter:
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
        resource = local.removeprefix("/3/").split("/", 1)[0]
        needed = RESOURCE_SCOPES.get(resource)
        if needed is not None and needed not in grant.scope.split():
            raise FortnoxAPIError(403, ERR_SCOPE, f"Har inte behörighet för scope ({needed}).")
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


def install_error_handlers(app: FastAPI) -> None:
    """``ErrorInformation`` for API errors; 401 and 429 are not ``ErrorInformation`` at Fortnox: answer
    them as Fortnox does."""

    @app.exception_handler(FortnoxAPIError)
    async def _api_error(_: Request, exc: FortnoxAPIError) -> Response:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, __: _Unauthorized) -> Response:
        return JSONResponse({"message": "unauthorized"}, status_code=401)

    @app.exception_handler(_TooMany)
    async def _too_many(_: Request, exc: _TooMany) -> Response:
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        return JSONResponse({"message": "Too Many Requests"}, status_code=429, headers=headers)


# -- helpers ---------------------------------------------------------------------------------------


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


__all__ = ["api_router", "install_error_handlers"]
