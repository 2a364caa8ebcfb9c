"""The sandbox bank under uvicorn with a fixed latency per call, counting the calls it answers.

    uvicorn bench.bank_server:create_bench_bank --factory   (BENCH_BANK_LATENCY seconds, default 0.05)

``GET /bench/calls`` answers ``{"calls": n}`` (calls to the bank so far, itself not counted) and
``POST /bench/calls/reset`` sets it back to zero.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal

from starlette.types import ASGIApp, Receive, Scope, Send

from ledgerlink.sandbox import bank as sandbox_bank
from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.sandbox.bank_data import OPENING_BALANCE, account_kind, booked_on

#: Days summed for a balance in the bench bank (see :func:`recent_balance_at`).
BALANCE_DAYS = 7


def recent_balance_at(account_id: str, day: dt.date) -> Decimal:
    """The bench bank's balance: opening balance plus the last ``BALANCE_DAYS`` days' bookings.

    The sandbox's own ``balance_at`` sums every day since 2025-01-01 (about 85 ms of CPU for an account
    it has not seen, a cache of 65,536 days): over a fleet of thousands of accounts the bank's CPU, not
    its latency, would be what the benchmark measured. The balance's value does not matter here."""
    opening = OPENING_BALANCE.get(account_kind(account_id) or "", Decimal("0.00"))
    return opening + sum(
        (booked_on(account_id, day - dt.timedelta(days=i)) for i in range(BALANCE_DAYS)), Decimal("0.00")
    )


class CountingBank:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/bench/calls"):
            if scope["path"].endswith("/reset"):
                self.calls = 0
            body = json.dumps({"calls": self.calls}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def create_bench_bank() -> CountingBank:
    latency = float(os.environ.get("BENCH_BANK_LATENCY", "0.05"))
    setattr(sandbox_bank, "balance_at", recent_balance_at)  # noqa: B010 (the bench bank only)
    return CountingBank(create_sandbox_bank_app(latency_seconds=latency))
