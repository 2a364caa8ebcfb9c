from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledgerlink.config import Settings
from ledgerlink.sync import service as sync_service
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.jobs import JobContext
from ledgerlink.worker.runner import ArqDispatcher
from ledgerlink.worker.settings import load_all_tasks
from tests.sync.factories import SimClock


@pytest.fixture
def clock() -> Iterator[SimClock]:
    sim = SimClock()
    sync_service.set_clock(sim)
    yield sim
    sync_service.set_clock(None)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.sync.per_bank_concurrency = 100  # no deferral in burst-mode tests
    return settings


@pytest.fixture
def job_ctx(settings: Settings, sessionmaker: Any, arq_redis: Any, transports: dict[str, Any]) -> JobContext:
    """The context cron passes get, for calling them directly; enqueue goes to the test queue."""
    load_all_tasks()
    set_dispatcher(ArqDispatcher(arq_redis, queue_name=settings.queue_name))
    return {"settings": settings, "sessionmaker": sessionmaker, "redis": arq_redis, "transports": transports}
