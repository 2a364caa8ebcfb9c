"""Jobs enqueued in a unit of work are sent after its commit and dropped with its rollback: the unit of
work (``db.session``) tells its listeners, and the job buffer (``worker.enqueue``) is one of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ledgerlink.db.session import session_scope
from ledgerlink.models.company import Company
from ledgerlink.worker.enqueue import Dispatcher, enqueue, get_dispatcher, set_dispatcher
from ledgerlink.worker.jobs import TASKS, JobContext, TaskDef
from ledgerlink.worker.runner import InProcessRunner

NAME = "tests.foundation.company_seen"


class Boom(Exception):
    pass


@pytest.fixture
async def runner(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[InProcessRunner, list[Any]]]:
    """The embedded default's real dispatcher, with a job that says whether it sees a company row."""
    seen: list[tuple[str, bool]] = []

    async def company_seen(ctx: JobContext, company_id: str) -> None:
        async with ctx["sessionmaker"]() as session:
            seen.append((company_id, await session.get(Company, uuid.UUID(company_id)) is not None))

    TASKS[NAME] = TaskDef(NAME, company_seen, max_tries=1, timeout_seconds=10)
    try:
        previous: Dispatcher | None = get_dispatcher()
    except RuntimeError:
        previous = None
    in_process = InProcessRunner({"sessionmaker": sessionmaker})
    set_dispatcher(in_process)
    try:
        yield in_process, seen
    finally:
        await in_process.aclose()
        set_dispatcher(previous)
        TASKS.pop(NAME, None)


async def test_a_job_is_sent_after_the_commit_and_sees_what_the_unit_wrote(
    sessionmaker: async_sessionmaker[AsyncSession], runner: tuple[InProcessRunner, list[Any]]
) -> None:
    in_process, seen = runner
    company_id = uuid.uuid4()
    async with session_scope(sessionmaker) as session:
        session.add(Company(id=company_id, name="Kaffekoppen AB"))
        enqueue(NAME, company_id=str(company_id))
        assert in_process.running == {}  # buffered, not sent, until the commit
    await in_process.drain()
    assert seen == [(str(company_id), True)]


async def test_a_rolled_back_unit_sends_none_of_its_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], runner: tuple[InProcessRunner, list[Any]]
) -> None:
    in_process, seen = runner
    company_id = uuid.uuid4()

    async def unit_that_fails() -> None:
        async with session_scope(sessionmaker) as session:
            session.add(Company(id=company_id, name="Kaffekoppen AB"))
            await session.flush()
            enqueue(NAME, company_id=str(company_id))
            raise Boom

    with pytest.raises(Boom):
        await unit_that_fails()
    await in_process.drain()
    assert seen == []
    async with sessionmaker() as session:
        assert await session.get(Company, company_id) is None
    # the next unit of work starts with an empty buffer
    async with session_scope(sessionmaker):
        enqueue(NAME, company_id=str(company_id))
    await in_process.drain()
    assert seen == [(str(company_id), False)]


def test_enqueue_outside_a_unit_of_work_is_refused() -> None:
    with pytest.raises(RuntimeError, match="outside a unit of work"):
        enqueue(NAME, company_id=str(uuid.uuid4()))
