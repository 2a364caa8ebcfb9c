"""Liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text

from ledgerlink.db.migrate import schema_state
from ledgerlink.errors import ServiceUnavailable, responses
from ledgerlink.ops.scrape import refresh_scrape_gauges
from ledgerlink.worker.jobs import service_env

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status: str
    database: str = Field(description="`ok` or `unreachable`")
    schema_: str = Field(
        alias="schema",
        description="`ok` at the head migration; `ahead` when a newer release already migrated (still "
        "ready); `outdated` when never migrated or behind (503: run `ledgerlink migrate`); `unknown` "
        "when the database is unreachable",
    )
    queue: str = Field(description="`ok`, `unreachable` or `in-process` (the embedded default)")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=responses(503))
async def readyz(request: Request) -> Readiness:
    """Database reachable and migrated to this release's head, queue reachable (503 names what is not)."""
    state = request.app.state
    database = queue = "ok"
    schema: str = "unknown"
    try:
        async with asyncio.timeout(3):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                schema = await conn.run_sync(schema_state)
    except Exception:
        database = "unreachable"
    if state.redis is None:
        queue = "in-process"
    else:
        try:
            async with asyncio.timeout(3):
                await state.redis.ping()
        except Exception:
            queue = "unreachable"
    if "unreachable" in (database, queue) or schema == "outdated":
        raise ServiceUnavailable(
            f"not ready: database {database}, schema {schema}, queue {queue}",
            code="not_ready",
            extra={"database": database, "schema": schema, "queue": queue},
        )
    return Readiness(status="ok", database=database, schema_=schema, queue=queue)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format (the scrape-time gauges read first)."""
    await refresh_scrape_gauges(service_env(request.app.state.job_context))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
