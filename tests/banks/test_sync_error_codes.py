"""A sync that does not succeed says why, with one code per cause: an expired consent, the bank's rate
limit, an outage and an unreadable answer are told apart on the run (``error.code``), the account
(``last_error.code``) and the to-do, through the sandbox bank's scripted PSUs. A success clears it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from tests.banks.health_support import (
    ConsentRecorder,
    bank,
    connected,
    events,
    open_todos,
    sync_once,
    transports,
)
from tests.sync.conftest import clock, job_ctx, service_clock
from tests.sync.factories import SimClock

from ledgerlink.banks.adapters.base import (
    AccountVanished,
    AdapterError,
    BankUnavailable,
    ConsentExpired,
    InvalidResponse,
    PeriodTooLong,
    RateLimited,
    ReauthRequired,
    TemporaryFailure,
)
from ledgerlink.db.base import utcnow
from ledgerlink.models import SyncStatus
from ledgerlink.sync.service.failures import classify

__all__ = ["bank", "clock", "job_ctx", "service_clock", "transports"]


def test_each_adapter_error_has_its_code() -> None:
    def code(exc: AdapterError) -> str:
        return classify(exc).code

    assert code(ConsentExpired("b", "x")) == "consent_expired"
    assert code(ReauthRequired("b", "x")) == "reauth_required"
    assert code(RateLimited("b", "x", utcnow())) == "rate_limited"
    assert code(BankUnavailable("b", "x")) == code(TemporaryFailure("b", "x")) == "bank_unavailable"
    assert code(InvalidResponse("b", "x")) == code(PeriodTooLong("b", "x")) == "invalid_response"
    assert code(AccountVanished("b", "x")) == "account_vanished"


async def _account_read(client: httpx.AsyncClient, headers: dict[str, str], account_id: uuid.UUID) -> Any:
    answer = await client.get(f"/v1/bank-accounts/{account_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize(
    ("psu", "days_later", "code", "status", "todo"),
    [
        ("anna", 91, "consent_expired", SyncStatus.failed, "reauth_required"),  # past validUntil at the bank
        ("ratelimited", 0, "rate_limited", SyncStatus.deferred, None),
        ("outage", 0, "bank_unavailable", SyncStatus.failed, "sync_failed"),
        ("malformed", 0, "invalid_response", SyncStatus.failed, "sync_failed"),
    ],
)
async def test_the_cause_is_told_apart_on_the_run_the_account_and_the_todo(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    psu: str,
    days_later: int,
    code: str,
    status: SyncStatus,
    todo: str | None,
) -> None:
    settings.sync.max_attempts = 1  # an outage fails at once instead of after hours of backoff
    account = await connected(settings, sessionmaker, bank, clock, company_id, psu=psu)
    clock.at += dt.timedelta(days=days_later)
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert (run.status, run.error_code) == (status, code)

    syncs = await client.get(f"/v1/bank-accounts/{account.id}/syncs", headers=auth_headers)
    assert syncs.json()["items"][0]["error"]["code"] == code
    shown = await _account_read(client, auth_headers, account.id)
    assert shown["last_error"]["code"] == code and shown["last_error"]["message"]
    if todo is not None:
        [raised] = await open_todos(sessionmaker, todo)
        assert raised.data["code"] == code
        listed = (await client.get("/v1/todos", headers=auth_headers)).json()["items"]
        assert [t["code"] for t in listed if t["type"] == todo] == [code]
    else:
        assert await open_todos(sessionmaker, "sync_failed") == []
    if code == "consent_expired":
        [event] = await events(sessionmaker, "bank_connection.reauth_required")
        assert event.payload["code"] == code


async def test_the_account_error_clears_with_the_next_success(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    settings.sync.max_attempts = 1
    account = await connected(settings, sessionmaker, bank, clock, company_id)
    bank.down = True
    failed = await sync_once(sessionmaker, clock, job_ctx, account)
    assert (failed.status, failed.error_code) == (SyncStatus.failed, "bank_unavailable")
    assert (await _account_read(client, auth_headers, account.id))["last_error"]["code"] == "bank_unavailable"

    bank.down = False  # back up
    succeeded = await sync_once(sessionmaker, clock, job_ctx, account)
    assert succeeded.status == SyncStatus.succeeded
    assert (await _account_read(client, auth_headers, account.id))["last_error"] is None
