"""The scopes a connection asks for cover every endpoint the client calls (the sandbox enforces Fortnox's
scope table), and no input becomes more than one segment of a Fortnox URL path."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ledgerlink.config import FortnoxSettings
from ledgerlink.fortnox.client import FortnoxClient, FortnoxOAuth, InMemoryTokenProvider, TokenSet
from ledgerlink.fortnox.client.api import path_segment
from ledgerlink.fortnox.client.scopes import ENDPOINT_SCOPES, requested_scopes, scope_for
from ledgerlink.fortnox.errors import FortnoxError, FortnoxInvalidRequest, FortnoxRequestError
from ledgerlink.ratelimit import SlidingWindowLimiter
from ledgerlink.sandbox.fortnox import SandboxFortnox
from tests.fortnox.test_client import YEAR_END, draft

REDIRECT = "https://app.example.test/callback"


class Recording(httpx.AsyncBaseTransport):
    """The sandbox's transport, keeping the raw path of every request sent through it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.raw_paths: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.raw_paths.append(request.url.raw_path.split(b"?")[0])
        return await self.inner.handle_async_request(request)


async def authorized_tokens(oauth: FortnoxOAuth, transport: httpx.AsyncBaseTransport) -> TokenSet:
    """The real round trip: the authorize URL we build, approved as asked, the code exchanged."""
    url = oauth.authorization_url(REDIRECT, "s")
    async with httpx.AsyncClient(transport=transport) as browser:
        back = await browser.get(url + "&approve=1")
    assert back.status_code == 302
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    return await oauth.exchange_code(code, REDIRECT)


@pytest.fixture
async def recording(transport: httpx.ASGITransport) -> Recording:
    return Recording(transport)


@pytest.fixture
async def authorized_client(
    settings: FortnoxSettings,
    oauth: FortnoxOAuth,
    recording: Recording,
    limiter: SlidingWindowLimiter,
) -> AsyncIterator[FortnoxClient]:
    provider = InMemoryTokenProvider(oauth, await authorized_tokens(oauth, recording))
    async with FortnoxClient(
        settings=settings, token_provider=provider, limiter=limiter, transport=recording
    ) as client:
        yield client


async def test_the_authorization_asks_for_every_scope_the_client_calls(
    authorized_client: FortnoxClient, sandbox: SandboxFortnox, settings: FortnoxSettings
) -> None:
    """Every client method, with the scopes a user grants for OUR authorize URL, against a sandbox that
    refuses a resource without its scope (as Fortnox does): nothing is refused, and every resource the
    client declares was called."""
    client = authorized_client
    granted = set(requested_scopes(settings.scopes).split())
    assert {"payment", "bookkeeping", "invoice", "supplierinvoice"} <= granted

    await client.company_information()
    year = await client.financial_year_for(dt.date(2025, 6, 1))
    assert year is not None
    await client.accounts(year.id)
    await client.voucher_series(year.id)
    await client.locked_period()
    await client.sie_export(year.id)
    headers = await client.vouchers(year.id, series="A")
    await client.voucher(headers[0].series, headers[0].number, year.id)
    await client.create_voucher(draft())
    await client.invoice_payments(invoice_number="1")
    await client.supplier_invoice_payments(invoice_number="1")
    await client.customer_open_items_at(YEAR_END)
    await client.supplier_open_items_at(YEAR_END)

    called = {path.split(" ", 1)[1] for path in sandbox.counters.by_path}
    for resource in ENDPOINT_SCOPES:
        assert any(p == resource or p.startswith(resource + "/") for p in called), resource
    assert {scope_for(p) for p in called} <= granted


async def test_the_sandbox_refuses_a_resource_outside_the_granted_scopes(
    settings: FortnoxSettings,
    oauth: FortnoxOAuth,
    transport: httpx.ASGITransport,
    limiter: SlidingWindowLimiter,
    sandbox: SandboxFortnox,
) -> None:
    """What the look-alike found: a connection without ``payment`` cannot read invoice payments."""
    without_payment = " ".join(s for s in requested_scopes(settings.scopes).split() if s != "payment")
    tokens = TokenSet.from_token_response(sandbox.issue_tokens(scope=without_payment))
    async with FortnoxClient(
        settings=settings,
        token_provider=InMemoryTokenProvider(oauth, tokens),
        limiter=limiter,
        transport=transport,
    ) as client:
        await client.company_information()
        with pytest.raises(FortnoxRequestError) as refused:
            await client.invoice_payments()
    assert refused.value.status == 403 and refused.value.code == 2000663


async def test_the_client_calls_no_undeclared_resource(authorized_client: FortnoxClient) -> None:
    with pytest.raises(FortnoxError, match="no scope is declared"):
        await authorized_client.get_json("/3/customers")
    with pytest.raises(FortnoxError):
        scope_for("/3/invoicesx")


@pytest.mark.parametrize("series", ["ÅÄÖ/../x", "../../3/companyinformation", "A?x=1#y", "A%2F..", "A B"])
async def test_a_voucher_series_is_one_escaped_path_segment(
    authorized_client: FortnoxClient, recording: Recording, series: str
) -> None:
    with pytest.raises(FortnoxRequestError):
        await authorized_client.voucher(series, 1, 2)
    outcome: object
    try:
        outcome = await authorized_client.vouchers(2, series=series)
    except FortnoxRequestError as exc:
        outcome = exc.status
    assert outcome in ([], 404)  # an unknown series, or not found where the server decodes the slash
    sent = recording.raw_paths[-2:]
    assert sent[0] == b"/3/vouchers/" + path_segment(series).encode() + b"/1"
    assert sent[1] == b"/3/vouchers/sublist/" + path_segment(series).encode()
    for raw in sent:
        segments = raw.split(b"/")
        assert b".." not in segments and b"." not in segments
        assert len(segments) == 5  # "", "3", "vouchers", then series and number, or "sublist" and series


@pytest.mark.parametrize("value", [" ", ".", ".."])
async def test_a_segment_that_names_no_resource_is_refused_unsent(
    authorized_client: FortnoxClient, sandbox: SandboxFortnox, value: str
) -> None:
    with pytest.raises(FortnoxInvalidRequest, match="path segment"):
        path_segment(value)
    sent = sandbox.counters.api_requests
    with pytest.raises(FortnoxRequestError):  # what callers already handle as "Fortnox refused it"
        await authorized_client.vouchers(2, series=value)
    assert sandbox.counters.api_requests == sent
    with pytest.raises(FortnoxInvalidRequest):
        path_segment("")  # (an empty series is no filter: vouchers() then lists every series)
