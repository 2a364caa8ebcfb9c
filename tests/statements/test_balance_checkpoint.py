"""The balance check's checkpoint against real PostgreSQL: night after night (rows inside the window,
late rows with old dates, a run that wrote and never finished, balance reads, statements with their
missing rows and closing balance, rows with and without a balance after, gaps that appear and close)
the stored reconciliation is exactly the full check over everything held, and the nightly check reads
only the rows and balances dated from its checkpoint on."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.models import BankAccount
from ledgerlink.statements import balance as balance_check
from ledgerlink.statements.repository import STATEMENT_IDENTITY_PREFIX, BalanceRepository, StatementRepository
from ledgerlink.statements.service import clear_balance_checkpoint, reconcile, record_bank_balance
from ledgerlink.sync.service.common import write_transactions
from tests.statements.test_imports_api import make_account

OVERLAP = 5
FIRST = dt.date(2026, 1, 1)


@dataclass
class Bank:
    """The bank's truth: every booked row with its balance after, and the rows its feed leaves out."""

    rng: random.Random
    balance: Decimal
    rows: list[tuple[str, dt.date, Decimal, Decimal]] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)
    all_afters: bool = False  # else every third row comes without its balance after

    def book(self, day: dt.date, count: int, drop_rate: float) -> None:
        for _ in range(count):
            amount = Decimal(self.rng.randint(-40_000, 40_000)) / 100
            self.balance += amount
            pid = f"T{len(self.rows)}"
            self.rows.append((pid, day, amount, self.balance))
            if self.rng.random() < drop_rate:
                self.dropped.add(pid)

    def end_of(self, day: dt.date) -> Decimal:
        return self.balance - sum((a for _, d, a, _ in self.rows if d > day), Decimal(0))

    def feed(self, date_from: dt.date, date_to: dt.date) -> list[BankTransaction]:
        out = []
        for pid, day, amount, after in self.rows:
            if date_from <= day <= date_to and pid not in self.dropped:
                raw: dict[str, Any] = {}
                if self.all_afters or int(pid[1:]) % 3:
                    raw["balanceAfterTransaction"] = {
                        "balanceAmount": {"amount": str(after), "currency": "SEK"}
                    }
                out.append(
                    BankTransaction(
                        booking_status=BookingStatus.booked,
                        amount=amount,
                        currency="SEK",
                        booking_date=day,
                        provider_id=pid,
                        description=f"row {pid}",
                        raw=raw,
                    )
                )
        return out


@dataclass
class Reads:
    """What the check asked the repository for: (from_day, rows returned) of each ``booked`` call."""

    calls: list[tuple[dt.date | None, int]] = field(default_factory=list)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    spy = Reads()
    real = BalanceRepository.booked

    async def booked(
        self: BalanceRepository,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        *,
        from_day: dt.date | None = None,
    ) -> Sequence[tuple[dt.date, Decimal, Any]]:
        rows = await real(self, company_id, account_id, from_day=from_day)
        spy.calls.append((from_day, len(rows)))
        return rows

    monkeypatch.setattr(BalanceRepository, "booked", booked)
    return spy


async def finish(
    sm: async_sessionmaker[AsyncSession],
    account_id: uuid.UUID,
    amount: Decimal,
    as_of: dt.date,
    at: dt.datetime,
) -> None:
    """What a successful sync's finish does with the balance it read (``_succeed``)."""
    async with sm() as s:
        account = await s.get(BankAccount, account_id, with_for_update=True)
        assert account is not None and account.booked_watermark is not None
        await record_bank_balance(
            s,
            account,
            amount=amount,
            currency="SEK",
            as_of=as_of,
            at=at,
            writes_from=account.booked_watermark - dt.timedelta(days=OVERLAP),
        )
        await s.commit()


async def sync_rows(
    sm: async_sessionmaker[AsyncSession],
    company_id: uuid.UUID,
    account_id: uuid.UUID,
    rows: list[BankTransaction],
    window: tuple[dt.date, dt.date],
) -> None:
    result = await write_transactions(sm, company_id, account_id, rows, window=window)
    async with sm() as s:
        account = await s.get(BankAccount, account_id, with_for_update=True)
        assert account is not None
        if result.newest_booked and (account.booked_watermark or FIRST) < result.newest_booked:
            account.booked_watermark = result.newest_booked
        await s.commit()


async def statement(
    sm: async_sessionmaker[AsyncSession], bank: Bank, account_id: uuid.UUID, closing: dt.date, at: dt.datetime
) -> None:
    """What a statement commit does: insert the rows the feed left out (with their balance after), record
    the closing balance, check."""
    async with sm() as s:
        account = await s.get(BankAccount, account_id, with_for_update=True)
        assert account is not None
        inserts = []
        for pid, day, amount, after in bank.rows:
            if pid in bank.dropped and day <= closing:
                bank.dropped.discard(pid)
                tx = uuid.uuid4()
                inserts.append(
                    {
                        "id": tx,
                        "company_id": account.company_id,
                        "account_id": account.id,
                        "identity": f"{STATEMENT_IDENTITY_PREFIX}{tx.hex}",
                        "provider_id": pid,
                        "booking_status": "booked",
                        "booking_date": day,
                        "value_date": None,
                        "amount": amount,
                        "currency": "SEK",
                        "counterparty": None,
                        "description": f"row {pid}",
                        "reference": None,
                        "raw": {"source": "statement", "balance_after": format(after, "f")},
                        "first_seen_at": at,
                        "last_seen_at": at,
                    }
                )
        if inserts:
            await clear_balance_checkpoint(
                s, account.id, [_W(i["booking_date"], i["identity"]) for i in inserts]
            )
        await StatementRepository(s).insert_transactions(inserts)
        repo = BalanceRepository(s)
        await repo.record(
            account.company_id,
            account.id,
            as_of=closing,
            amount=bank.end_of(closing),
            currency="SEK",
            source="statement",
            at=at,
        )
        await reconcile(s, account, at=at)
        await s.commit()


@dataclass(frozen=True)
class _W:
    booking_date: dt.date
    identity: str


async def assert_is_the_full_check(
    sm: async_sessionmaker[AsyncSession], company_id: uuid.UUID, account_id: uuid.UUID, spy: Reads
) -> balance_check.Check:
    async with sm() as s:
        repo = BalanceRepository(s)
        snapshots = await repo.snapshots(account_id)
        reads = [(x.as_of, Decimal(x.amount)) for x in snapshots if x.source == "sync"]
        statement_reads = [(x.as_of, Decimal(x.amount)) for x in snapshots if x.source != "sync"]
        before = len(spy.calls)
        full = balance_check.check(await repo.booked(company_id, account_id), [*statement_reads, *reads])
        del spy.calls[before:]
        saved = await repo.get(account_id)
    assert saved is not None
    got = (
        saved.status,
        saved.bank_amount,
        saved.bank_as_of,
        saved.computed_amount,
        saved.gap,
        saved.gap_since,
        saved.opening_amount,
    )
    assert got == (
        full.status,
        full.bank_amount,
        full.bank_as_of,
        full.computed,
        full.gap,
        full.gap_since,
        full.opening,
    )
    return full


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_nights_store_exactly_the_full_check(
    sessionmaker: Any, company_id: uuid.UUID, reads: Reads, seed: int
) -> None:
    rng = random.Random(seed)
    account_id = await make_account(sessionmaker, company_id)
    bank = Bank(rng, Decimal(rng.randint(0, 500_000)) / 100)
    today = FIRST
    watermark: dt.date | None = None
    incremental = nights = gaps = 0
    for night in range(30):
        today += dt.timedelta(days=1)
        at = dt.datetime.combine(today, dt.time(3), tzinfo=dt.UTC)
        bank.book(today, rng.randint(0, 4) if today.weekday() < 5 else 0, drop_rate=0.06)
        if rng.random() < 0.1 and night > 5:
            # a late row the bank books with an old date
            bank.book(today - dt.timedelta(days=rng.randint(OVERLAP + 1, 20)), 1, drop_rate=0)
        if rng.random() < 0.08 and night > 5:
            # a backfill that wrote old rows and never finished (no balance, no check)
            old = today - dt.timedelta(days=rng.randint(10, 25))
            await sync_rows(sessionmaker, company_id, account_id, bank.feed(FIRST, old), (FIRST, old))
        window_from = watermark - dt.timedelta(days=OVERLAP) if watermark else FIRST
        if rng.random() < 0.1:
            window_from = FIRST  # a user's sync with a deep window
        await sync_rows(
            sessionmaker, company_id, account_id, bank.feed(window_from, today), (window_from, today)
        )
        async with sessionmaker() as s:
            account = await s.get(BankAccount, account_id)
            assert account is not None
            watermark = account.booked_watermark
        if watermark is None:
            continue
        as_of = today if rng.random() < 0.9 else today - dt.timedelta(days=rng.randint(1, 10))
        amount = bank.end_of(as_of) + (Decimal("7.00") if rng.random() < 0.05 else 0)
        reads.calls.clear()
        await finish(sessionmaker, account_id, amount, as_of, at)
        nights += 1
        incremental += any(f is not None for f, _ in reads.calls) and all(
            f is not None for f, _ in reads.calls
        )
        gaps += (await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)).status == "gap"
        if rng.random() < 0.12:
            closing = today - dt.timedelta(days=rng.randint(0, 12))
            await statement(sessionmaker, bank, account_id, closing, at + dt.timedelta(hours=6))
            await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)
    assert incremental >= nights // 2, (incremental, nights)
    assert gaps > 0  # the feed's dropped rows did show


async def test_the_nightly_check_reads_only_rows_from_its_checkpoint_on(
    sessionmaker: Any, company_id: uuid.UUID, reads: Reads
) -> None:
    account_id = await make_account(sessionmaker, company_id)
    bank = Bank(random.Random(7), Decimal("10000.00"), all_afters=True)
    day = FIRST
    while day < FIRST + dt.timedelta(days=120):
        bank.book(day, 3 if day.weekday() < 5 else 0, drop_rate=0)
        day += dt.timedelta(days=1)
    await sync_rows(sessionmaker, company_id, account_id, bank.feed(FIRST, day), (FIRST, day))
    total = len(bank.rows)
    reads.calls.clear()
    await finish(
        sessionmaker, account_id, bank.end_of(day), day, dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
    )
    assert reads.calls == [(None, total)]  # the first check reads everything and keeps a checkpoint
    await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)
    async with sessionmaker() as s:
        stored = await BalanceRepository(s).checkpoint(account_id)
        account = await s.get(BankAccount, account_id)
    assert stored is not None and account is not None and account.booked_watermark is not None
    checkpoint_day = account.booked_watermark - dt.timedelta(days=OVERLAP + 1)
    assert stored[0] == checkpoint_day

    # the next night: one day of new rows inside the window
    day += dt.timedelta(days=1)
    bank.book(day, 2, drop_rate=0)
    window_from = account.booked_watermark - dt.timedelta(days=OVERLAP)
    await sync_rows(sessionmaker, company_id, account_id, bank.feed(window_from, day), (window_from, day))
    reads.calls.clear()
    await finish(
        sessionmaker, account_id, bank.end_of(day), day, dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
    )
    since_checkpoint = sum(1 for _, d, _, _ in bank.rows if d >= checkpoint_day)
    assert reads.calls == [(checkpoint_day, since_checkpoint)]
    assert since_checkpoint < total // 5
    assert (await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)).status == "ok"

    # a row dated before the checkpoint drops it: the next check is full again
    bank.book(checkpoint_day - dt.timedelta(days=3), 1, drop_rate=0)
    await sync_rows(sessionmaker, company_id, account_id, bank.feed(FIRST, day), (FIRST, day))
    async with sessionmaker() as s:
        assert await BalanceRepository(s).checkpoint(account_id) is None
    reads.calls.clear()
    await finish(
        sessionmaker, account_id, bank.end_of(day), day, dt.datetime.combine(day, dt.time(4), tzinfo=dt.UTC)
    )
    assert reads.calls == [(None, len(bank.rows))]
    assert (await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)).status == "ok"


async def test_a_row_the_bank_moves_out_of_the_checkpoint_drops_it(
    sessionmaker: Any, company_id: uuid.UUID, reads: Reads
) -> None:
    """The bank re-sends a row of an old day (same transaction id) with a date inside the window: the
    write is dated after the checkpoint, but the row it rewrites was counted in it."""
    account_id = await make_account(sessionmaker, company_id)
    bank = Bank(random.Random(11), Decimal("5000.00"), all_afters=True)
    day = FIRST
    while day < FIRST + dt.timedelta(days=60):
        bank.book(day, 2 if day.weekday() < 5 else 0, drop_rate=0)
        day += dt.timedelta(days=1)
    await sync_rows(sessionmaker, company_id, account_id, bank.feed(FIRST, day), (FIRST, day))
    at = dt.datetime.combine(day, dt.time(3), tzinfo=dt.UTC)
    await finish(sessionmaker, account_id, bank.end_of(day), day, at)
    async with sessionmaker() as s:
        stored = await BalanceRepository(s).checkpoint(account_id)
        account = await s.get(BankAccount, account_id)
    assert stored is not None and account is not None and account.booked_watermark is not None
    window_from = account.booked_watermark - dt.timedelta(days=OVERLAP)

    pid, old_day, amount, after = bank.rows[10]
    assert old_day < stored[0]
    bank.rows[10] = (pid, day, amount, after)  # now dated today
    await sync_rows(sessionmaker, company_id, account_id, bank.feed(window_from, day), (window_from, day))
    async with sessionmaker() as s:
        assert await BalanceRepository(s).checkpoint(account_id) is None
    reads.calls.clear()
    await finish(sessionmaker, account_id, bank.end_of(day), day, at + dt.timedelta(hours=1))
    assert [f for f, _ in reads.calls] == [None]
    await assert_is_the_full_check(sessionmaker, company_id, account_id, reads)
