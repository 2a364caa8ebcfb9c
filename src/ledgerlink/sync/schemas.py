"""Sync schemas (the run shape is shared with the banks feature's confirmation/backfill answers)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ledgerlink.banks.schemas import BankAccountSyncRun

SyncRunRead = BankAccountSyncRun


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
