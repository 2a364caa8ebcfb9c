"""The shared Berlin Group adapter end to end against the sandbox bank over httpx.ASGITransport."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.banks.adapters.base import (
    BankAdapter,
    BookingStatus,
    ConnectionContext,
    ConsentExpired,
    ConsentStatus,
    Credentials,
    InvalidResponse,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
    transaction_identities,
)
from ledgerlink.banks.adapters.berlingroup import PeriodInvalid, ResourceUnknown
from ledgerlink.banks.adapters.registry import create_adapter
from ledgerlink.banks.adapters.sandbox import SandboxAdapter
from ledgerlink.config import BankEndpointSettings
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.bank_data import balance_at, sandbox_transactions

TODAY = dt.date(2026, 3, 18)
BASE = "http://bank.sandbox.test/sandbox/bank"
REDIRECT = "http://localhost:3000/callback"
PRESENT = ConnectionContext(account_type="business", psu_ip_address="203.0.113.7")
UNATTENDED = ConnectionContext(account_type="business")


class Clock:
    def __init__(self, today: dt.date) -> None:
        self.today = today

    def __call__(self) -> dt.date:
        return self.today


def mounted(bank: object) -> Starlette:
    return Starlette(routes=[Mount("/sandbox/bank", app=bank)])  # type: ignore[arg-type]


def make_adapter(app: Starlette) -> SandboxAdapter:
    adapter = create_adapter(
        "sandbox", BankEndpointSettings(base_url=BASE), transport=httpx.ASGITransport(app=app)
    )
    assert isinstance(adapter, SandboxAdapter)
    return adapter


@pytest.fixture
def clock() -> Clock:
    return Clock(TODAY)


@pytest.fixture
async def adapter(clock: Clock) -> AsyncIterator[SandboxAdapter]:
    a = make_adapter(mounted(create_sandbox_bank_app(clock=clock, slow_seconds=0.0)))
    yield a
    await a.aclose()


async def approve(adapter: SandboxAdapter, url: str, psu: str | None = None) -> dict[str, list[str]]:
    """Approve at the bank without a browser; returns the query the bank redirects back with."""
    params = {"approve": "1"} | ({"psu": psu} if psu else {})
    response = await adapter.client.get(url, params=params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


async def connect_redirect(
    adapter: SandboxAdapter, psu: str | None = None, ctx: ConnectionContext = PRESENT
) -> Credentials:
    start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state="st-1", sca_method="redirect")
    assert start.method == "redirect"
    assert start.url is not None
    back = await approve(adapter, start.url, psu)
    return await adapter.complete_authorization(
        ctx, start.credentials, code=back["code"][0], redirect_uri=REDIRECT
    )


async def test_adapter_satisfies_the_protocol(adapter: SandboxAdapter) -> None:
    assert isinstance(adapter, BankAdapter)


async def test_redirect_flow_end_to_end(adapter: SandboxAdapter) -> None:
    start = await adapter.start_authorization(
        PRESENT, redirect_uri=REDIRECT, state="st-42", sca_method="redirect"
    )
    assert start.url is not None
    page = await adapter.client.get(start.url)
    assert page.status_code == 200
    assert "Godkänn" in page.text
    back = await approve(adapter, start.url)
    assert back["state"] == ["st-42"]
    creds = await adapter.complete_authorization(
        PRESENT, start.credentials, code=back["code"][0], redirect_uri=REDIRECT
    )

    consent = await adapter.get_consent(PRESENT, creds)
    assert consent.status is ConsentStatus.valid
    assert consent.valid_until == TODAY + dt.timedelta(days=90)  # the bank's cap, read back

    accounts = await adapter.list_accounts(PRESENT, creds)
    assert [a.usage for a in accounts] == ["business", "private", "private"]
    business = accounts[0]
    assert business.currency == "SEK"
    assert business.iban is not None
    assert business.balance is not None
    assert business.balance.amount == balance_at(business.external_id, TODAY - dt.timedelta(days=1))

    date_from = TODAY - dt.timedelta(days=60)
    txs = await adapter.fetch_transactions(PRESENT, creds, business.external_id, date_from, TODAY)
    expected = sandbox_transactions(business.external_id, date_from, TODAY, TODAY)
    assert len(expected) > 50  # at least two pages of 50
    assert list(txs) == expected
    assert {t.booking_status for t in txs} == {BookingStatus.booked, BookingStatus.pending}

    balance = await adapter.fetch_balance(PRESENT, creds, business.external_id)
    assert balance.amount == balance_at(business.external_id, TODAY - dt.timedelta(days=1))

    await adapter.revoke(PRESENT, creds)
    assert (await adapter.get_consent(PRESENT, creds)).status is ConsentStatus.revoked
    with pytest.raises(ReauthRequired):
        await adapter.list_accounts(PRESENT, creds)


async def test_balances_agree_with_transactions(adapter: SandboxAdapter, clock: Clock) -> None:
    creds = await connect_redirect(adapter)
    account = (await adapter.list_accounts(PRESENT, creds))[1].external_id
    before = await adapter.fetch_balance(PRESENT, creds, account)
    clock.today = TODAY + dt.timedelta(days=5)
    after = await adapter.fetch_balance(PRESENT, creds, account)
    window = await adapter.fetch_transactions(
        PRESENT, creds, account, TODAY, clock.today - dt.timedelta(days=1)
    )
    booked = sum((t.amount for t in window if t.booking_status is BookingStatus.booked), Decimal("0"))
    assert after.amount - before.amount == booked


async def test_pending_rows_book_a_day_later_under_another_id(adapter: SandboxAdapter, clock: Clock) -> None:
    creds = await connect_redirect(adapter)
    account = (await adapter.list_accounts(PRESENT, creds))[0].external_id
    window = (TODAY - dt.timedelta(days=3), TODAY + dt.timedelta(days=3))
    today_rows = await adapter.fetch_transactions(PRESENT, creds, account, *window)
    pending = [t for t in today_rows if t.booking_status is BookingStatus.pending]
    assert pending
    clock.today = TODAY + dt.timedelta(days=3)
    later = await adapter.fetch_transactions(PRESENT, creds, account, *window)
    booked_ids = {t.provider_id for t in later if t.booking_status is BookingStatus.booked}
    for row in pending:
        assert row.provider_id not in booked_ids
        assert any(
            t.booking_status is BookingStatus.booked
            and t.amount == row.amount
            and t.description == row.description
            for t in later
        )


async def test_same_window_returns_the_same_rows(adapter: SandboxAdapter) -> None:
    creds = await connect_redirect(adapter)
    account = (await adapter.list_accounts(PRESENT, creds))[0].external_id
    first = await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=20), TODAY)
    second = await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=20), TODAY)
    assert first == second


async def test_decoupled_flow_finalises_after_polls(clock: Clock) -> None:
    adapter = make_adapter(mounted(create_sandbox_bank_app(clock=clock, decoupled_polls=3)))
    ctx = ConnectionContext(account_type="private", psu_id="199001011234", psu_ip_address="203.0.113.7")
    start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state="s", sca_method="decoupled")
    assert start.method == "decoupled"
    assert start.autostart_token
    assert start.credentials.extra["authorisation_id"]
    statuses = [(await adapter.get_authorization_status(ctx, start.credentials)).status for _ in range(3)]
    assert statuses == ["pending", "pending", "finalised"]
    consent = await adapter.get_consent(ctx, start.credentials)
    assert consent.status is ConsentStatus.valid
    accounts = await adapter.list_accounts(ctx, start.credentials)
    assert all(a.external_id.endswith("199001011234") for a in accounts)
    await adapter.aclose()


async def test_decoupled_rejected_psu_fails(clock: Clock) -> None:
    adapter = make_adapter(mounted(create_sandbox_bank_app(clock=clock, decoupled_polls=1)))
    ctx = ConnectionContext(account_type="private", psu_id="rejected", psu_ip_address="203.0.113.7")
    start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state="s", sca_method="decoupled")
    status = await adapter.get_authorization_status(ctx, start.credentials)
    assert status.status == "failed"
    assert (await adapter.get_consent(ctx, start.credentials)).status is ConsentStatus.rejected
    await adapter.aclose()


async def test_psu_ip_address_only_when_user_present(adapter: SandboxAdapter) -> None:
    """Unattended reads count against frequencyPerDay (4); reads with the user present do not."""
    creds = await connect_redirect(adapter)
    account = (await adapter.list_accounts(PRESENT, creds))[0].external_id
    for _ in range(6):
        await adapter.fetch_balance(PRESENT, creds, account)
    for _ in range(4):
        await adapter.fetch_balance(UNATTENDED, creds, account)
    with pytest.raises(RateLimited):
        await adapter.fetch_balance(UNATTENDED, creds, account)


async def test_unattended_long_window_on_old_consent_is_period_invalid(
    adapter: SandboxAdapter, clock: Clock
) -> None:
    creds = await connect_redirect(adapter)
    account = (await adapter.list_accounts(PRESENT, creds))[0].external_id
    clock.today = TODAY + dt.timedelta(days=1)
    with pytest.raises(PeriodInvalid) as info:
        await adapter.fetch_transactions(
            UNATTENDED, creds, account, clock.today - dt.timedelta(days=120), clock.today
        )
    assert info.value.max_days == 89
    rows = await adapter.fetch_transactions(
        UNATTENDED, creds, account, clock.today - dt.timedelta(days=info.value.max_days), clock.today
    )
    assert rows


async def test_consent_expires_when_the_clock_passes_valid_until(
    adapter: SandboxAdapter, clock: Clock
) -> None:
    creds = await connect_redirect(adapter)
    clock.today = TODAY + dt.timedelta(days=91)
    assert (await adapter.get_consent(PRESENT, creds)).status is ConsentStatus.expired
    with pytest.raises(ConsentExpired):
        await adapter.list_accounts(UNATTENDED, creds)


async def test_noids_scenario_keeps_identical_purchases_apart(adapter: SandboxAdapter) -> None:
    creds = await connect_redirect(adapter, psu="noids")
    account = (await adapter.list_accounts(PRESENT, creds))[0].external_id
    txs = await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=120), TODAY)
    assert all(t.provider_id is None for t in txs)
    identities = transaction_identities(txs)
    assert len(set(identities)) == len(txs)
    contents = [(t.booking_date, t.amount, t.description) for t in txs]
    assert len(set(contents)) < len(contents)  # there really are identical rows in the window


# --------------------------------------------------------------------------- scenarios → errors


async def _scenario_account(adapter: SandboxAdapter, psu: str) -> tuple[Credentials, str]:
    start = await adapter.start_authorization(
        PRESENT, redirect_uri=REDIRECT, state="s", sca_method="redirect"
    )
    assert start.url is not None
    await approve(adapter, start.url, psu)
    return start.credentials, f"ftg-{psu.replace('-', '')}"


async def test_expired_scenario_raises_consent_expired(adapter: SandboxAdapter) -> None:
    creds, _ = await _scenario_account(adapter, "expired")
    with pytest.raises(ConsentExpired):
        await adapter.complete_authorization(PRESENT, creds, code=None, redirect_uri=REDIRECT)
    with pytest.raises(ConsentExpired):
        await adapter.list_accounts(PRESENT, creds)


async def test_ratelimited_scenario_raises_rate_limited_with_retry_at(adapter: SandboxAdapter) -> None:
    creds, account = await _scenario_account(adapter, "ratelimited")
    assert await adapter.list_accounts(PRESENT, creds)
    before = dt.datetime.now(dt.UTC)
    with pytest.raises(RateLimited) as info:
        await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=5), TODAY)
    assert info.value.retry_at >= before + dt.timedelta(minutes=59)


async def test_flaky_scenario_alternates_temporary_failures(adapter: SandboxAdapter) -> None:
    creds, account = await _scenario_account(adapter, "flaky")
    outcomes: list[str] = []
    for _ in range(4):
        try:
            await adapter.fetch_balance(PRESENT, creds, account)
            outcomes.append("ok")
        except TemporaryFailure:
            outcomes.append("temporary")
    assert outcomes == ["ok", "temporary", "ok", "temporary"]


async def test_slow_scenario_still_answers_correctly(adapter: SandboxAdapter) -> None:
    creds, account = await _scenario_account(adapter, "slow")
    txs = await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=3), TODAY)
    assert list(txs) == sandbox_transactions(account, TODAY - dt.timedelta(days=3), TODAY, TODAY)


async def test_malformed_scenario_names_bank_and_field(adapter: SandboxAdapter) -> None:
    creds, account = await _scenario_account(adapter, "malformed")
    with pytest.raises(InvalidResponse) as info:
        await adapter.fetch_transactions(PRESENT, creds, account, TODAY - dt.timedelta(days=30), TODAY)
    assert info.value.bank_id == "sandbox"
    assert info.value.field == "transactions.booked[0].transactionAmount.amount"


async def test_vanishing_scenario_account_disappears(adapter: SandboxAdapter) -> None:
    creds, _ = await _scenario_account(adapter, "vanishing")
    first = {a.external_id for a in await adapter.list_accounts(PRESENT, creds)}
    second = {a.external_id for a in await adapter.list_accounts(PRESENT, creds)}
    gone = first - second
    assert gone == {"gone-vanishing"}
    with pytest.raises(ResourceUnknown):
        await adapter.fetch_transactions(
            PRESENT, creds, "gone-vanishing", TODAY - dt.timedelta(days=3), TODAY
        )


# --------------------------------------------------------------------------- faults


async def test_fault_injection_is_deterministic_per_seed(clock: Clock) -> None:
    async def outcomes(seed: int) -> list[str]:
        adapter = make_adapter(mounted(create_sandbox_bank_app(clock=clock, fault_rate=0.5, seed=seed)))
        out: list[str] = []
        creds = Credentials(consent_id="none")
        for _ in range(12):
            try:
                await adapter.get_consent(PRESENT, creds)
                out.append("ok")
            except ReauthRequired:
                out.append("unknown-consent")
            except (TemporaryFailure, RateLimited) as exc:
                out.append(type(exc).__name__)
        await adapter.aclose()
        return out

    first, again, other = await outcomes(7), await outcomes(7), await outcomes(8)
    assert first == again
    assert first != other
    assert {"TemporaryFailure", "unknown-consent"} <= set(first)


async def test_missing_request_id_is_refused(clock: Clock) -> None:
    app = mounted(create_sandbox_bank_app(clock=clock))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        response = await client.get("/v1/accounts", headers={"Consent-ID": "x"})
    assert response.status_code == 400
    assert response.json()["tppMessages"][0]["code"] == "FORMAT_ERROR"


@pytest.mark.parametrize("make_window", [lambda t: (t - dt.timedelta(days=400), t - dt.timedelta(days=300))])
def test_ground_truth_is_pure(make_window: Callable[[dt.date], tuple[dt.date, dt.date]]) -> None:
    start, end = make_window(TODAY)
    assert sandbox_transactions("ftg-demo", start, end, TODAY) == sandbox_transactions(
        "ftg-demo", start, end, TODAY
    )
    assert all(
        t.booking_status is BookingStatus.booked for t in sandbox_transactions("ftg-demo", start, end, TODAY)
    )
