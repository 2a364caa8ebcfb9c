"""``ledgerlink worker`` with the sync service's clock read from a file (simulated nights).

Run as ``python -m tests.resilience.clocked_worker``: when ``LEDGERLINK_TEST_CLOCK_FILE`` is set, the
service clock (:func:`ledgerlink.sync.service.set_clock`) reads the ISO instant the test writes there;
then the real CLI entry point runs the real arq worker."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ledgerlink.cli import main
from ledgerlink.sync.service import set_clock


def _install_clock() -> None:
    path = os.environ.get("LEDGERLINK_TEST_CLOCK_FILE")
    if not path:
        return
    clock_file = Path(path)

    def clock() -> dt.datetime:
        return dt.datetime.fromisoformat(clock_file.read_text().strip())

    set_clock(clock)


if __name__ == "__main__":
    _install_clock()
    raise SystemExit(main(["worker"]))
