"""Test factories: a business company, a sandbox bank with a movable clock, and connected accounts whose
credentials come from a real consent obtained from the sandbox bank (create → approve → complete)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.routing import Mount

from ledgerlink.banks.adapters.base import STOCKHOLM, ConnectionContext
from ledgerlink.banks.service import ConnectionSecrets, build_adapter, save_secrets
from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, Company, ConnectionStatus, Plan
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.bank_data import psu_slug

REDIRECT = "https://app.example.test/callback"


@dataclass
class SimClock:
    """One clock for us and the sandbox bank: a UTC instant that tests move night by night."""

    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.at

    def bank_today(self) -> dt.date:
        return self.at.astimezone(STOCKHOLM).date()

    def set_local(self, day: dt.date, hour: int, minute: int = 0) -> None:
        self.at = dt.datetime.combine(day, dt.time(hour, minute), STOCKHOLM).astimezone(dt.UTC)


def sandbox_transport(clock: SimClock, **kw: Any) -> httpx.ASGITransport:
    bank = create_sandbox_bank_app(clock=clock.bank_today, slow_seconds=kw.pop("slow_seconds", 0.0), **kw)
    return httpx.ASGITransport(app=Starlette(routes=[Mount("/sandbox/bank", app=bank)]))


async def make_company(
    sessionmaker: async_sessionmaker[AsyncSession], company_id: uuid.UUID, plan: Plan = Plan.business
) -> None:
    async with sessionmaker() as s:
        s.add(Company(id=company_id, name="Kaffekoppen AB", plan=plan))
        await s.commit()


async def make_account(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    transport: httpx.AsyncBaseTransport,
    company_id: uuid.UUID,
    *,
    psu: str = "anna",
    kind: str = "ftg",
    sync_from: dt.date,
    consent_expires_at: dt.datetime | None = None,
    clock: Clock = system_clock,
) -> BankAccount:
    """A connected, active sandbox account with real consent credentials stored encrypted."""
    adapter = build_adapter(settings, "sandbox", {"sandbox": transport})
    ctx = ConnectionContext(account_type="business", psu_id=psu, psu_ip_address="127.0.0.1")
    try:
        start = await adapter.start_authorization(ctx, redirect_uri=REDIRECT, state=uuid.uuid4().hex)
        assert start.url is not None
        async with httpx.AsyncClient(transport=transport) as bank:
            answer = await bank.get(start.url, params={"approve": "1", "psu": psu})
        code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
        credentials = await adapter.complete_authorization(
            ctx, start.credentials, code=code, redirect_uri=REDIRECT
        )
    finally:
        await adapter.aclose()
    external_id = f"{kind}-{psu_slug(psu)}"
    async with sessionmaker() as s:
        connection = BankConnection(
            id=uuid.uuid4(),
            company_id=company_id,
            bank_id="sandbox",
            account_type="business",
            status=ConnectionStatus.active,
            consent_expires_at=consent_expires_at or clock() + dt.timedelta(days=89),
        )
        save_secrets(settings, connection, ConnectionSecrets(credentials=credentials, psu_id=psu))
        s.add(connection)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(),
            company_id=company_id,
            connection_id=connection.id,
            bank_id="sandbox",
            external_id=external_id,
            identity_key=f"{external_id}:{uuid.uuid4().hex[:6]}",
            currency="SEK",
            name="Företagskonto",
            ledger_account="1930",
            sync_from=sync_from,
            status=AccountStatus.active,
        )
        s.add(account)
        await s.commit()
    return account
