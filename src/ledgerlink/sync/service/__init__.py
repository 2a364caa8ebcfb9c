"""The sync feature's services: scheduling (:func:`schedule_sync`), windows and the write path
(:mod:`.common`), the run engine (:mod:`.engine`), the PSD2 allowance (:mod:`.allowance`), the account
lock and its backends (:mod:`.lock`) and the cron passes (:mod:`.cron`)."""

from ledgerlink.sync.service.common import (
    WriteResult,
    next_night_slot,
    plan_window,
    schedule_sync,
    to_write_rows,
    write_transactions,
)

__all__ = [
    "WriteResult",
    "next_night_slot",
    "plan_window",
    "schedule_sync",
    "to_write_rows",
    "write_transactions",
]
