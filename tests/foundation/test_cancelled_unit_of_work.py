"""A task cancelled inside a unit of work (Ctrl+C on ``make run`` while a job runs, a job's timeout): the
transaction is all or nothing, and the log shows one info line, not an error with a traceback
(:class:`ledgerlink.logging.CancelledResetFilter`)."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from ledgerlink.db.session import create_engine, create_sessionmaker, session_scope
from ledgerlink.logging import configure_logging

pytestmark = pytest.mark.sqlite

ROWS_PER_UNIT = 20


async def test_cancelling_inside_a_transaction_half_writes_nothing_and_logs_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("INFO", json=True)
    caplog.set_level(logging.INFO, logger="sqlalchemy.pool")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'cancel.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE row_written (id TEXT PRIMARY KEY, unit TEXT NOT NULL)"))
    sessionmaker = create_sessionmaker(engine)

    async def write_units() -> None:
        while True:
            async with session_scope(sessionmaker) as session:
                unit = uuid.uuid4().hex
                for _ in range(ROWS_PER_UNIT):
                    await session.execute(
                        text("INSERT INTO row_written VALUES (:id, :unit)"),
                        {"id": uuid.uuid4().hex, "unit": unit},
                    )

    def cancelled_resets() -> int:
        """The pool's cancelled resets, logged either way (as the info line, or as the raw error)."""
        return sum(
            "db.connection_discarded" in r.getMessage()
            or (r.exc_info is not None and isinstance(r.exc_info[1], asyncio.CancelledError))
            for r in caplog.records
        )

    rng = random.Random(7)
    tries = 0
    try:
        # Cancel at random moments until the pool has met a cancelled reset a few times (most moments
        # fall between statements, where the rollback is clean anyway).
        while cancelled_resets() < 3 and tries < 2000:
            tries += 1
            task = asyncio.create_task(write_units())
            await asyncio.sleep(rng.random() * 0.03)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with engine.connect() as conn:
            sizes = (await conn.execute(text("SELECT unit, count(*) FROM row_written GROUP BY unit"))).all()
    finally:
        await engine.dispose()

    assert cancelled_resets() >= 3, f"no cancelled reset in {tries} cancellations"
    pool_problems = [
        r for r in caplog.records if r.name.startswith("sqlalchemy") and r.levelno >= logging.WARNING
    ]
    assert pool_problems == [], [r.getMessage() for r in pool_problems]
    assert all(r.exc_info is None for r in caplog.records if r.name.startswith("sqlalchemy"))
    assert sizes and {n for _, n in sizes} == {ROWS_PER_UNIT}  # every unit whole, none half-written
