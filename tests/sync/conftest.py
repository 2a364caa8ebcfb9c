from __future__ import annotations

from typing import Any

import pytest

from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.jobs import JobContext
from ledgerlink.worker.runner import ArqDispatcher
from ledgerlink.worker.settings import load_all_tasks
from tests.sync.factories import SimClock


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def service_clock(request: pytest.FixtureRequest) -> Clock:
    """The simulated clock when the test moves one (``clock``): the app and the jobs run on it."""
    if "clock" in request.fixturenames:
        sim: SimClock = request.getfixturevalue("clock")
        return sim
    return system_clock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.sync.per_bank_concurrency = 100  # no deferral in burst-mode tests
    return settings


@pytest.fixture
def job_ctx(
    settings: Settings, sessionmaker: Any, arq_redis: Any, transports: dict[str, Any], service_clock: Clock
) -> JobContext:
    """The context a job gets; enqueue goes to the test queue."""
    load_all_tasks()
    set_dispatcher(ArqDispatcher(arq_redis, queue_name=settings.queue_name))
    return {
        "settings": settings,
        "sessionmaker": sessionmaker,
        "redis": arq_redis,
        "transports": transports,
        "clock": service_clock,
    }
