"""The one Fortnox API v3 client: rate-limited, retrying, token-refreshing, typed.

Every request first takes a slot from the shared limiter (25 requests / 5 s per Fortnox client and
tenant). Then:

* 429, 503 and other 5xx are retried with exponential back-off and jitter, honouring ``Retry-After``,
  up to ``max_attempts``; after that :class:`FortnoxTransientError`.
* 401 asks the token provider to refresh once and retries; a second 401 is :class:`FortnoxAuthError`.
* Other 4xx become :class:`FortnoxRequestError` with Fortnox's ``ErrorInformation`` code and message.
* Transport errors and timeouts are retried for reads. For a write (``POST /3/vouchers``) only a
  failure *before* the request left (connect errors, pool timeouts) and a 429/503 are retried; a
  timeout or dropped connection after sending, or a 500/502/504, raises
  :class:`FortnoxUncertainError`: the voucher may exist, so the caller must look before it leaps.

Each attempt also runs under an overall deadline (``settings.timeout_seconds``) because httpx's
timeouts are per read/write, not per request.

Every path is a declared resource (:mod:`~ledgerlink.fortnox.client.scopes` says which scope it
needs, and the authorization asks for all of them); values put into a path (a voucher series) are
percent-encoded as one segment, so no input can add segments or climb out of the resource.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypedDict, Unpack

import httpx

from ledgerlink.config import FortnoxSettings
from ledgerlink.fortnox.client.metrics import count_call
from ledgerlink.fortnox.client.models import (
    Account,
    CompanyInformation,
    CreatedVoucher,
    FinancialYear,
    FortnoxParseError,
    Invoice,
    Payment,
    SupplierInvoice,
    Voucher,
    VoucherDraft,
    VoucherSeries,
    get_ci,
    parse_date,
    parse_int,
)
from ledgerlink.fortnox.client.oauth import TokenProvider
from ledgerlink.fortnox.client.open_items import OpenItem, may_be_open_at, open_items_at
from ledgerlink.fortnox.client.scopes import scope_for
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxInvalidRequest,
    FortnoxRequestError,
    FortnoxTransientError,
    FortnoxUncertainError,
)
from ledgerlink.ratelimit import Limiter

PAGE_LIMIT = 500
RETRYABLE_BEFORE_PROCESSING = frozenset({429, 503})
"""Statuses that mean the request was not processed, so even a write may be sent again."""

# Transport failures that happen before the request reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Sleep = Callable[[float], Awaitable[None]]


def dumps_json(value: Any) -> str:
    """JSON with ``Decimal`` written as a plain number (``1250.00``), never through ``float``."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def loads_json(content: bytes) -> Any:
    """Fortnox JSON with every fractional number as ``Decimal``."""
    return json.loads(content, parse_float=Decimal)


class FortnoxClient:
    """Typed access to one Fortnox company (the tenant behind ``token_provider``)."""

    def __init__(
        self,
        *,
        settings: FortnoxSettings,
        token_provider: TokenProvider,
        limiter: Limiter,
        transport: httpx.AsyncBaseTransport | None = None,
        max_attempts: int = 5,
        backoff_base_seconds: float = 0.5,
        backoff_max_seconds: float = 8.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.tokens = token_provider
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=settings.api_base_url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout_seconds, connect=min(10.0, settings.timeout_seconds)),
            headers={"Accept": "application/json"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> FortnoxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport --------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """One logical request with limiter, retries, refresh-on-401 and error mapping."""
        scope_for(path)  # only declared resources: their scopes are the ones the connection asks for
        idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE") if idempotent is None else idempotent
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        content = dumps_json(json_body).encode() if json_body is not None else None
        endpoint = f"{method.upper()} {path}"
        token = await self.tokens.get_access_token()
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            await self.limiter.acquire()
            headers = {"Authorization": f"Bearer {token}"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            try:
                async with asyncio.timeout(self.settings.timeout_seconds):
                    response = await self._http.request(
                        method, path, params=query, content=content, headers=headers
                    )
            except (httpx.TransportError, TimeoutError) as exc:
                count_call(path, method, 0)
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise FortnoxUncertainError(
                        f"{type(exc).__name__} after sending {endpoint}; it may have been accepted",
                        endpoint=endpoint,
                    ) from None
                if attempt >= self.max_attempts:
                    raise FortnoxTransientError(
                        f"{type(exc).__name__} on {endpoint} after {attempt} attempts", endpoint=endpoint
                    ) from None
                await self._sleep(self._backoff(attempt))
                continue

            status = response.status_code
            count_call(path, method, status)
            if status < 400:
                return response
            if status == 401:
                if refreshed:
                    raise FortnoxAuthError(
                        "Fortnox rejected a freshly refreshed access token", endpoint=endpoint, status=401
                    )
                token = await self.tokens.refresh_access_token(token)
                refreshed = True
                attempt -= 1  # an authentication round trip is not a failed attempt
                continue
            if status == 429 or status >= 500:
                if not idempotent and status not in RETRYABLE_BEFORE_PROCESSING:
                    raise FortnoxUncertainError(
                        f"HTTP {status} on {endpoint}; it may have been accepted",
                        endpoint=endpoint,
                        status=status,
                    )
                if attempt >= self.max_attempts:
                    raise FortnoxTransientError(
                        f"HTTP {status} on {endpoint} after {attempt} attempts",
                        endpoint=endpoint,
                        status=status,
                    )
                await self._sleep(self._retry_delay(response, attempt))
                continue
            raise _request_error(response, endpoint)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max_seconds * 4) + random.uniform(0, 0.1)
        return self._backoff(attempt)

    async def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = await self.request("GET", path, params=params)
        return _decode(response)

    async def get_pages(
        self, path: str, collection: str, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Every item of a paged list, following ``MetaInformation`` (``@TotalPages`` may be 0)."""
        items: list[Any] = []
        page = 1
        while True:
            data = await self.get_json(path, {**(params or {}), "limit": PAGE_LIMIT, "page": page})
            chunk = get_ci(data, collection) or []
            if not isinstance(chunk, list):
                raise FortnoxParseError(f"{collection} is not a list", endpoint=f"GET {path}")
            items.extend(chunk)
            meta = get_ci(data, "MetaInformation") or {}
            total_pages = parse_int(get_ci(meta, "@TotalPages"), default=1)
            current = parse_int(get_ci(meta, "@CurrentPage"), default=page)
            if current >= total_pages or not chunk:
                return items
            page = current + 1

    # -- company and bookkeeping ------------------------------------------------------------------

    async def company_information(self) -> CompanyInformation:
        data = await self.get_json("/3/companyinformation")
        return CompanyInformation.from_json(_unwrap(data, "CompanyInformation"))

    async def financial_years(self, *, date: dt.date | None = None) -> list[FinancialYear]:
        """All financial years, or the one containing ``date`` (empty when none exists for it)."""
        params = {"date": date} if date else None
        rows = await self.get_pages("/3/financialyears", "FinancialYears", params)
        return sorted((FinancialYear.from_json(r) for r in rows), key=lambda y: y.from_date)

    async def financial_year_for(self, date: dt.date) -> FinancialYear | None:
        years = [y for y in await self.financial_years(date=date) if y.contains(date)]
        return years[0] if years else None

    async def accounts(self, financial_year_id: int) -> list[Account]:
        rows = await self.get_pages("/3/accounts", "Accounts", {"financialyear": financial_year_id})
        return [Account.from_json(r) for r in rows]

    async def voucher_series(self, financial_year_id: int) -> list[VoucherSeries]:
        rows = await self.get_pages(
            "/3/voucherseries", "VoucherSeriesCollection", {"financialyear": financial_year_id}
        )
        return [VoucherSeries.from_json(r) for r in rows]

    async def locked_period(self) -> dt.date | None:
        """The last locked date, or None when no period is locked."""
        data = await self.get_json("/3/settings/lockedperiod")
        return parse_date(get_ci(_unwrap(data, "LockedPeriod"), "EndDate"))

    async def sie_export(self, financial_year_id: int, sie_type: int = 4) -> bytes:
        """The raw SIE file (CP437 bytes) for one financial year."""
        response = await self.request(
            "GET", f"/3/sie/{sie_type}", params={"financialyear": financial_year_id}
        )
        return response.content

    async def vouchers(
        self,
        financial_year_id: int,
        *,
        series: str | None = None,
        from_date: dt.date | None = None,
        to_date: dt.date | None = None,
    ) -> list[Voucher]:
        """Voucher headers (Fortnox lists no rows; use :meth:`voucher` or the SIE export for rows)."""
        path = f"/3/vouchers/sublist/{path_segment(series)}" if series else "/3/vouchers"
        params = {"financialyear": financial_year_id, "fromdate": from_date, "todate": to_date}
        rows = await self.get_pages(path, "Vouchers", params)
        return [Voucher.from_json(r) for r in rows]

    async def voucher(self, series: str, number: int, financial_year_id: int) -> Voucher:
        path = f"/3/vouchers/{path_segment(series)}/{int(number)}"
        data = await self.get_json(path, {"financialyear": financial_year_id})
        return Voucher.from_json(_unwrap(data, "Voucher"))

    async def create_voucher(
        self, draft: VoucherDraft, *, financial_year_id: int | None = None
    ) -> CreatedVoucher:
        """``POST /3/vouchers``. Never retried once it may have reached Fortnox (see module docstring)."""
        params = {"financialyear": financial_year_id} if financial_year_id else None
        response = await self.request("POST", "/3/vouchers", params=params, json_body=draft.to_json())
        created = Voucher.from_json(_unwrap(_decode(response), "Voucher"))
        return CreatedVoucher(series=created.series, number=created.number, year=created.year)

    # -- invoices ---------------------------------------------------------------------------------

    async def invoices(self, **filters: Unpack[InvoiceFilters]) -> list[Invoice]:
        """Customer invoices; dates filter on invoice date, ``filter`` is Fortnox's (``unpaid``, ...)."""
        return [
            Invoice.from_json(r)
            for r in await self.get_pages("/3/invoices", "Invoices", _invoice_params(filters))
        ]

    async def invoice_payments(self, *, invoice_number: str | None = None) -> list[Payment]:
        return await self._payments(supplier=False, invoice_number=invoice_number)

    async def supplier_invoices(self, **filters: Unpack[InvoiceFilters]) -> list[SupplierInvoice]:
        """Supplier invoices, filtered as :meth:`invoices`."""
        rows = await self.get_pages("/3/supplierinvoices", "SupplierInvoices", _invoice_params(filters))
        return [SupplierInvoice.from_json(r) for r in rows]

    async def supplier_invoice_payments(self, *, invoice_number: str | None = None) -> list[Payment]:
        return await self._payments(supplier=True, invoice_number=invoice_number)

    async def _payments(self, *, supplier: bool, invoice_number: str | None) -> list[Payment]:
        path, collection = _payments_resource(supplier)
        rows = await self.get_pages(path, collection, {"invoicenumber": invoice_number})
        payments = [Payment.from_json(r) for r in rows]
        # Fortnox's text search matches substrings (1 also finds 10, 21): keep exact matches only.
        return [p for p in payments if invoice_number is None or p.invoice_number == invoice_number]

    async def customer_open_items_at(self, year_end: dt.date) -> list[OpenItem]:
        """Customer invoices open at ``year_end`` (the 1510 specification)."""
        return await self._open_items_at(year_end, supplier=False)

    async def supplier_open_items_at(self, year_end: dt.date) -> list[OpenItem]:
        """Supplier invoices open at ``year_end`` (the 2440 specification, amounts positive)."""
        return await self._open_items_at(year_end, supplier=True)

    async def _open_items_at(self, year_end: dt.date, *, supplier: bool) -> list[OpenItem]:
        """THE year-end open-items computation; its calls depend on what was open at ``year_end``.

        1. Candidates, filtered by Fortnox (one ``filter`` per request, so two lists): invoices dated
           on or before ``year_end`` that are unpaid today, and those finally paid after ``year_end``.
        2. A candidate whose ``Balance`` still equals its ``Total`` has no payment: open for ``Total``.
           Every other candidate needs its payments, and we know how much they add up to today
           (``Total - Balance``), so we know when we have all of them.
        3. Those payments come from the payment listing read from its LAST page backwards (newest
           registered first: the payments of invoices open at a recent year end are recent), until
           every candidate's payments are complete; or, once the candidates still incomplete are no
           more than the pages already read, by one ``invoicenumber`` look-up each. Either way the
           calls grow with the invoices open at the year end and the payments registered since the
           first payment of the oldest of them, never with the rest of the company's history.
        """
        fetch: Callable[..., Awaitable[Sequence[Invoice | SupplierInvoice]]] = (
            self.supplier_invoices if supplier else self.invoices
        )
        unpaid = await fetch(filter="unpaid", to_date=year_end)
        paid_later = await fetch(to_date=year_end, from_final_pay_date=year_end + dt.timedelta(days=1))
        merged = {inv.document_number: inv for inv in [*unpaid, *paid_later]}
        candidates = [inv for inv in merged.values() if may_be_open_at(inv, year_end)]
        # What each candidate's payments (with write-offs) add up to today.
        expected = {
            inv.document_number: inv.total - inv.balance for inv in candidates if inv.balance != inv.total
        }
        payments = await self._payments_adding_up_to(expected, supplier=supplier)
        return open_items_at(candidates, payments, year_end)

    async def _payments_adding_up_to(self, expected: dict[str, Decimal], *, supplier: bool) -> list[Payment]:
        """The payments of the invoices in ``expected`` (invoice number -> what they settle in all).

        Page 1 of the listing, then its pages from the last one backwards, each invoice complete once
        its payments add up to what it expects; one look-up per incomplete invoice instead as soon as
        they are fewer than the pages left to read (so never many more calls than the cheaper way).
        """
        path, collection = _payments_resource(supplier)
        lookup = self.supplier_invoice_payments if supplier else self.invoice_payments
        found: dict[str, list[Payment]] = {number: [] for number in expected}
        incomplete = set(expected)
        page, unread = 1, 1  # pages left that may hold payments we need (page 1 is read first)
        while incomplete and unread > 0:
            if len(incomplete) < unread or (page == 1 and len(incomplete) == 1):
                for number in sorted(incomplete):
                    found[number] = await lookup(invoice_number=number)
                break
            data = await self.get_json(path, {"limit": PAGE_LIMIT, "page": page})
            chunk = get_ci(data, collection) or []
            if not isinstance(chunk, list):
                raise FortnoxParseError(f"{collection} is not a list", endpoint=f"GET {path}")
            for row in chunk:
                payment = Payment.from_json(row)
                if payment.invoice_number in found:
                    found[payment.invoice_number].append(payment)
            for number in list(incomplete):
                if sum((p.settled for p in found[number]), Decimal(0)) == expected[number]:
                    incomplete.discard(number)
            if page == 1:  # page 1 tells how many pages there are: go on from the last one backwards
                meta = get_ci(data, "MetaInformation") or {}
                page = parse_int(get_ci(meta, "@TotalPages"), default=1) if chunk else 1
            else:
                page -= 1
            unread = page - 1  # pages 2..page
        return [p for payments in found.values() for p in payments]


def _payments_resource(supplier: bool) -> tuple[str, str]:
    """The payment listing of supplier or customer invoices: its path and its collection key."""
    if supplier:
        return "/3/supplierinvoicepayments", "SupplierInvoicePayments"
    return "/3/invoicepayments", "InvoicePayments"


def path_segment(value: str) -> str:
    """``value`` as ONE percent-encoded path segment (``/``, ``?``, ``#``, ``%`` and non-ASCII escaped);
    empty, ``.`` and ``..`` are refused (:class:`FortnoxInvalidRequest`, never sent): they name no
    resource of their own."""
    text = str(value)
    if text.strip() in ("", ".", ".."):
        raise FortnoxInvalidRequest(f"{text[:40]!r} cannot be a path segment", endpoint="path")
    return urllib.parse.quote(text, safe="")


class InvoiceFilters(TypedDict, total=False):
    """The invoice list filters: Fortnox's ``filter`` (one at a time) and date ranges."""

    filter: str | None
    from_date: dt.date | None
    to_date: dt.date | None
    from_final_pay_date: dt.date | None
    to_final_pay_date: dt.date | None


_INVOICE_PARAMS = {
    "filter": "filter",
    "from_date": "fromdate",
    "to_date": "todate",
    "from_final_pay_date": "fromfinalpaydate",
    "to_final_pay_date": "tofinalpaydate",
}


def _invoice_params(filters: InvoiceFilters) -> dict[str, Any]:
    return {_INVOICE_PARAMS[name]: value for name, value in filters.items()}


def _param(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return loads_json(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        endpoint = f"{response.request.method} {response.request.url.path}"
        raise FortnoxParseError(
            "response is not JSON", endpoint=endpoint, status=response.status_code
        ) from exc


def _unwrap(data: Any, key: str) -> Mapping[str, Any]:
    inner = get_ci(data, key) if isinstance(data, Mapping) else None
    if not isinstance(inner, Mapping):
        raise FortnoxParseError(f"response has no {key} object")
    return inner


def _request_error(response: httpx.Response, endpoint: str) -> FortnoxRequestError:
    message = f"HTTP {response.status_code}"
    code = 0
    try:
        data = loads_json(response.content) if response.content else {}
    except (ValueError, UnicodeDecodeError):
        data = {}
    if isinstance(data, Mapping):
        info = get_ci(data, "ErrorInformation")
        source = info if isinstance(info, Mapping) else data
        message = str(get_ci(source, "message", None) or get_ci(source, "error_description", None) or message)
        try:
            code = parse_int(get_ci(source, "code", 0))
        except FortnoxParseError:
            code = 0
    return FortnoxRequestError(message, code=code, status=response.status_code, endpoint=endpoint)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - dt.datetime.now(dt.UTC)).total_seconds()


__all__ = ["PAGE_LIMIT", "FortnoxClient", "dumps_json", "loads_json", "path_segment"]
