"""The API as served in production plus one bench-only route, ``GET /bench/bare``: the limit of the API
benchmark. It returns, from memory, a pre-rendered copy of the page the real route served (the file
named by ``BENCH_BARE_FILE``, read once) through the same app, middleware and server.

    uvicorn bench.api_server:create_bench_app --factory
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from ledgerlink.db.session import create_engine
from ledgerlink.main import create_app


def _profile_to(path: str) -> None:
    """BENCH_PROFILE=/tmp/api.prof: a cProfile of the whole server process, dumped at exit."""
    import atexit
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    atexit.register(lambda: (profiler.disable(), profiler.dump_stats(path)))


def create_bench_app() -> FastAPI:
    profile_to = os.environ.get("BENCH_PROFILE")  # an experiment knob, unset in `make bench`
    if profile_to:
        _profile_to(profile_to)
    pool_size = os.environ.get("BENCH_DB_POOL_SIZE")  # an experiment knob, unset in `make bench`
    if pool_size:
        import ledgerlink.main

        def sized_engine(url: str, **kwargs: Any) -> AsyncEngine:
            kwargs.setdefault("pool_size", int(pool_size))
            return create_engine(url, **kwargs)

        setattr(ledgerlink.main, "create_engine", sized_engine)  # noqa: B010
    app = create_app()
    source = Path(os.environ["BENCH_BARE_FILE"])
    cache: list[bytes] = []

    @app.get("/bench/bare", include_in_schema=False)
    async def bare() -> Response:
        if not cache:
            cache.append(await asyncio.to_thread(source.read_bytes))
        return Response(content=cache[0], media_type="application/json")

    return app
