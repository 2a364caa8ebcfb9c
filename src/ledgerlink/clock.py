"""The service's clock: what time it is, and which day it is in Stockholm.

A :class:`Clock` is any callable returning an aware UTC instant. The process that runs the services (the
app, or the worker) holds one (the wall clock, :func:`system_clock`, unless a simulation gives another)
and passes it down: jobs find it in their context (``ctx["clock"]``), endpoints in
``request.app.state.clock``, and services take it as an argument; nothing reads a global clock.

The service clock is business time (sync windows and nights, consents, runs). What paces calls to the
outside world (webhook retries, Fortnox token lifetimes, the spread of calls to a bank) runs on the wall
clock, whatever a simulation does to the service clock.

Dates are Stockholm dates (Swedish banks book, and Swedish bookkeeping counts, in Swedish time):
:func:`today_stockholm` is the one place a day is derived from an instant.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class Clock(Protocol):
    def __call__(self) -> dt.datetime:
        """The current instant, aware, in UTC."""
        ...


def system_clock() -> dt.datetime:
    """The wall clock."""
    return dt.datetime.now(dt.UTC)


def on_service_clock(wall: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The wall-clock instant ``wall`` (an arq deferral, a bank's Retry-After) on the service clock whose
    current instant is ``now``: the same delay from ``now``, never before it. Identical under the wall
    clock; under a simulation it keeps what is stored on the service clock comparable with it (a run's
    ``next_attempt_at``, which the stale-run sweep reads), instead of an instant the simulation never
    reaches or passed long ago."""
    return now + max(wall - system_clock(), dt.timedelta(0))


def today_stockholm(at: dt.datetime | Clock | None = None) -> dt.date:
    """The Stockholm date at the instant ``at``, or now by the clock ``at``; by the wall clock when None."""
    if at is None:
        at = system_clock()
    elif not isinstance(at, dt.datetime):
        at = at()
    return at.astimezone(STOCKHOLM).date()
