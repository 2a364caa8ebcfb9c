"""/metrics after the events an operator pages on: a sync of the sandbox bank counts its run by bank and
outcome, the rows it wrote and the job that ran it; a webhook attempt counts by outcome; the scrape-time
gauges (queue depth, consents expiring within 7 days) are there. Every domain figure is ``ledgerlink_``."""

from __future__ import annotations

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
from ledgerlink.models import BankConnection, WebhookEndpoint
from ledgerlink.security import SecretBox
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


async def _samples(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


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
    async with session_scope(sessionmaker) as s:  # the consent now lapses within the 7-day horizon
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
