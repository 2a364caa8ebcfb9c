"""The PSD2 allowance of unattended reads (docs/architecture.md, rule 5): where its day starts, and what is
left of it per bank (the operator's figure; the engine spends it in :func:`.engine.spend_read`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.clock import STOCKHOLM, today_stockholm
from ledgerlink.sync.repository import LifecycleRepository

#: The endpoints the engine spends unattended reads of (``spend_read``); each has its own allowance.
UNATTENDED_ENDPOINTS = ("transactions", "balances")


def allowance_window_start(at: dt.datetime) -> dt.datetime:
    """The reads counted against the allowance at ``at``: those of the last 24 hours, or since Stockholm
    midnight when that is longer (a 25-hour day)."""
    midnight = dt.datetime.combine(today_stockholm(at), dt.time(0), STOCKHOLM).astimezone(dt.UTC)
    return min(at - dt.timedelta(hours=24), midnight)


@dataclass(frozen=True)
class BankAllowance:
    """One bank's active accounts and one endpoint: the unattended reads they may still make now, and
    how many of them have none left."""

    bank_id: str
    endpoint: str
    remaining: int
    accounts_spent: int


async def allowance_by_bank(session: AsyncSession, per_day: int, at: dt.datetime) -> list[BankAllowance]:
    """Every bank with an active account, for each endpoint of :data:`UNATTENDED_ENDPOINTS`: two grouped
    reads (the ledger holds two days at most: the cron pass prunes it)."""
    repo = LifecycleRepository(session)
    accounts = await repo.active_accounts_by_bank()
    used = await repo.unattended_use_by_bank(allowance_window_start(at), per_day)
    figures = []
    for bank_id, count in sorted(accounts.items()):
        for endpoint in UNATTENDED_ENDPOINTS:
            capped, spent = used.get((bank_id, endpoint), (0, 0))
            figures.append(BankAllowance(bank_id, endpoint, max(0, count * per_day - capped), spent))
    return figures
