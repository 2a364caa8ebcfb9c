"""Sync schemas. The run shape (:class:`BankAccountSyncRun`, named so by the API contract) is also what
the bank-account endpoints answer for confirmation and backfill (:class:`BankAccountUpdated`): they
import it from here (the bank services return the ``SyncRun`` row and never import the sync feature)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ledgerlink.banks.schemas import BankAccountRead
from ledgerlink.models.bank import SyncRun, SyncStatus
from ledgerlink.timestamps import Timestamp


class SyncCounts(BaseModel):
    fetched: int
    inserted: int
    updated: int
    removed: int


class SyncError(BaseModel):
    code: str
    message: str
    retryable: bool


class SyncProgress(BaseModel):
    done: int
    total: int | None
    step: str


class BankAccountSyncRun(BaseModel):
    """A sync run (the Syncs shape of the API), as answered by confirmation and backfill."""

    id: uuid.UUID
    bank_account_id: uuid.UUID
    trigger: Literal["initial", "scheduled", "manual", "backfill"]
    window_from: dt.date | None
    window_to: dt.date | None
    status: Literal["queued", "running", "succeeded", "failed", "deferred"]
    started_at: Timestamp | None
    finished_at: Timestamp | None
    counts: SyncCounts
    progress: SyncProgress
    error: SyncError | None
    next_attempt_at: Timestamp | None


# A bank account as PATCH /bank-accounts/{id} answers it: with the backfill run moving sync_from
# earlier scheduled.
class BankAccountUpdated(BankAccountRead):
    backfill: BankAccountSyncRun | None = Field(
        default=None, description="The backfill run scheduled because sync_from moved earlier"
    )


def run_read(run: SyncRun) -> BankAccountSyncRun:
    error = (
        SyncError(code=run.error_code, message=run.error_message or "", retryable=bool(run.error_retryable))
        if run.error_code
        else None
    )
    done = run.status in (SyncStatus.succeeded, SyncStatus.failed)
    return BankAccountSyncRun(
        id=run.id,
        bank_account_id=run.account_id,
        trigger=run.trigger.value,
        window_from=run.window_from,
        window_to=run.window_to,
        status=run.status.value,
        started_at=run.started_at,
        finished_at=run.finished_at,
        counts=SyncCounts(
            fetched=run.fetched, inserted=run.inserted, updated=run.updated, removed=run.removed
        ),
        progress=SyncProgress(done=1 if done else 0, total=1, step=run.status.value),
        error=error,
        next_attempt_at=run.next_attempt_at,
    )


class SyncRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: dt.date | None = Field(
        default=None, alias="from", description="First day (default: planned window)"
    )
    to: dt.date | None = Field(default=None, description="Last day (default: today, Europe/Stockholm)")


#: A wall-clock time in the schedule's ``time_zone``. Not JSON Schema's ``format: time`` (RFC 3339
#: full-time, which needs an offset): a night window is local time, its offset changes with DST.
LocalTime = Annotated[
    dt.time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$",
            "description": "Local wall-clock time (HH:MM:SS) in time_zone",
        }
    ),
]


class SyncSchedule(BaseModel):
    time_zone: str = "Europe/Stockholm"
    window_start: LocalTime
    window_end: LocalTime
    overlap_days: int
    per_bank_concurrency: int
    unattended_reads_per_day: int
    max_attempts: int
