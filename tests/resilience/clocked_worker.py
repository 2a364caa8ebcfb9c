"""``ledgerlink worker`` with the service clock read from a file (simulated nights).

Run as ``python -m tests.resilience.clocked_worker``: when ``LEDGERLINK_TEST_CLOCK_FILE`` is set, the
worker's service clock (``build_worker_settings(clock=...)``, passed on to every job) reads the ISO
instant the test writes there; otherwise this is the real CLI entry point."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from arq.worker import run_worker

from ledgerlink.cli import main
from ledgerlink.config import get_settings
from ledgerlink.worker.settings import build_worker_settings, worker_event_loop


def _file_clock(clock_file: Path) -> dt.datetime:
    return dt.datetime.fromisoformat(clock_file.read_text().strip())


def run() -> int:
    path = os.environ.get("LEDGERLINK_TEST_CLOCK_FILE")
    if not path:
        return main(["worker"])
    clock_file = Path(path)
    worker_event_loop()  # as ``ledgerlink worker`` runs it
    run_worker(build_worker_settings(get_settings(), clock=lambda: _file_clock(clock_file)))
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
