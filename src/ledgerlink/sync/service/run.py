"""What a sync run carries between the engine's phases (:mod:`.engine`) and the endings of a run that did
not succeed (:mod:`.failures`): the claimed plan, the outcome, the allowance's deferral, and the unit of
work that locks the run with its account."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.banks.adapters.base import ConnectionContext, Credentials
from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.db.session import session_scope
from ledgerlink.models.bank import BankAccount, SyncRun, SyncTrigger
from ledgerlink.runtime import ServiceEnv
from ledgerlink.sync.repository import SyncRunRepository


@dataclass
class Outcome:
    status: str
    retry_in: float | None = None


@dataclass
class ClaimedRun:
    """A run claimed for reading: its account and connection, window and credentials (the run's plan)."""

    run_id: uuid.UUID
    company_id: uuid.UUID
    account_id: uuid.UUID
    connection_id: uuid.UUID
    bank_id: str
    external_id: str
    user_present: bool
    trigger: SyncTrigger
    attempts: int
    window: tuple[dt.date, dt.date]
    credentials: Credentials
    context: ConnectionContext


class Deferred(Exception):
    """The allowance is spent: try again at ``at``."""

    def __init__(self, at: dt.datetime) -> None:
        super().__init__(at.isoformat())
        self.at = at


def record_error(run: SyncRun, code: str, message: str, *, retryable: bool) -> None:
    run.error_code, run.error_message, run.error_retryable = code, message[:1000], retryable


@asynccontextmanager
async def run_and_account(
    ctx: ServiceEnv, plan: ClaimedRun
) -> AsyncIterator[tuple[AsyncSession, SyncRun, BankAccount] | None]:
    """One unit of work with the run and its account locked (None when either is gone)."""
    async with session_scope(ctx.sessionmaker) as session:
        run = await SyncRunRepository(session).get_for_update(plan.run_id)
        account = await BankAccountRepository(session).get_for_update(plan.account_id)
        yield (session, run, account) if run is not None and account is not None else None
