"""The sync finish's balance check on an account with about a year of history: the full check (every
booked row with its raw JSON and every balance snapshot, checked from scratch) against the check from
its checkpoint (only what is dated from the checkpoint on), through the real ``record_bank_balance``.

``flock /tmp/bench.lock uv run python -m bench.balance_check [--rows 5000] [--snapshots 300]``: a
scratch database; the history written through the sync's write path; each repetition is one finish
(record the night's balance, check, save) in a transaction that is rolled back, so every repetition
sees the same account. Full and incremental alternate; figures are medians. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import time
from decimal import Decimal

from bench.common import log, median, scratch_database
from bench.ingest import _account
from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.models import BankAccount
from ledgerlink.statements.repository import BalanceRepository
from ledgerlink.statements.service import record_bank_balance
from ledgerlink.sync.service import write_transactions

OVERLAP = 10


def history(rows: int, days: int, start: dt.date) -> tuple[list[BankTransaction], dict[dt.date, Decimal]]:
    """``rows`` booked rows over the weekdays of ``days`` days, each with its balance after, and the
    end-of-day balances."""
    weekdays = [
        start + dt.timedelta(days=i) for i in range(days) if (start + dt.timedelta(days=i)).weekday() < 5
    ]
    balance = Decimal("250000.00")
    out: list[BankTransaction] = []
    ends: dict[dt.date, Decimal] = {}
    for i in range(rows):
        day = weekdays[i * len(weekdays) // rows]
        amount = Decimal((i * 7919) % 200_000 - 100_000) / 100
        balance += amount
        ends[day] = balance
        out.append(
            BankTransaction(
                booking_status=BookingStatus.booked,
                amount=amount,
                currency="SEK",
                booking_date=day,
                provider_id=f"B{i}",
                counterparty="Leverantör AB",
                description=f"Betalning {i}",
                raw={
                    "transactionId": f"B{i}",
                    "bookingDate": day.isoformat(),
                    "transactionAmount": {"amount": str(amount), "currency": "SEK"},
                    "balanceAfterTransaction": {"balanceAmount": {"amount": str(balance), "currency": "SEK"}},
                    "remittanceInformationUnstructured": f"Betalning {i} faktura {i * 31}",
                },
            )
        )
    return out, ends


async def run(rows: int, snapshots: int, repetitions: int) -> None:
    async with scratch_database("balance") as db:
        company_id, account_id = await _account(db)
        engine = create_engine(db.url)
        sm = create_sessionmaker(engine)
        start = dt.date(2025, 1, 1)
        days = snapshots + 65
        txs, ends = history(rows, days, start)
        await write_transactions(sm, company_id, account_id, txs)
        today = start + dt.timedelta(days=days - 1)
        balance = ends[max(ends)]
        async with sm() as s:
            account = await s.get(BankAccount, account_id)
            assert account is not None
            account.booked_watermark = max(ends)
            repo = BalanceRepository(s)
            for n in range(snapshots):
                day = today - dt.timedelta(days=snapshots - n)
                amount = ends[max(d for d in ends if d <= day)] if any(d <= day for d in ends) else balance
                at = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
                await repo.record(
                    company_id, account_id, as_of=day, amount=amount, currency="SEK", source="sync", at=at
                )
            await s.commit()
        writes_from = max(ends) - dt.timedelta(days=OVERLAP)
        at = dt.datetime.combine(today, dt.time(3), tzinfo=dt.UTC)

        async def finish(*, full: bool) -> float:
            async with sm() as s:
                account = await s.get(BankAccount, account_id, with_for_update=True)
                assert account is not None
                if full:
                    await BalanceRepository(s).clear_checkpoint_through(account_id, dt.date.min)
                began = time.perf_counter()
                await record_bank_balance(
                    s, account, amount=balance, currency="SEK", as_of=today, at=at, writes_from=writes_from
                )
                elapsed = time.perf_counter() - began
                saved = await BalanceRepository(s).get(account_id)
                assert saved is not None and saved.status == "ok", saved and saved.status
                await s.rollback()
            return elapsed

        # the checkpoint the previous night left
        async with sm() as s:
            account = await s.get(BankAccount, account_id, with_for_update=True)
            assert account is not None
            await record_bank_balance(
                s, account, amount=balance, currency="SEK", as_of=today, at=at, writes_from=writes_from
            )
            await s.commit()
        for _ in range(2):  # warm up
            await finish(full=True)
            await finish(full=False)
        fulls: list[float] = []
        incrementals: list[float] = []
        for _ in range(repetitions):
            fulls.append(await finish(full=True))
            incrementals.append(await finish(full=False))
        await engine.dispose()
    f, i = median(fulls) * 1000, median(incrementals) * 1000
    log(
        f"balance check at the finish, {rows:,} booked rows, {snapshots} snapshots, {repetitions} repetitions"
    )
    print(f"| full check | {f:.2f} ms |")
    print(f"| from the checkpoint | {i:.2f} ms |")
    print(f"| ratio full / incremental | {f / i:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--snapshots", type=int, default=300)
    parser.add_argument("--repetitions", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.snapshots, args.repetitions))


if __name__ == "__main__":
    main()
