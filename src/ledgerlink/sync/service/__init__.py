"""The sync feature's services: scheduling (:func:`schedule_sync`), windows and the write path
(:mod:`.common`), the run engine (:mod:`.engine`) and the cron passes (:mod:`.cron`)."""

from ledgerlink.sync.service.common import (
    WriteResult,
    next_night_slot,
    now,
    plan_window,
    schedule_sync,
    set_clock,
    to_write_rows,
    today_stockholm,
    write_transactions,
)

__all__ = [
    "WriteResult",
    "next_night_slot",
    "now",
    "plan_window",
    "schedule_sync",
    "set_clock",
    "to_write_rows",
    "today_stockholm",
    "write_transactions",
]
