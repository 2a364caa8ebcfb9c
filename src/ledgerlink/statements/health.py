"""``sync_stalled``: an account that usually has rows has had none for longer than its own history says
is normal. A pure rule over the account's booking days; no fixed number of days."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

#: fewer distinct booking days than this is no history to judge by
MIN_HISTORY_DAYS = 5


@dataclass(frozen=True, slots=True)
class Quiet:
    last_row: dt.date
    quiet_days: int
    longest_quiet_days: int


def stalled(booking_days: Sequence[dt.date], today: dt.date) -> Quiet | None:
    """The quiet spell when it is longer than any the account ever had between two rows, else None."""
    days = sorted(set(booking_days))
    if len(days) < MIN_HISTORY_DAYS:
        return None
    longest = max((b - a).days for a, b in itertools.pairwise(days))
    quiet = (today - days[-1]).days
    if quiet <= longest:
        return None
    return Quiet(days[-1], quiet, longest)
