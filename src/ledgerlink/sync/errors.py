"""Errors of the sync feature."""

from __future__ import annotations

from ledgerlink.errors import Conflict


class SyncInProgress(Conflict):
    """A run is already queued or running for the account; ``extra.run_id`` names it."""

    code = "sync_in_progress"
    title = "A sync is already in progress"


class AccountNotSyncable(Conflict):
    """The account is not active (pending confirmation, paused, reauth required or disconnected)."""

    code = "account_not_active"
    title = "The account cannot be synced"
