"""The real arq worker in burst mode (``ledgerlink.worker.settings.build_worker_settings``), settings from
the environment; prints its CPU seconds and wall time as JSON when the queue is empty.

    python -m bench.fleet_worker          (BENCH_PROFILE=/tmp/worker-{pid}.prof: also dump a cProfile)
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any

from arq import Worker

from ledgerlink.config import Settings
from ledgerlink.worker.settings import build_worker_settings, worker_event_loop


async def main() -> dict[str, Any]:
    settings = Settings()
    kwargs = build_worker_settings(settings, configure_logs=True)
    kwargs.update(burst=True, poll_delay=0.05, handle_signals=False)
    if os.environ.get("BENCH_MAX_JOBS"):  # the fleet runs several processes sharing the concurrency
        kwargs["max_jobs"] = int(os.environ["BENCH_MAX_JOBS"])
    worker = Worker(**kwargs)
    started = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        await worker.main()
    finally:
        await worker.close()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 3),
        "jobs_complete": worker.jobs_complete,
        "jobs_failed": worker.jobs_failed,
        "jobs_retried": worker.jobs_retried,
        "max_jobs": kwargs["max_jobs"],
    }


if __name__ == "__main__":
    # a cProfile dump of the worker, for digging ("{pid}" in the path: one file per worker process)
    profile_to = os.environ.get("BENCH_PROFILE", "").replace("{pid}", str(os.getpid()))
    loop = worker_event_loop()  # the loop ``ledgerlink worker`` runs on
    if profile_to:
        import cProfile

        with cProfile.Profile() as profiler:
            result = loop.run_until_complete(main())
        profiler.dump_stats(profile_to)
    else:
        result = loop.run_until_complete(main())
    loop.close()
    sys.stdout.write(json.dumps(result) + "\n")
