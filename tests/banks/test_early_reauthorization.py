"""Re-authorizing before the consent expires: until the new consent is authorised the nightly sync keeps
reading with the old one; on success the new one replaces it (and only it is used from then on); a
refused re-authorization leaves the old one working; a run that read with the old consent while the new
one was authorised is not taken for a lost login; the replaced consent is revoked at the bank, best effort."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from tests.banks.health_support import (
    ConsentRecorder,
    bank,
    connected,
    consent_id,
    finish_at_bank,
    open_todos,
    start_reauthorization,
    stored,
    sync_once,
    transports,
)
from tests.sync.conftest import clock, job_ctx, service_clock
from tests.sync.factories import SimClock

from ledgerlink.db.session import session_scope
from ledgerlink.models import BankConnection, ConnectionStatus, SyncRun, SyncStatus, SyncTrigger
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env

__all__ = ["bank", "clock", "job_ctx", "service_clock", "transports"]


async def test_the_old_consent_keeps_syncing_until_the_new_one_is_authorised(
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
    old = await consent_id(settings, sessionmaker, account.connection_id)
    before = await stored(sessionmaker, BankConnection, account.connection_id)

    url = await start_reauthorization(client, auth_headers, account.connection_id)
    shown = (await client.get(f"/v1/bank-connections/{account.connection_id}", headers=auth_headers)).json()
    assert shown["status"] == "active"  # the old consent is still valid: nothing is interrupted

    bank.used.clear()
    run = await sync_once(sessionmaker, clock, job_ctx, account)  # the SCA is not done yet
    assert run.status == SyncStatus.succeeded
    assert bank.used and set(bank.used) == {old}

    done = await finish_at_bank(client, auth_headers, bank, account.connection_id, url)
    assert done["status"] == "active"
    new = await consent_id(settings, sessionmaker, account.connection_id)
    assert new is not None and new != old
    after = await stored(sessionmaker, BankConnection, account.connection_id)
    assert after.consent_expires_at > before.consent_expires_at

    bank.used.clear()
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert run.status == SyncStatus.succeeded
    assert bank.used and set(bank.used) == {new}  # the old consent is not used again


async def test_a_refused_reauthorization_leaves_the_old_consent_working(
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
    old = await consent_id(settings, sessionmaker, account.connection_id)
    url = await start_reauthorization(client, auth_headers, account.connection_id)

    refused = await finish_at_bank(client, auth_headers, bank, account.connection_id, url, approve=False)
    assert refused["status"] == "active"
    assert refused["last_error"]["code"] == "authorization_failed"
    assert "authorization failed" in refused["last_error"]["message"]
    assert await consent_id(settings, sessionmaker, account.connection_id) == old

    bank.used.clear()
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert run.status == SyncStatus.succeeded
    assert bank.used and set(bank.used) == {old}
    assert await open_todos(sessionmaker, "reauth_required") == []


async def test_a_run_that_read_with_the_replaced_consent_reads_again_with_the_new_one(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    """The night's run claimed the old consent; while it reads, the user completes the re-authorization
    and the bank (as some do) ends the old consent. The bank's refusal is about the old consent only: the
    connection stays active, no login is asked for, and the run reads again with the new consent."""
    account = await connected(settings, sessionmaker, bank, clock, company_id, consent_days=10)
    old = await consent_id(settings, sessionmaker, account.connection_id)
    url = await start_reauthorization(client, auth_headers, account.connection_id)

    async def user_completes_and_bank_ends_the_old_consent(request: httpx.Request) -> None:
        await finish_at_bank(client, auth_headers, bank, account.connection_id, url)
        assert old is not None
        await bank.end_consent(old)

    bank.before = (
        lambda r: r.headers.get("Consent-ID") == old and r.url.path.endswith("/transactions"),
        user_completes_and_bank_ends_the_old_consent,
    )
    async with session_scope(sessionmaker) as s:
        queued = await schedule_sync(
            s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock
        )
    first = await execute_run(service_env(job_ctx), queued.id)
    assert first.status == "queued" and first.retry_in is not None  # not a lost login: read again
    run = await stored(sessionmaker, SyncRun, queued.id)
    assert (run.status, run.error_code) == (SyncStatus.queued, "consent_replaced")
    connection = await stored(sessionmaker, BankConnection, account.connection_id)
    assert connection.status == ConnectionStatus.active
    assert await open_todos(sessionmaker, "reauth_required") == []

    new = await consent_id(settings, sessionmaker, account.connection_id)
    bank.used.clear()
    assert (await execute_run(service_env(job_ctx), queued.id)).status == "succeeded"
    assert bank.used and set(bank.used) == {new}


async def test_a_renewal_revokes_the_replaced_consent_at_the_bank(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id, consent_days=10)
    old = await consent_id(settings, sessionmaker, account.connection_id)
    assert old is not None
    url = await start_reauthorization(client, auth_headers, account.connection_id)
    assert await bank.consent_status(old) == "valid"  # still in use until the new one is approved

    done = await finish_at_bank(client, auth_headers, bank, account.connection_id, url)
    assert done["status"] == "active"
    new = await consent_id(settings, sessionmaker, account.connection_id)
    assert new is not None and new != old
    assert await bank.consent_status(old) == "terminatedByTpp"  # DELETE /v1/consents/{old}
    assert await bank.consent_status(new) == "valid"


async def test_a_refused_revocation_is_logged_and_the_renewal_stands(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    job_ctx: Any,
    client: httpx.AsyncClient,
    auth_headers: dict[str, str],
    company_id: uuid.UUID,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = await connected(settings, sessionmaker, bank, clock, company_id, consent_days=10)
    old = await consent_id(settings, sessionmaker, account.connection_id)
    assert old is not None
    url = await start_reauthorization(client, auth_headers, account.connection_id)
    bank.refuse_revocation = True  # the bank answers 503 to DELETE /v1/consents/{id}

    done = await finish_at_bank(client, auth_headers, bank, account.connection_id, url)
    assert (done["status"], done["last_error"]) == ("active", None)
    new = await consent_id(settings, sessionmaker, account.connection_id)
    assert new is not None and new != old
    assert await bank.consent_status(old) == "valid"  # not revoked: it lapses at its end

    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    [failed] = [line for line in lines if line["event"] == "bank_connection.replaced_consent_revoke_failed"]
    assert failed["connection_id"] == str(account.connection_id) and failed["error"] == "BankUnavailable"
    assert old not in out and new not in out  # no consent id in any log line

    bank.used.clear()
    run = await sync_once(sessionmaker, clock, job_ctx, account)
    assert run.status == SyncStatus.succeeded
    assert bank.used and set(bank.used) == {new}
