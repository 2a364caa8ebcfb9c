"""The in-process runner of the embedded default (``make run`` without Redis) forgets finished jobs,
so a server that runs for days does not keep every cron and sync job it ever ran."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledgerlink.worker.enqueue import PendingJob
from ledgerlink.worker.jobs import TASKS, JobContext, TaskDef
from ledgerlink.worker.runner import InProcessRunner

NAME = "tests.e2e.echo"


@pytest.fixture
def calls() -> Iterator[list[Any]]:
    seen: list[Any] = []

    async def echo(ctx: JobContext, value: int) -> None:
        seen.append((ctx["job_id"], value))

    TASKS[NAME] = TaskDef(NAME, echo, max_tries=1, timeout_seconds=10)
    yield seen
    TASKS.pop(NAME, None)


async def test_finished_jobs_leave_the_registry_and_the_same_id_can_run_again(calls: list[Any]) -> None:
    runner = InProcessRunner({})
    try:
        assert await runner.dispatch(PendingJob(NAME, {"value": 1}, job_id="cron:x:(1, 0)"))
        assert not await runner.dispatch(
            PendingJob(NAME, {"value": 2}, job_id="cron:x:(1, 0)")
        )  # still running
        await runner.drain()
        assert runner.running == {}
        assert await runner.dispatch(PendingJob(NAME, {"value": 3}, job_id="cron:x:(1, 0)"))
        for n in range(20):
            await runner.dispatch(PendingJob(NAME, {"value": 10 + n}))
        await runner.drain()
        assert runner.running == {}
        assert [v for _, v in calls] == [1, 3, *range(10, 30)]
    finally:
        await runner.aclose()
