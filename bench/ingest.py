"""Ingest: N normalised bank transactions through the real write path of ``sync.account``
(:func:`ledgerlink.sync.service.write_transactions`) against ``COPY`` of the same rows into the same
table (asyncpg ``copy_records_to_table``, the limit), fresh and as a re-sync where every row exists.

Each repetition empties ``bank_transaction``, then times: the write path on fresh rows, the write path
again on the same rows (re-sync: every row exists and is unchanged), then (table emptied again) COPY of
the same rows. COPY is given the rows already normalised (identity derived): it measures how fast
PostgreSQL can take these rows into this table with its indexes, and nothing of ours.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from bench.common import ScratchDb, log, median, ratio, scratch_database
from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.db.session import create_engine, create_sessionmaker
from ledgerlink.inbox.repository import WRITE_COLUMNS
from ledgerlink.models import AccountStatus, BankAccount, BankConnection, Company, ConnectionStatus, Plan
from ledgerlink.sync.service import to_write_rows, write_transactions

COUNTERPARTIES = [
    "ICA Supermarket Hornstull",
    "SL Access",
    "Telia Sverige AB",
    "Kjell & Company",
    "Skatteverket",
]


def transactions(n: int, start: dt.date = dt.date(2024, 1, 1)) -> list[BankTransaction]:
    """N booked transactions with bank ids, about 300 a day, like a busy business account."""
    return [
        BankTransaction(
            BookingStatus.booked,
            Decimal(-(i % 5000) - 1) / 100,
            "SEK",
            start + dt.timedelta(days=i // 300),
            value_date=start + dt.timedelta(days=i // 300),
            provider_id=f"T{i:012d}",
            counterparty=COUNTERPARTIES[i % len(COUNTERPARTIES)],
            description=f"Kortköp {i}",
            reference=f"{i:010d}",
        )
        for i in range(n)
    ]


async def _account(db: ScratchDb) -> tuple[uuid.UUID, uuid.UUID]:
    engine = create_engine(db.url)
    sm = create_sessionmaker(engine)
    company_id = uuid.uuid4()
    async with sm() as s:
        s.add(Company(id=company_id, name="Bench AB", plan=Plan.business))
        connection = BankConnection(
            id=uuid.uuid4(),
            company_id=company_id,
            bank_id="sandbox",
            account_type="business",
            status=ConnectionStatus.active,
        )
        s.add(connection)
        await s.flush()
        account = BankAccount(
            id=uuid.uuid4(),
            company_id=company_id,
            connection_id=connection.id,
            bank_id="sandbox",
            external_id="bench",
            identity_key="bench",
            currency="SEK",
            sync_from=dt.date(2024, 1, 1),
            status=AccountStatus.active,
        )
        s.add(account)
        await s.commit()
    await engine.dispose()
    return company_id, account.id


async def run(rows: int = 200_000, repetitions: int = 3) -> dict[str, Any]:
    async with scratch_database("ingest") as db:
        company_id, account_id = await _account(db)
        txs = transactions(rows)
        engine = create_engine(db.url)
        sm = create_sessionmaker(engine)
        conn = await asyncpg.connect(db.dsn)
        fresh: list[float] = []
        resync: list[float] = []
        copy: list[float] = []
        try:
            for rep in range(repetitions):
                await conn.execute("TRUNCATE bank_transaction CASCADE")  # and what references its rows
                await conn.execute("VACUUM ANALYZE bank_transaction")
                started = time.perf_counter()
                result = await write_transactions(sm, company_id, account_id, txs)
                fresh.append(time.perf_counter() - started)
                assert result.inserted == rows, result
                started = time.perf_counter()
                again = await write_transactions(sm, company_id, account_id, txs)
                resync.append(time.perf_counter() - started)
                assert again.inserted == 0 and again.updated == 0, again

                await conn.execute("TRUNCATE bank_transaction CASCADE")  # and what references its rows
                await conn.execute("VACUUM ANALYZE bank_transaction")
                write_rows = to_write_rows(txs)  # normalised rows: the limit does none of our work
                seen = dt.datetime.now(dt.UTC)
                started = time.perf_counter()
                records = [
                    (
                        uuid.uuid4(),
                        company_id,
                        account_id,
                        r.identity,
                        r.provider_id,
                        r.booking_status,
                        r.booking_date,
                        r.value_date,
                        r.amount,
                        r.currency,
                        r.counterparty,
                        r.description,
                        r.reference,
                        "unbooked",
                        json.dumps(r.raw) if r.raw else None,
                        seen,
                        seen,
                    )
                    for r in write_rows
                ]
                await conn.copy_records_to_table("bank_transaction", records=records, columns=WRITE_COLUMNS)
                copy.append(time.perf_counter() - started)
                count = await conn.fetchval("SELECT count(*) FROM bank_transaction")
                assert count == rows
                log(
                    f"ingest rep {rep + 1}: fresh {fresh[-1]:.2f}s, re-sync {resync[-1]:.2f}s, "
                    f"COPY {copy[-1]:.2f}s"
                )
        finally:
            await conn.close()
            await engine.dispose()
    fresh_rps = rows / median(fresh)
    resync_rps = rows / median(resync)
    copy_rps = rows / median(copy)
    return {
        "rows": rows,
        "repetitions": repetitions,
        "fresh_seconds": [round(x, 3) for x in fresh],
        "resync_seconds": [round(x, 3) for x in resync],
        "copy_seconds": [round(x, 3) for x in copy],
        "fresh_rows_per_s": round(fresh_rps),
        "resync_rows_per_s": round(resync_rps),
        "copy_rows_per_s": round(copy_rps),
        "fresh_ratio": ratio(fresh_rps, copy_rps),
        "resync_ratio": ratio(resync_rps, copy_rps),
        "goal": "fresh rows/s >= 0.5 x COPY",
        "met": fresh_rps >= 0.5 * copy_rps,
    }
