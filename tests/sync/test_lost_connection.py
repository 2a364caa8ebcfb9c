"""A sync job whose database connection breaks under a statement is retried shortly (the worker's pool
pings only idle connections, so a dead one can meet a statement); any other error is not turned into a
retry, and the account's lock is released either way."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError

from ledgerlink.config import Settings
from ledgerlink.sync import tasks
from ledgerlink.sync.service.lock import Lock
from ledgerlink.worker.jobs import JobContext, RetryLater


def _ctx(settings: Settings) -> JobContext:
    return {"settings": settings, "sessionmaker": None, "transports": {}}  # type: ignore[typeddict-item]


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    freed: list[uuid.UUID] = []

    async def take(_env: Any, _run_id: uuid.UUID) -> Lock:
        account = uuid.uuid4()

        async def release() -> None:
            freed.append(account)

        return Lock(account, "token", release)

    monkeypatch.setattr(tasks, "take_lock", take)
    return freed


def _failing(exc: Exception) -> Any:
    async def execute_run(*_args: Any, **_kwargs: Any) -> Any:
        raise exc

    return execute_run


async def test_a_lost_connection_retries_the_job(
    settings: Settings, released: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = DBAPIError("SELECT 1", None, ConnectionResetError("reset"), connection_invalidated=True)
    monkeypatch.setattr(tasks, "execute_run", _failing(lost))
    with pytest.raises(RetryLater) as retry:
        await tasks.sync_account(_ctx(settings), str(uuid.uuid4()))
    assert retry.value.defer_seconds == tasks.LOST_CONNECTION_RETRY_SECONDS
    assert len(released) == 1


async def test_other_errors_are_not_retried_as_lost_connections(
    settings: Settings, released: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = DBAPIError("SELECT 1", None, ValueError("bad"), connection_invalidated=False)
    monkeypatch.setattr(tasks, "execute_run", _failing(broken))
    with pytest.raises(DBAPIError):
        await tasks.sync_account(_ctx(settings), str(uuid.uuid4()))
    assert len(released) == 1
