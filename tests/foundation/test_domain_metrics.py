"""/metrics after the events an operator pages on: a sync of the sandbox bank counts its run by bank and
outcome, the rows it wrote and the job that ran it; a webhook attempt counts by outcome; the scrape-time
gauges (queue depth, consents expiring within the reminder horizon, unattended reads left per bank) are
there, on the API's ``/metrics`` and on the worker's metrics port alike. Every domain figure is
``ledgerlink_``."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.db.session import session_scope
from ledgerlink.events.service import emit
from ledgerlink.events.tasks import deliver_due
from ledgerlink.models import BankAccount, BankConnection, SyncTrigger, WebhookEndpoint
from ledgerlink.security import SecretBox
from ledgerlink.sync.service import schedule_sync
from ledgerlink.worker.settings import build_worker_settings
from tests.sync.factories import SimClock, make_account, make_company, sandbox_transport

DAY = dt.date(2026, 3, 2)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def clock() -> SimClock:
    sim = SimClock()
    sim.set_local(DAY, 14)
    return sim


@pytest.fixture
def service_clock(clock: SimClock) -> Clock:
    return clock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.sync.per_bank_concurrency = 100  # no deferral in burst mode
    return settings


@pytest.fixture
def transports(clock: SimClock) -> dict[str, httpx.AsyncBaseTransport]:
    return {"sandbox": sandbox_transport(clock)}


def _parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _samples(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return _parse(response.text)


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


async def test_a_sandbox_sync_shows_its_run_rows_and_job_and_the_scrape_gauges(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    settings: Settings,
    sessionmaker: Any,
    transports: dict[str, Any],
    company_id: uuid.UUID,
    clock: SimClock,
    run_jobs: Any,
) -> None:
    await make_company(sessionmaker, company_id)
    account = await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        sync_from=DAY - dt.timedelta(days=20),
        clock=clock,
    )
    before = await _samples(client)
    assert (
        await client.post(f"/v1/bank-accounts/{account.id}/syncs", json={}, headers=auth_headers)
    ).status_code == 202
    queued = await _samples(client)
    assert queued[_key("ledgerlink_queue_depth")] >= 1  # the arq queue, read at scrape time
    await run_jobs()
    async with session_scope(sessionmaker) as s:  # the consent now lapses within the reminder horizon
        await s.execute(
            update(BankConnection)
            .where(BankConnection.id == account.connection_id)
            .values(consent_expires_at=clock() + dt.timedelta(days=3))
        )
    after = await _samples(client)

    def delta(key: tuple[str, tuple[tuple[str, str], ...]]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta(_key("ledgerlink_sync_runs_total", bank="sandbox", outcome="succeeded")) == 1
    assert delta(_key("ledgerlink_sync_rows_ingested_total", bank="sandbox", kind="inserted")) > 0
    assert delta(_key("ledgerlink_jobs_total", task="sync.account", outcome="succeeded")) == 1
    assert delta(_key("ledgerlink_job_duration_seconds_count", task="sync.account")) == 1
    assert after[_key("ledgerlink_queue_depth")] == 0
    assert after[_key("ledgerlink_bank_consents_expiring")] == 1
    domain = [
        name
        for name, _ in after
        if any(w in name for w in ("sync_", "jobs", "job_", "queue", "webhook", "consents"))
    ]
    assert domain and all(name.startswith("ledgerlink_") for name in domain)


async def test_consents_expiring_look_as_far_ahead_as_the_largest_reminder(
    client: httpx.AsyncClient,
    settings: Settings,
    sessionmaker: Any,
    transports: dict[str, Any],
    company_id: uuid.UUID,
    clock: SimClock,
) -> None:
    await make_company(sessionmaker, company_id)
    await make_account(
        sessionmaker,
        settings,
        transports["sandbox"],
        company_id,
        sync_from=DAY - dt.timedelta(days=20),
        consent_expires_at=clock() + dt.timedelta(days=10),
        clock=clock,
    )
    expiring = _key("ledgerlink_bank_consents_expiring")
    settings.sync.consent_reminder_days = [14, 3]  # the default: 10 days left is within the first reminder
    assert (await _samples(client))[expiring] == 1
    settings.sync.consent_reminder_days = [7, 3]  # reminders from a week ahead: not yet
    assert (await _samples(client))[expiring] == 0
    settings.sync.consent_reminder_days = [30]
    assert (await _samples(client))[expiring] == 1


async def test_a_webhook_delivery_is_counted_by_outcome(
    client: httpx.AsyncClient, settings: Settings, sessionmaker: Any, transports: dict[str, Any]
) -> None:
    settings.webhooks.allow_private_targets = True
    transports["webhooks"] = httpx.MockTransport(lambda request: httpx.Response(200))
    company_id, endpoint_id = uuid.uuid4(), uuid.uuid4()
    box = SecretBox.from_settings(settings.security)
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with session_scope(sessionmaker) as s:
        s.add(
            WebhookEndpoint(
                id=endpoint_id,
                company_id=company_id,
                url="https://hooks.example.invalid/ok",
                events=["bank_account.synced"],
                secret=box.encrypt_json("whsec_test", context=str(endpoint_id)),
            )
        )
        await s.flush()
        await emit(s, company_id, "bank_account.synced", {"bank_account_id": "x"}, at=due)
    before = await _samples(client)
    ctx: Any = {"settings": settings, "sessionmaker": sessionmaker, "redis": None, "transports": transports}
    assert await deliver_due(ctx) == 1
    after = await _samples(client)
    key = _key("ledgerlink_webhook_deliveries_total", outcome="delivered")
    assert after.get(key, 0.0) - before.get(key, 0.0) == 1


# ------------------------------------------------------------------ the PSD2 allowance of unattended reads

PER_DAY = 4


async def _unattended_sync(sessionmaker: Any, clock: SimClock, account: BankAccount, run_jobs: Any) -> None:
    """A nightly (unattended) sync of ``account``, run by the arq worker."""
    async with session_scope(sessionmaker) as s:
        await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock)
    await run_jobs()


async def _two_sandbox_accounts(
    sessionmaker: Any, settings: Settings, transports: dict[str, Any], company_id: uuid.UUID, clock: SimClock
) -> list[BankAccount]:
    await make_company(sessionmaker, company_id)
    return [
        await make_account(
            sessionmaker,
            settings,
            transports["sandbox"],
            company_id,
            psu=psu,
            sync_from=DAY - dt.timedelta(days=20),
            clock=clock,
        )
        for psu in ("anna", "bertil")
    ]


async def test_the_unattended_reads_left_per_bank_fall_with_each_nightly_sync_and_name_spent_accounts(
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    settings: Settings,
    sessionmaker: Any,
    transports: dict[str, Any],
    company_id: uuid.UUID,
    clock: SimClock,
    run_jobs: Any,
) -> None:
    assert settings.sync.unattended_reads_per_day == PER_DAY
    first, second = await _two_sandbox_accounts(sessionmaker, settings, transports, company_id, clock)
    remaining = _key("ledgerlink_sync_unattended_reads_remaining", bank="sandbox", endpoint="transactions")
    spent = _key("ledgerlink_sync_accounts_allowance_spent", bank="sandbox", endpoint="transactions")
    balances = _key("ledgerlink_sync_unattended_reads_remaining", bank="sandbox", endpoint="balances")

    fresh = await _samples(client)
    assert (fresh[remaining], fresh[spent], fresh[balances]) == (2 * PER_DAY, 0, 2 * PER_DAY)

    await _unattended_sync(sessionmaker, clock, first, run_jobs)
    after_one = await _samples(client)
    assert after_one[remaining] == 2 * PER_DAY - 1
    assert after_one[balances] == 2 * PER_DAY - 1  # the balance read after the fetch spends its own
    assert after_one[spent] == 0

    # "Sync now" with the user present spends nothing.
    assert (
        await client.post(f"/v1/bank-accounts/{second.id}/syncs", json={}, headers=auth_headers)
    ).status_code == 202
    await run_jobs()
    assert (await _samples(client))[remaining] == 2 * PER_DAY - 1

    for _ in range(PER_DAY - 1):
        await _unattended_sync(sessionmaker, clock, first, run_jobs)
    used_up = await _samples(client)
    assert used_up[remaining] == PER_DAY  # only the second account's reads are left
    assert used_up[spent] == 1

    # A day later the first account's reads are back (the window is the last 24 hours).
    clock.at += dt.timedelta(hours=24, minutes=1)
    next_day = await _samples(client)
    assert (next_day[remaining], next_day[spent]) == (2 * PER_DAY, 0)


async def test_the_worker_metrics_port_serves_the_scrape_time_figures_read_when_scraped(
    settings: Settings,
    sessionmaker: Any,
    transports: dict[str, Any],
    company_id: uuid.UUID,
    clock: SimClock,
    arq_redis: Any,
    run_jobs: Any,
) -> None:
    """``ledgerlink worker --metrics-port``: the worker's own counters and the system-wide gauges, read
    from the database at each scrape (not only by the API's ``/metrics``)."""
    first, _ = await _two_sandbox_accounts(sessionmaker, settings, transports, company_id, clock)
    kwargs = build_worker_settings(
        settings, transports=transports, configure_logs=False, clock=clock, metrics_port=0
    )
    ctx: dict[str, Any] = {"redis": arq_redis}
    await kwargs["on_startup"](ctx)
    url = f"http://127.0.0.1:{ctx['metrics_server'].port}/metrics"

    async def scrape() -> Samples:
        response = await asyncio.to_thread(httpx.get, url, timeout=10)  # the server waits on this loop
        assert response.status_code == 200
        return _parse(response.text)

    try:
        remaining = _key(
            "ledgerlink_sync_unattended_reads_remaining", bank="sandbox", endpoint="transactions"
        )
        before = await scrape()
        assert before[remaining] == 2 * PER_DAY
        await _unattended_sync(sessionmaker, clock, first, run_jobs)
        async with session_scope(sessionmaker) as s:
            await s.execute(
                update(BankConnection)
                .where(BankConnection.id == first.connection_id)
                .values(consent_expires_at=clock() + dt.timedelta(days=3))
            )
        after = await scrape()
        assert after[remaining] == 2 * PER_DAY - 1
        assert after[_key("ledgerlink_bank_consents_expiring")] == 1
        succeeded = _key("ledgerlink_sync_runs_total", bank="sandbox", outcome="succeeded")
        assert after[succeeded] - before.get(succeeded, 0.0) == 1
        only = await asyncio.to_thread(httpx.get, url, params={"name[]": remaining[0]}, timeout=10)
        assert _parse(only.text)[remaining] == 2 * PER_DAY - 1
    finally:
        await kwargs["on_shutdown"](ctx)
    with pytest.raises(httpx.ConnectError):
        await asyncio.to_thread(httpx.get, url, timeout=2)
