"""The API as served in production, for the API benchmark's one-process runs (the limit it is compared
with is :mod:`bench.api_limit`, its own server).

    uvicorn bench.api_server:create_bench_app --factory
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from ledgerlink.main import create_app


def _profile_to(path: str) -> None:
    """BENCH_PROFILE=/tmp/api.prof: a cProfile of the whole server process, dumped at exit."""
    import atexit
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()

    def dump() -> None:
        profiler.disable()
        profiler.dump_stats(path)

    atexit.register(dump)


def create_bench_app() -> FastAPI:
    profile_to = os.environ.get("BENCH_PROFILE")  # an experiment knob, unset in `make bench`
    if profile_to:
        _profile_to(profile_to)
    return create_app()
