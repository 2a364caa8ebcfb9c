"""``sync_stalled``: judged by the account's own history of quiet spells, not by a fixed number."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ledgerlink.banks.adapters.base import BankTransaction as FeedRow
from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.models import Todo
from ledgerlink.runtime import ServiceEnv
from ledgerlink.statements.health import stalled
from ledgerlink.statements.service import sweep_stalled
from ledgerlink.sync.service.common import write_transactions
from tests.statements.test_imports_api import make_account

D = dt.date
WEEKLY = [D(2026, 1, 5) + dt.timedelta(days=7 * i) for i in range(8)]  # a row every Monday, up to 23 Feb


def test_quiet_longer_than_ever_is_stalled_and_shorter_is_not() -> None:
    assert stalled(WEEKLY, D(2026, 3, 2)) is None  # 7 days: as usual
    quiet = stalled(WEEKLY, D(2026, 3, 3))
    assert quiet is not None and (quiet.quiet_days, quiet.longest_quiet_days) == (8, 7)
    assert stalled(WEEKLY[:3], D(2026, 6, 1)) is None  # too little history to judge


async def test_the_sweep_opens_and_resolves_the_todo(
    settings: Any, sessionmaker: Any, company_id: uuid.UUID
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    rows = [
        FeedRow(
            booking_status=BookingStatus.booked,
            amount=Decimal("-10.00"),
            currency="SEK",
            booking_date=d,
            description=f"Avgift {d}",
        )
        for d in WEEKLY
    ]
    await write_transactions(sessionmaker, company_id, account_id, rows)

    async def open_todos() -> list[Todo]:
        async with sessionmaker() as s:
            stmt = select(Todo).where(Todo.type == "sync_stalled", Todo.resolved_at.is_(None))
            return list((await s.execute(stmt)).scalars())

    at = dt.datetime(2026, 3, 4, 8, tzinfo=dt.UTC)
    assert (
        await sweep_stalled(ServiceEnv(settings=settings, sessionmaker=sessionmaker, clock=lambda: at)) == 1
    )
    (todo,) = await open_todos()
    assert todo.data == {
        "bank_account_id": str(account_id),
        "last_row_date": "2026-02-23",
        "days_without_rows": 9,
        "longest_quiet_days": 7,
    }
    late = FeedRow(
        booking_status=BookingStatus.booked,
        amount=Decimal("-10.00"),
        currency="SEK",
        booking_date=D(2026, 3, 3),
        description="Avgift",
    )
    await write_transactions(sessionmaker, company_id, account_id, [late])
    assert (
        await sweep_stalled(ServiceEnv(settings=settings, sessionmaker=sessionmaker, clock=lambda: at)) == 0
    )
    assert await open_todos() == []
