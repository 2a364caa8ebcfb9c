"""Liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from ledgerlink.errors import ServiceUnavailable, responses

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    queue: str


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=responses(503))
async def readyz(request: Request) -> Readiness:
    """The database and the queue are reachable (503 otherwise)."""
    state = request.app.state
    database = queue = "ok"
    try:
        async with asyncio.timeout(3):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
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
    if "unreachable" in (database, queue):
        raise ServiceUnavailable(
            f"not ready: database {database}, queue {queue}",
            code="not_ready",
            extra={"database": database, "queue": queue},
        )
    return Readiness(status="ok", database=database, queue=queue)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
