"""Consent expiry reminders: at 14 and at 3 days before the consent ends (settings), each exactly once per
consent however often the hourly sweep runs, and again for the consent a re-authorization brings."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from tests.banks.health_support import (
    ConsentRecorder,
    bank,
    connected,
    events,
    finish_at_bank,
    open_todos,
    start_reauthorization,
    stored,
    transports,
)
from tests.sync.conftest import clock, job_ctx, service_clock
from tests.sync.factories import SimClock

from ledgerlink.config import Settings
from ledgerlink.models import BankConnection
from ledgerlink.sync.service.cron import reminder_due, sweep_consents
from ledgerlink.worker.jobs import service_env

__all__ = ["bank", "clock", "job_ctx", "service_clock", "transports"]

EVENT = "bank_connection.consent_expiring"


def test_the_reminder_due_is_the_nearest_threshold_reached() -> None:
    end = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    days = [14, 3]
    assert reminder_due(end, end - dt.timedelta(days=15), days) is None
    assert reminder_due(end, end - dt.timedelta(days=14), days) == 14
    assert reminder_due(end, end - dt.timedelta(days=4), days) == 14
    assert reminder_due(end, end - dt.timedelta(days=3), days) == 3
    assert reminder_due(end, end - dt.timedelta(hours=1), days) == 3


def test_the_thresholds_are_a_comma_separated_setting(monkeypatch: Any) -> None:
    monkeypatch.setenv("LEDGERLINK_SYNC__CONSENT_REMINDER_DAYS", "3, 14,7")
    assert Settings().sync.consent_reminder_days == [14, 7, 3]
    assert Settings(sync={"consent_reminder_days": [14, 3]}).sync.consent_reminder_days == [14, 3]


async def test_reminders_land_at_14_and_3_days_once_each(
    settings: Any, sessionmaker: Any, bank: ConsentRecorder, clock: SimClock, job_ctx: Any
) -> None:
    assert settings.sync.consent_reminder_days == [14, 3]  # the default
    account = await connected(settings, sessionmaker, bank, clock, uuid.uuid4(), consent_days=20)
    connection = await stored(sessionmaker, BankConnection, account.connection_id)
    ends = connection.consent_expires_at

    async def sweep_hourly(hours: int) -> None:
        for _ in range(hours):
            await sweep_consents(service_env(job_ctx))
            clock.at += dt.timedelta(hours=1)

    await sweep_hourly(24)  # 20 days left: nothing yet
    assert await events(sessionmaker, EVENT) == []
    assert await open_todos(sessionmaker, "consent_expiring") == []

    clock.at = ends - dt.timedelta(days=14, hours=2)
    await sweep_hourly(24)  # the 14-day threshold is crossed on the way; a day of sweeps follows
    [first] = await events(sessionmaker, EVENT)
    assert first.payload["days_before"] == 14
    assert dt.datetime.fromisoformat(first.payload["expires_at"]) == ends
    [todo] = await open_todos(sessionmaker, "consent_expiring")
    assert (todo.subject_key, todo.data["days_before"]) == (str(account.connection_id), 14)

    clock.at = ends - dt.timedelta(days=3, hours=2)
    await sweep_hourly(24)
    assert [e.payload["days_before"] for e in await events(sessionmaker, EVENT)] == [14, 3]
    [todo] = await open_todos(sessionmaker, "consent_expiring")  # the same to-do, now at 3 days
    assert todo.data["days_before"] == 3

    await sweep_hourly(24 * 2)  # up to the end: no third reminder
    assert len(await events(sessionmaker, EVENT)) == 2


async def test_a_sweep_that_first_sees_a_consent_past_both_thresholds_reminds_once(
    settings: Any, sessionmaker: Any, bank: ConsentRecorder, clock: SimClock, job_ctx: Any
) -> None:
    await connected(settings, sessionmaker, bank, clock, uuid.uuid4(), consent_days=2)
    await sweep_consents(service_env(job_ctx))
    await sweep_consents(service_env(job_ctx))
    assert [e.payload["days_before"] for e in await events(sessionmaker, EVENT)] == [3]


async def test_a_reauthorized_consent_gets_its_own_reminders(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id, consent_days=10)
    await sweep_consents(service_env(job_ctx))
    assert [e.payload["days_before"] for e in await events(sessionmaker, EVENT)] == [14]

    # The user renews after the reminder: a new consent, valid for the bank's full period.
    url = await start_reauthorization(client, auth_headers, account.connection_id)
    assert (await finish_at_bank(client, auth_headers, bank, account.connection_id, url))[
        "status"
    ] == "active"
    renewed = await stored(sessionmaker, BankConnection, account.connection_id)
    assert renewed.consent_expires_at > clock.at + dt.timedelta(days=80)
    assert renewed.consent_reminded_days is None
    assert await open_todos(sessionmaker, "consent_expiring") == []

    await sweep_consents(service_env(job_ctx))
    assert len(await events(sessionmaker, EVENT)) == 1  # nothing due for the new consent yet

    clock.at = renewed.consent_expires_at - dt.timedelta(days=13)
    await sweep_consents(service_env(job_ctx))
    reminders = await events(sessionmaker, EVENT)
    assert [e.payload["days_before"] for e in reminders] == [14, 14]
    assert dt.datetime.fromisoformat(reminders[-1].payload["expires_at"]) == renewed.consent_expires_at
    [todo] = await open_todos(sessionmaker, "consent_expiring")
    shown = (await client.get("/v1/todos", headers=auth_headers)).json()["items"]
    assert [(t["type"], t["days_before"]) for t in shown if t["type"] == "consent_expiring"] == [
        ("consent_expiring", 14)
    ]
    assert todo.data["days_before"] == 14
