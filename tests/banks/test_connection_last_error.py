"""The connection's ``last_error`` is ``{code, message, at}``, the account's shape, with a code for each
place that sets it: a consent the sync finds expired (``consent_expired``) or refused
(``reauth_required``), a consent the hourly sweep finds past its end (``consent_expired``), a login the
bank or the user refused (``authorization_failed``); a new login clears it. (A decoupled BankID refusal and
timeout are in test_connect_journey.py.)"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from tests.banks.health_support import (
    ConsentRecorder,
    bank,
    connected,
    consent_id,
    finish_at_bank,
    start_reauthorization,
    sync_once,
    transports,
)
from tests.sync.conftest import clock, job_ctx, service_clock
from tests.sync.factories import REDIRECT, SimClock, make_company

from ledgerlink.models import SyncStatus
from ledgerlink.sync.service.cron import sweep_consents
from ledgerlink.worker.jobs import service_env

__all__ = ["bank", "clock", "job_ctx", "service_clock", "transports"]


async def _connection(client: httpx.AsyncClient, headers: dict[str, str], connection_id: Any) -> Any:
    answer = await client.get(f"/v1/bank-connections/{connection_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_consent_the_sync_finds_expired_is_consent_expired_until_a_new_login(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id)
    assert (await _connection(client, auth_headers, account.connection_id))["last_error"] is None
    clock.at += dt.timedelta(days=91)  # past validUntil at the bank
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert (run.status, run.error_code) == (SyncStatus.failed, "consent_expired")

    shown = await _connection(client, auth_headers, account.connection_id)
    assert shown["status"] == "reauth_required"
    error = shown["last_error"]
    assert error["code"] == "consent_expired" and error["message"]
    assert dt.datetime.fromisoformat(error["at"]) == clock.at

    url = await start_reauthorization(client, auth_headers, account.connection_id)
    done = await finish_at_bank(client, auth_headers, bank, account.connection_id, url)
    assert (done["status"], done["last_error"]) == ("active", None)


async def test_a_consent_the_bank_no_longer_accepts_is_reauth_required(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id)
    consent = await consent_id(settings, sessionmaker, account.connection_id)
    assert consent is not None
    await bank.end_consent(consent)  # the user withdrew the consent in the bank's app
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert (run.status, run.error_code) == (SyncStatus.failed, "reauth_required")

    shown = await _connection(client, auth_headers, account.connection_id)
    assert shown["status"] == "reauth_required"
    assert shown["last_error"]["code"] == "reauth_required" and shown["last_error"]["message"]


async def test_a_consent_the_sweep_finds_past_its_end_is_consent_expired(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id, consent_days=2)
    clock.at += dt.timedelta(days=3)
    await sweep_consents(service_env(job_ctx))

    shown = await _connection(client, auth_headers, account.connection_id)
    assert shown["status"] == "reauth_required"
    assert shown["last_error"] == {
        "code": "consent_expired",
        "message": "The bank consent has expired.",
        "at": shown["last_error"]["at"],
    }
    assert dt.datetime.fromisoformat(shown["last_error"]["at"]) == clock.at


async def test_a_first_login_refused_at_the_bank_is_authorization_failed(
    sessionmaker: Any,
    bank: ConsentRecorder,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    await make_company(sessionmaker, company_id)
    created = await client.post(
        "/v1/bank-connections",
        json={"bank_id": "sandbox", "account_type": "business", "redirect_uri": REDIRECT},
        headers=auth_headers,
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    url = created.json()["authorization"]["url"]

    refused = await finish_at_bank(client, auth_headers, bank, connection_id, url, approve=False)
    assert refused["status"] == "failed"
    assert refused["last_error"]["code"] == "authorization_failed"
    assert refused["last_error"]["message"].startswith("authorization failed: ")
    assert (await _connection(client, auth_headers, connection_id))["last_error"] == refused["last_error"]
