from __future__ import annotations

import asyncio
import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from ledgerlink.config import FortnoxSettings
from ledgerlink.fortnox.client import (
    FortnoxClient,
    FortnoxOAuth,
    InMemoryTokenProvider,
    TokenSet,
    VoucherDraft,
    VoucherDraftRow,
    dumps_json,
    open_items_at,
    total_open,
)
from ledgerlink.fortnox.errors import (
    FortnoxAuthError,
    FortnoxRequestError,
    FortnoxTransientError,
    FortnoxUncertainError,
)
from ledgerlink.ratelimit import SlidingWindowLimiter
from ledgerlink.sandbox.fortnox import SandboxFortnox
from ledgerlink.sandbox.fortnox_state import (
    ERR_ACCOUNT_INACTIVE,
    ERR_ACCOUNT_NOT_FOUND,
    ERR_LOCKED_PERIOD,
    ERR_NO_FINANCIAL_YEAR,
    ERR_SERIES_MISSING,
    ERR_SERIES_NOT_MANUAL,
    ERR_TOO_FEW_ROWS,
    ERR_UNBALANCED,
)
from ledgerlink.sie import read_document
from tests.fortnox.conftest import make_settings
from tests.fortnox.test_ratelimit import max_in_any_window

YEAR_END = dt.date(2025, 12, 31)


def draft(description: str = "Bokslutsjustering", **overrides: object) -> VoucherDraft:
    values: dict[str, object] = {
        "series": "A",
        "transaction_date": YEAR_END,
        "description": description,
        "rows": (
            VoucherDraftRow(6110, debit=Decimal("1250.5")),
            VoucherDraftRow(1930, credit=Decimal("1250.50")),
        ),
    }
    values.update(overrides)
    return VoucherDraft(**values)  # type: ignore[arg-type]


async def test_reads_are_typed_and_decimal(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    info = await client.company_information()
    assert info.company_name == sandbox.company.name
    assert info.database_number == str(sandbox.company.database_number)

    years = await client.financial_years()
    assert [(y.from_date, y.to_date) for y in years] == [
        (dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
        (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ]
    current = await client.financial_year_for(dt.date(2025, 6, 1))
    assert current is not None and current.id == years[1].id
    assert await client.financial_year_for(dt.date(2030, 1, 1)) is None

    accounts = {a.number: a for a in await client.accounts(current.id)}
    assert set(accounts) == set(sandbox.company.accounts)
    ib, ub, _ = sandbox.company.balances(current.id)
    assert accounts[1510].balance_carried_forward == ub[1510]
    assert accounts[1930].balance_brought_forward == ib[1930]
    assert isinstance(accounts[1930].balance_brought_forward, Decimal)
    assert accounts[6991].active is False

    series = {s.code: s for s in await client.voucher_series(current.id)}
    assert series["A"].manual and not series["B"].manual
    assert await client.locked_period() == sandbox.company.locked_until


async def test_paging_follows_meta_information(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    expected = [v for v in sandbox.company.vouchers if v.year_id == 2]
    assert len(expected) > 100
    vouchers = await client.vouchers(2)
    assert len(vouchers) == len(expected)
    # Force small pages: four pages of 40 must give the same result.
    import ledgerlink.fortnox.client.api as api

    original = api.PAGE_LIMIT
    api.PAGE_LIMIT = 40
    try:
        paged = await client.vouchers(2)
    finally:
        api.PAGE_LIMIT = original
    assert [(v.series, v.number) for v in paged] == [(v.series, v.number) for v in vouchers]
    assert sandbox.counters.by_path["GET /3/vouchers"] == 1 + (len(expected) + 39) // 40

    a_only = await client.vouchers(2, series="A", from_date=dt.date(2025, 3, 1), to_date=dt.date(2025, 3, 31))
    assert a_only and all(v.series == "A" and v.transaction_date.month == 3 for v in a_only)

    one = await client.voucher(a_only[0].series, a_only[0].number, 2)
    assert len(one.rows) >= 2
    assert sum(r.debit for r in one.rows) == sum(r.credit for r in one.rows)


async def test_create_voucher_posts_two_decimal_numbers(
    client: FortnoxClient, sandbox: SandboxFortnox
) -> None:
    body = dumps_json(draft().to_json())
    assert '"Debit":1250.50' in body
    assert json.loads(body, parse_float=Decimal)["Voucher"]["VoucherRows"][1]["Credit"] == Decimal("1250.50")

    before = sandbox.company.next_number(2, "A")
    created = await client.create_voucher(draft("Periodisering hyra"))
    assert (created.series, created.number, created.year) == ("A", before, 2)
    stored = sandbox.vouchers_described("Periodisering hyra")
    assert len(stored) == 1
    assert [(r.account, r.debit, r.credit) for r in stored[0].rows] == [
        (6110, Decimal("1250.50"), Decimal("0.00")),
        (1930, Decimal("0.00"), Decimal("1250.50")),
    ]


@pytest.mark.parametrize(
    ("overrides", "code", "needle"),
    [
        (
            {"rows": (VoucherDraftRow(6110, debit=Decimal(100)), VoucherDraftRow(1930, credit=Decimal(99)))},
            ERR_UNBALANCED,
            "balans",
        ),
        ({"rows": (VoucherDraftRow(6110, debit=Decimal(100)),)}, ERR_TOO_FEW_ROWS, "två rader"),
        (
            {"rows": (VoucherDraftRow(9999, debit=Decimal(1)), VoucherDraftRow(1930, credit=Decimal(1)))},
            ERR_ACCOUNT_NOT_FOUND,
            "Kunde inte hitta konto",
        ),
        (
            {"rows": (VoucherDraftRow(6991, debit=Decimal(1)), VoucherDraftRow(1930, credit=Decimal(1)))},
            ERR_ACCOUNT_INACTIVE,
            "inte aktivt",
        ),
        ({"series": "B"}, ERR_SERIES_NOT_MANUAL, "inte manuell (B)"),
        ({"series": "Q"}, ERR_SERIES_MISSING, "finns inte"),
        ({"transaction_date": dt.date(2031, 1, 1)}, ERR_NO_FINANCIAL_YEAR, "räkenskapsår"),
        ({"transaction_date": dt.date(2024, 6, 30)}, ERR_LOCKED_PERIOD, "låst perioden t.o.m. 2024-12-31"),
    ],
)
async def test_voucher_validation_errors_carry_fortnox_code(
    client: FortnoxClient, sandbox: SandboxFortnox, overrides: dict[str, object], code: int, needle: str
) -> None:
    count = len(sandbox.company.vouchers)
    with pytest.raises(FortnoxRequestError) as excinfo:
        await client.create_voucher(draft(**overrides))
    error = excinfo.value
    assert (error.code, error.status, error.endpoint) == (code, 400, "POST /3/vouchers")
    assert needle in error.message
    assert len(sandbox.company.vouchers) == count


async def test_5xx_and_429_are_retried(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    sandbox.faults.fail_next("/3/companyinformation", 2, status=503)
    sandbox.faults.fail_next("/3/companyinformation", 1, status=429, retry_after="0")
    info = await client.company_information()
    assert info.company_name == sandbox.company.name
    assert sandbox.counters.by_path["GET /3/companyinformation"] == 4


async def test_persistent_5xx_becomes_transient_error(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    sandbox.faults.fail_next("/3/financialyears", 10, status=500)
    with pytest.raises(FortnoxTransientError) as excinfo:
        await client.financial_years()
    assert excinfo.value.status == 500
    assert sandbox.counters.by_path["GET /3/financialyears"] == client.max_attempts


async def test_voucher_post_429_is_retried_but_500_is_uncertain(
    client: FortnoxClient, sandbox: SandboxFortnox
) -> None:
    sandbox.faults.fail_next("/3/vouchers", 1, status=429, method="POST")
    await client.create_voucher(draft("Efter 429"))
    assert len(sandbox.vouchers_described("Efter 429")) == 1

    sandbox.faults.fail_next("/3/vouchers", 1, status=500, method="POST")
    with pytest.raises(FortnoxUncertainError):
        await client.create_voucher(draft("Efter 500"))
    assert sandbox.counters.by_path["POST /3/vouchers"] == 3


async def test_401_refreshes_once_and_retries(
    client: FortnoxClient, sandbox: SandboxFortnox, provider: InMemoryTokenProvider
) -> None:
    old = await provider.get_access_token()
    sandbox.expire_access_tokens()
    info = await client.company_information()
    assert info.company_name == sandbox.company.name
    assert sandbox.counters.refresh_grants == 1
    assert provider.tokens.access_token != old


async def test_second_401_is_auth_error(
    settings: FortnoxSettings, transport: httpx.ASGITransport, limiter: SlidingWindowLimiter
) -> None:
    class Useless:
        """A provider whose tokens Fortnox never accepts."""

        refreshes = 0

        async def get_access_token(self) -> str:
            return "unknown-token"

        async def refresh_access_token(self, rejected_token: str) -> str:
            self.refreshes += 1
            return "another-unknown-token"

    tokens = Useless()
    fortnox = FortnoxClient(settings=settings, token_provider=tokens, limiter=limiter, transport=transport)
    try:
        with pytest.raises(FortnoxAuthError):
            await fortnox.company_information()
    finally:
        await fortnox.aclose()
    assert tokens.refreshes == 1


async def test_dead_refresh_token_is_auth_error(
    client: FortnoxClient, sandbox: SandboxFortnox, provider: InMemoryTokenProvider, oauth: FortnoxOAuth
) -> None:
    await oauth.revoke(provider.tokens.refresh_token)
    sandbox.expire_access_tokens()
    with pytest.raises(FortnoxAuthError) as excinfo:
        await client.company_information()
    assert getattr(excinfo.value, "error", None) == "invalid_grant"


async def test_request_error_maps_error_information(client: FortnoxClient) -> None:
    with pytest.raises(FortnoxRequestError) as excinfo:
        await client.voucher("A", 99999, 2)
    assert excinfo.value.status == 404
    assert excinfo.value.code == 2000434
    assert excinfo.value.endpoint == "GET /3/vouchers/A/99999"


async def test_error_information_with_capitalised_keys() -> None:
    """Fortnox also answers ``{"ErrorInformation": {"Error": 1, "Message": ..., "Code": ...}}``."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"ErrorInformation": {"Error": 1, "Message": "Kan inte hitta fakturan.", "Code": "2000434"}}
        return httpx.Response(404, json=body)

    class Tokens:
        async def get_access_token(self) -> str:
            return "t"

        async def refresh_access_token(self, rejected_token: str) -> str:
            return "t"

    class NoLimit:
        async def acquire(self) -> None:
            return None

    fortnox = FortnoxClient(
        settings=make_settings(),
        token_provider=Tokens(),
        limiter=NoLimit(),
        transport=httpx.MockTransport(handler),
    )
    try:
        with pytest.raises(FortnoxRequestError) as excinfo:
            await fortnox.invoices()
    finally:
        await fortnox.aclose()
    assert (excinfo.value.code, excinfo.value.message) == (2000434, "Kan inte hitta fakturan.")


async def test_read_timeouts_are_retried_then_transient(
    settings: FortnoxSettings, provider: InMemoryTokenProvider, limiter: SlidingWindowLimiter
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow", request=request)

    async def no_sleep(_: float) -> None:
        return None

    fortnox = FortnoxClient(
        settings=settings,
        token_provider=provider,
        limiter=limiter,
        transport=httpx.MockTransport(handler),
        sleep=no_sleep,
        max_attempts=3,
    )
    try:
        with pytest.raises(FortnoxTransientError):
            await fortnox.company_information()
    finally:
        await fortnox.aclose()
    assert calls == 3


class AcceptThenDrop(httpx.AsyncBaseTransport):
    """Delivers the request to the sandbox, then loses the response (as a dropped connection would)."""

    def __init__(self, inner: httpx.ASGITransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST":
            await response.aread()
            raise httpx.ReadTimeout("response lost", request=request)
        return response


async def test_voucher_timeout_after_acceptance_is_uncertain_and_not_retried(
    settings: FortnoxSettings,
    provider: InMemoryTokenProvider,
    limiter: SlidingWindowLimiter,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    fortnox = FortnoxClient(
        settings=settings, token_provider=provider, limiter=limiter, transport=AcceptThenDrop(transport)
    )
    try:
        with pytest.raises(FortnoxUncertainError):
            await fortnox.create_voucher(draft("Tappat svar"))
    finally:
        await fortnox.aclose()
    assert len(sandbox.vouchers_described("Tappat svar")) == 1
    assert sandbox.counters.by_path["POST /3/vouchers"] == 1


async def test_voucher_stalled_after_acceptance_hits_the_deadline(
    provider: InMemoryTokenProvider,
    limiter: SlidingWindowLimiter,
    transport: httpx.ASGITransport,
    sandbox: SandboxFortnox,
) -> None:
    sandbox.faults.stall_after_accept(1, seconds=30)
    fortnox = FortnoxClient(
        settings=make_settings(timeout_seconds=0.3),
        token_provider=provider,
        limiter=limiter,
        transport=transport,
    )
    try:
        with pytest.raises(FortnoxUncertainError):
            await fortnox.create_voucher(draft("Hängande svar"))
        # Looking it up afterwards finds exactly one voucher.
        found = [v for v in await fortnox.vouchers(2, series="A") if v.description == "Hängande svar"]
    finally:
        await fortnox.aclose()
    assert len(found) == 1
    assert len(sandbox.vouchers_described("Hängande svar")) == 1
    assert sandbox.counters.created_vouchers == 1


async def test_sie_export_ties_to_open_items(client: FortnoxClient, sandbox: SandboxFortnox) -> None:
    raw = await client.sie_export(2)
    assert raw.startswith(b"#FLAGGA")
    assert "Sandlådan".encode("cp437") in raw
    document = read_document(raw)
    ub = {(b.year, b.account): b.amount for b in document.closing_balances}

    customers = open_items_at(await client.invoices(), await client.invoice_payments(), YEAR_END)
    suppliers = open_items_at(
        await client.supplier_invoices(), await client.supplier_invoice_payments(), YEAR_END
    )
    assert total_open(customers) == ub[(0, "1510")]
    assert total_open(suppliers) == -ub[(0, "2440")]
    assert any(item.open_amount < 0 for item in customers)  # the credit invoice counts, negatively

    # The two-query reconstruction the import job uses gives the same items.
    assert await client.customer_open_items_at(YEAR_END) == customers
    assert await client.supplier_open_items_at(YEAR_END) == suppliers
    # And the previous year end ties to that year's closing balance too.
    previous = await client.customer_open_items_at(dt.date(2024, 12, 31))
    assert total_open(previous) == ub[(-1, "1510")]


async def test_shared_limiter_keeps_three_clients_under_fortnox_limit(
    sandbox_app: FastAPI,
    sandbox: SandboxFortnox,
    provider: InMemoryTokenProvider,
    redis: Redis,
    limiter_key: str,
    transport: httpx.ASGITransport,
) -> None:
    """3 clients × 40 calls at the real 25 per 5 s: Fortnox never answers 429."""
    assert sandbox.enforce_rate_limit
    settings = make_settings()
    clients = [
        FortnoxClient(
            settings=settings,
            token_provider=provider,
            limiter=SlidingWindowLimiter(
                redis, limiter_key, settings.requests_per_window, settings.window_seconds
            ),
            transport=transport,
        )
        for _ in range(3)
    ]

    async def job(fortnox: FortnoxClient) -> None:
        for _ in range(40):
            await fortnox.locked_period()

    try:
        await asyncio.gather(*(job(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    assert sandbox.counters.rate_limited == 0
    assert sandbox.counters.by_path["GET /3/settings/lockedperiod"] == 120
    assert max_in_any_window(sandbox.request_times, 5.0) <= 25


async def test_without_limiter_the_sandbox_answers_429(
    sandbox: SandboxFortnox, provider: InMemoryTokenProvider, transport: httpx.ASGITransport
) -> None:
    """The control experiment: the same burst without the shared limiter is throttled."""

    class NoLimit:
        async def acquire(self) -> None:
            return None

    async def no_sleep(_: float) -> None:
        return None

    fortnox = FortnoxClient(
        settings=make_settings(),
        token_provider=provider,
        limiter=NoLimit(),
        transport=transport,
        sleep=no_sleep,
        max_attempts=1,
    )
    try:
        results = await asyncio.gather(*(fortnox.locked_period() for _ in range(30)), return_exceptions=True)
    finally:
        await fortnox.aclose()
    assert sum(isinstance(r, FortnoxTransientError) for r in results) == 5
    assert sandbox.counters.rate_limited == 5


def test_token_set_from_response() -> None:
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    tokens = TokenSet.from_token_response(
        {"access_token": "a", "refresh_token": "r", "expires_in": 3600, "scope": "bookkeeping"}, now=now
    )
    assert tokens.expires_at == now + dt.timedelta(hours=1)
    assert tokens.scope == "bookkeeping"
    with pytest.raises(FortnoxAuthError):
        TokenSet.from_token_response({"access_token": "a"})
