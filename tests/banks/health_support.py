"""What the connection-health tests share: the sandbox bank on a simulated clock behind a transport that
records which consent each account call used, a connected account, one sync run, and a re-authorization
through the API (start, then approve or refuse at the bank, then relay the answer)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from tests.sync.factories import REDIRECT, SimClock, make_account, make_company, sandbox_transport

from ledgerlink.banks.service import load_credentials
from ledgerlink.db.session import session_scope
from ledgerlink.models import BankAccount, BankConnection, OutboxEvent, SyncRun, SyncTrigger, Todo
from ledgerlink.sync.service import schedule_sync
from ledgerlink.sync.service.engine import execute_run
from ledgerlink.worker.jobs import service_env

DAY = dt.date(2026, 3, 2)

Hook = Callable[[httpx.Request], Awaitable[None]]
UNAVAILABLE = {"tppMessages": [{"category": "ERROR", "code": "SERVICE_UNAVAILABLE", "text": "maintenance"}]}


class ConsentRecorder(httpx.AsyncBaseTransport):
    """The sandbox bank, recording the ``Consent-ID`` of every account-information call (``/v1/accounts``)
    in ``used``. ``before`` (set by a test) runs once, before the first such call it returns True for;
    while ``down`` is set, such calls answer 503 (the bank down for maintenance), and while
    ``refuse_revocation`` is, so does ``DELETE /v1/consents/{id}``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.used: list[str] = []
        self.before: tuple[Callable[[httpx.Request], bool], Hook] | None = None
        self.down = False
        self.refuse_revocation = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and "/v1/consents/" in request.url.path and self.refuse_revocation:
            return httpx.Response(503, json=UNAVAILABLE, request=request)
        if "/v1/accounts" in request.url.path:
            self.used.append(request.headers.get("Consent-ID", ""))
            if self.before is not None and self.before[0](request):
                _, hook = self.before
                self.before = None
                await hook(request)
            if self.down:
                return httpx.Response(503, json=UNAVAILABLE, request=request)
        return await self.inner.handle_async_request(request)

    async def _consent_call(self, method: str, path: str) -> httpx.Response:
        """A call to the sandbox bank's consent resource past the recorder (as the bank itself)."""
        url = f"http://sandbox.invalid/sandbox/bank/v1/consents/{path}"
        answer = await self.inner.handle_async_request(
            httpx.Request(method, url, headers={"X-Request-ID": str(uuid.uuid4())})
        )
        await answer.aread()
        return answer

    async def consent_status(self, consent_id: str) -> str:
        """What the sandbox bank says of a consent (``valid``, ``terminatedByTpp``, ...)."""
        answer = await self._consent_call("GET", f"{consent_id}/status")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["consentStatus"])

    async def end_consent(self, consent_id: str) -> None:
        """The consent ends at the bank (withdrawn by the user, or ended by the bank)."""
        assert (await self._consent_call("DELETE", consent_id)).status_code == 204


@pytest.fixture
def bank(clock: SimClock) -> ConsentRecorder:
    clock.set_local(DAY, 14)
    return ConsentRecorder(sandbox_transport(clock))


@pytest.fixture
def transports(bank: ConsentRecorder) -> dict[str, Any]:
    return {"sandbox": bank}


async def connected(
    settings: Any,
    sessionmaker: Any,
    bank: ConsentRecorder,
    clock: SimClock,
    company_id: uuid.UUID,
    *,
    psu: str = "anna",
    consent_days: float = 89,
) -> BankAccount:
    """A connected, active sandbox account of ``company_id`` whose consent we hold ends in ``consent_days``."""
    await make_company(sessionmaker, company_id)
    return await make_account(
        sessionmaker,
        settings,
        bank,
        company_id,
        psu=psu,
        sync_from=clock.bank_today() - dt.timedelta(days=20),
        consent_expires_at=clock.at + dt.timedelta(days=consent_days),
        clock=clock,
    )


async def sync_once(sessionmaker: Any, clock: SimClock, job_ctx: Any, account: BankAccount) -> SyncRun:
    """One nightly (unattended) run of the account, executed to its outcome; the stored run."""
    async with session_scope(sessionmaker) as s:
        run = await schedule_sync(s, account, trigger=SyncTrigger.scheduled, user_present=False, clock=clock)
    await execute_run(service_env(job_ctx), run.id)
    return await stored(sessionmaker, SyncRun, run.id)


async def stored(sessionmaker: Any, model: Any, id: Any) -> Any:
    async with sessionmaker() as s:
        return await s.get(model, id)


async def consent_id(settings: Any, sessionmaker: Any, connection_id: uuid.UUID) -> str | None:
    """The consent the connection holds now (what a sync reads with)."""
    return load_credentials(settings, await stored(sessionmaker, BankConnection, connection_id)).consent_id


async def start_reauthorization(
    client: httpx.AsyncClient, headers: dict[str, str], connection_id: uuid.UUID
) -> str:
    """``POST .../reauthorization``; the bank's login URL."""
    started = await client.post(
        f"/v1/bank-connections/{connection_id}/reauthorization",
        json={"redirect_uri": REDIRECT},
        headers=headers,
    )
    assert started.status_code == 201, started.text
    return str(started.json()["authorization"]["url"])


async def finish_at_bank(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    bank: httpx.AsyncBaseTransport,
    connection_id: uuid.UUID,
    url: str,
    *,
    approve: bool = True,
) -> dict[str, Any]:
    """The user approves (or refuses) on the bank's page and the frontend relays what came back."""
    async with httpx.AsyncClient(transport=bank) as browser:
        answer = await browser.get(url, params={"approve": "1"} if approve else {"deny": "1"})
    assert answer.status_code == 302
    back = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    done = await client.post(
        f"/v1/bank-connections/{connection_id}/authorization",
        json={"code": back.get("code"), "state": back["state"]},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    return dict(done.json())


async def open_todos(sessionmaker: Any, type: str) -> list[Todo]:
    async with sessionmaker() as s:
        stmt = select(Todo).where(Todo.type == type, Todo.resolved_at.is_(None))
        return list((await s.execute(stmt)).scalars())


async def events(sessionmaker: Any, type: str) -> list[OutboxEvent]:
    async with sessionmaker() as s:
        stmt = select(OutboxEvent).where(OutboxEvent.type == type).order_by(OutboxEvent.created_at)
        return list((await s.execute(stmt)).scalars())
