"""OAuth banks: the sync engine refreshes an access token that is near or past its expiry before it
reads, stores the rotated tokens in the same unit of work, spends a single-use refresh token once even
when two accounts of one connection sync at the same time, and flips the connection when the bank
refuses the refresh token. Nordea's API shape over respx."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import SecretStr

from ledgerlink.banks.adapters.base import Credentials
from ledgerlink.banks.service import ConnectionSecrets, load_credentials, save_secrets
from ledgerlink.config import BankEndpointSettings
from ledgerlink.db.session import session_scope
from ledgerlink.models import (
    AccountStatus,
    BankAccount,
    BankConnection,
    ConnectionStatus,
    SyncRun,
    SyncStatus,
)
from ledgerlink.models.bank import SyncTrigger
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env
from tests.sync.factories import make_company

NORDEA = "https://nordea.test"
DATA = Path(__file__).parent.parent / "data" / "banks" / "nordea"
ACCOUNTS = ["SE7630000000012345678901-SEK", "SE4130000000098765432109-SEK"]
NEW_ACCESS = "test-access-token-0001"  # what token.json grants
NEW_REFRESH = "test-refresh-token-0001"


def payload(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def nordea_settings(settings: Any) -> None:
    settings.banks["nordea"] = BankEndpointSettings(
        base_url=NORDEA, client_id="client-1", client_secret=SecretStr("secret-1")
    )


class FakeNordea:
    """Token endpoint (refresh grant) and AIS reads that accept only the bearer currently valid."""

    def __init__(self, router: respx.MockRouter, *, refuse_refresh: bool = False) -> None:
        self.valid_access = NEW_ACCESS
        self.refresh_forms: list[dict[str, list[str]]] = []
        self.bearers: list[str] = []
        self.refuse_refresh = refuse_refresh
        router.post("/personal/v5/authorize/token").mock(side_effect=self.token)
        router.get(url__regex=r"/personal/v5/accounts/[^/]+/transactions").mock(side_effect=self.transactions)
        router.get(url__regex=r"/personal/v5/accounts/[^/]+$").mock(side_effect=self.account)

    async def token(self, request: httpx.Request) -> httpx.Response:
        self.refresh_forms.append(parse_qs(request.content.decode()))
        await asyncio.sleep(0.05)  # a real round trip: lets a concurrent run reach the row lock
        if self.refuse_refresh:
            body = payload("error_token_expired.json")
            body["error"]["failures"][0]["code"] = "error.token.invalid"
            return httpx.Response(401, json=body)
        return httpx.Response(200, json=payload("token.json"))

    def _authorized(self, request: httpx.Request) -> bool:
        bearer: str = request.headers.get("Authorization", "")
        self.bearers.append(bearer)
        return bearer == f"Bearer {self.valid_access}"

    async def transactions(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json=payload("error_token_expired.json"))
        return httpx.Response(200, json=payload("transactions_page2.json"))

    async def account(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return httpx.Response(401, json=payload("error_token_expired.json"))
        first = payload("accounts.json")["response"]["accounts"][0]
        return httpx.Response(200, json={"response": first})


async def _connection(
    settings: Any, sessionmaker: Any, *, expires_in: dt.timedelta, accounts: int = 1
) -> tuple[BankConnection, list[BankAccount]]:
    company_id = uuid.uuid4()
    await make_company(sessionmaker, company_id)
    now = dt.datetime.now(dt.UTC)
    connection = BankConnection(
        id=uuid.uuid4(),
        company_id=company_id,
        bank_id="nordea",
        account_type="private",
        status=ConnectionStatus.active,
        consent_expires_at=now + dt.timedelta(days=150),
    )
    credentials = Credentials(
        access_token="old-access",
        refresh_token="refresh-0",
        token_expires_at=now + expires_in,
        extra={"access_valid_until": (now + dt.timedelta(days=150)).date().isoformat()},
    )
    save_secrets(settings, connection, ConnectionSecrets(credentials=credentials))
    linked = [
        BankAccount(
            id=uuid.uuid4(),
            company_id=company_id,
            connection_id=connection.id,
            bank_id="nordea",
            external_id=external_id,
            identity_key=external_id,
            currency="SEK",
            name="Personkonto",
            ledger_account=f"19{30 + i}",
            sync_from=now.date() - dt.timedelta(days=30),
            status=AccountStatus.active,
        )
        for i, external_id in enumerate(ACCOUNTS[:accounts])
    ]
    async with sessionmaker() as s:
        s.add(connection)
        await s.flush()
        s.add_all(linked)
        await s.commit()
    return connection, linked


async def _sync(sessionmaker: Any, job_ctx: Any, account: BankAccount) -> SyncRun:
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False)
    await execute_run(service_env(job_ctx), run.id)
    async with sessionmaker() as s:
        done: SyncRun | None = await s.get(SyncRun, run.id)
    assert done is not None
    return done


async def _stored(
    settings: Any, sessionmaker: Any, connection_id: uuid.UUID
) -> tuple[BankConnection, Credentials]:
    async with sessionmaker() as s:
        row = await s.get(BankConnection, connection_id)
    assert row is not None
    return row, load_credentials(settings, row)


@pytest.mark.parametrize("expires_in", [dt.timedelta(minutes=-5), dt.timedelta(seconds=30)])
async def test_an_expired_or_expiring_token_is_refreshed_before_the_fetch_and_stored(
    settings: Any, sessionmaker: Any, job_ctx: Any, expires_in: dt.timedelta
) -> None:
    connection, [account] = await _connection(settings, sessionmaker, expires_in=expires_in)
    with respx.mock(base_url=NORDEA, assert_all_called=False) as router:
        bank = FakeNordea(router)
        run = await _sync(sessionmaker, job_ctx, account)
        assert (run.status, run.error_code) == (SyncStatus.succeeded, None)
        assert run.fetched == 1 and run.inserted == 1
        assert [f["grant_type"] for f in bank.refresh_forms] == [["refresh_token"]]
        assert bank.refresh_forms[0]["refresh_token"] == ["refresh-0"]
        assert set(bank.bearers) == {f"Bearer {NEW_ACCESS}"}  # transactions and the balance alike

        _, stored = await _stored(settings, sessionmaker, connection.id)
        assert (stored.access_token, stored.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
        assert stored.token_expires_at is not None and stored.token_expires_at > dt.datetime.now(dt.UTC)
        async with sessionmaker() as s:
            synced = await s.get(BankAccount, account.id)
        assert synced is not None and synced.balance_amount is not None

        # The next run finds a fresh token: no second refresh.
        again = await _sync(sessionmaker, job_ctx, account)
        assert again.status == SyncStatus.succeeded
        assert len(bank.refresh_forms) == 1


async def test_a_fresh_token_is_used_as_is(settings: Any, sessionmaker: Any, job_ctx: Any) -> None:
    connection, [account] = await _connection(settings, sessionmaker, expires_in=dt.timedelta(hours=1))
    with respx.mock(base_url=NORDEA, assert_all_called=False) as router:
        bank = FakeNordea(router)
        bank.valid_access = "old-access"
        run = await _sync(sessionmaker, job_ctx, account)
    assert run.status == SyncStatus.succeeded
    assert bank.refresh_forms == []
    assert (await _stored(settings, sessionmaker, connection.id))[1].refresh_token == "refresh-0"


async def test_two_accounts_of_one_connection_spend_the_single_use_refresh_token_once(
    settings: Any, sessionmaker: Any, job_ctx: Any
) -> None:
    connection, accounts = await _connection(
        settings, sessionmaker, expires_in=dt.timedelta(minutes=-1), accounts=2
    )
    with respx.mock(base_url=NORDEA, assert_all_called=False) as router:
        bank = FakeNordea(router)
        runs = await asyncio.gather(*(_sync(sessionmaker, job_ctx, a) for a in accounts))
    assert [r.status for r in runs] == [SyncStatus.succeeded, SyncStatus.succeeded]
    assert [f["refresh_token"] for f in bank.refresh_forms] == [["refresh-0"]]
    assert (await _stored(settings, sessionmaker, connection.id))[1].access_token == NEW_ACCESS


async def test_a_refused_refresh_token_flips_the_connection_to_reauth_required(
    settings: Any, sessionmaker: Any, job_ctx: Any
) -> None:
    connection, [account] = await _connection(settings, sessionmaker, expires_in=dt.timedelta(minutes=-1))
    with respx.mock(base_url=NORDEA, assert_all_called=False) as router:
        bank = FakeNordea(router, refuse_refresh=True)
        run = await _sync(sessionmaker, job_ctx, account)
    assert (run.status, run.error_code, run.error_retryable) == (SyncStatus.failed, "reauth_required", False)
    assert bank.bearers == []  # nothing read with a dead token
    row, stored = await _stored(settings, sessionmaker, connection.id)
    assert row.status == ConnectionStatus.reauth_required
    assert (stored.access_token, stored.refresh_token) == ("old-access", "refresh-0")
