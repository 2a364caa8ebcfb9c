"""Run the benchmarks: ``uv run python -m bench [--only ingest,api,fleet,sie,fortnox,matching] [--quick]``.

Each benchmark runs the real code path and, in the same run, the limit it is compared with; the figures
(medians of the repetitions) go to ``bench/results/latest.json`` and the table in ``bench/README.md``.
``--quick`` runs small sizes (a smoke run; its figures are not written unless ``--write``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench import api, fleet, fortnox, ingest, matching, sie
from bench.common import ROOT, log, machine, server_versions
from bench.report import render_table, update_readme

RESULTS = ROOT / "bench" / "results" / "latest.json"

FULL: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "ingest": lambda: ingest.run(rows=200_000, repetitions=3),
    "api": lambda: api.run(rows=1_000_000, repetitions=3, duration=5.0),
    "fleet": lambda: fleet.run(accounts=2000),
    "sie": lambda: sie.run(sizes=(10, 100), runs=3),
    "fortnox": lambda: fortnox.run(small=1_000, large=100_000),
    "matching": lambda: matching.run(rows=10_000, items=20_000, repetitions=3, memory_sizes=(5_000, 10_000)),
}
QUICK: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "ingest": lambda: ingest.run(rows=20_000, repetitions=1),
    "api": lambda: api.run(rows=50_000, repetitions=1, duration=2.0),
    "fleet": lambda: fleet.run(accounts=40),
    "sie": lambda: sie.run(sizes=(2, 4), runs=1),
    "fortnox": lambda: fortnox.run(small=200, large=1_000),
    "matching": lambda: matching.run(rows=1_000, items=2_000, repetitions=1, memory_sizes=(500, 1_000)),
}


async def main(only: list[str], quick: bool, write: bool) -> int:
    plan = QUICK if quick else FULL
    results: dict[str, Any] = {
        "machine": {**machine(), **await server_versions()},
        "quick": quick,
        "benchmarks": {},
    }
    total = time.perf_counter()
    for name in only:
        log(f"{name}: starting")
        started = time.perf_counter()
        results["benchmarks"][name] = await plan[name]()
        results["benchmarks"][name]["bench_seconds"] = round(time.perf_counter() - started, 1)
        log(f"{name}: done in {time.perf_counter() - started:.0f}s")
    results["total_seconds"] = round(time.perf_counter() - total, 1)
    if write:  # the figures first, so that nothing is lost if the table cannot be drawn
        if set(only) != set(FULL):
            previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmarks": {}}
            results["benchmarks"] = {**previous.get("benchmarks", {}), **results["benchmarks"]}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = render_table(results)
    sys.stdout.write(table + "\n")
    sys.stdout.write(f"total {results['total_seconds']} s\n")
    if write:
        update_readme(table, results)
        log(f"written {RESULTS.relative_to(ROOT)} and bench/README.md")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(FULL), help="comma-separated: " + ",".join(FULL))
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--write", action="store_true", help="write results even for --quick")
    args = parser.parse_args()
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(only) - set(FULL)
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    raise SystemExit(asyncio.run(main(only, args.quick, write=args.write or not args.quick)))
