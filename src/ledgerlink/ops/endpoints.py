"""Liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select, text

from ledgerlink import metrics as domain
from ledgerlink.db.migrate import schema_state
from ledgerlink.errors import ServiceUnavailable, responses
from ledgerlink.logging import get_logger
from ledgerlink.models.bank import BankConnection, ConnectionStatus

log = get_logger(__name__)

#: ``ledgerlink_bank_consents_expiring`` counts consents that lapse within this long.
CONSENT_HORIZON = dt.timedelta(days=7)

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
    """Prometheus metrics in the text exposition format."""
    await _refresh_scrape_gauges(request)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def _refresh_scrape_gauges(request: Request) -> None:
    """Set the gauges read at scrape time: the arq queue (when Redis is configured; 0 in the embedded
    mode) and the consents expiring within :data:`CONSENT_HORIZON` (one indexed-size count). Best effort:
    a figure that cannot be read keeps its last value and the scrape still answers."""
    state = request.app.state
    redis = getattr(state, "redis", None)
    if redis is None:
        domain.QUEUE_DEPTH.set(0)
        domain.QUEUE_OLDEST_DUE_AGE.set(0)
    else:
        queue = state.settings.queue_name
        try:
            async with asyncio.timeout(2):
                now_ms = time.time() * 1000
                domain.QUEUE_DEPTH.set(await redis.zcard(queue))
                oldest = await redis.zrangebyscore(queue, "-inf", now_ms, start=0, num=1, withscores=True)
                domain.QUEUE_OLDEST_DUE_AGE.set(max(0.0, (now_ms - oldest[0][1]) / 1000) if oldest else 0)
        except Exception as exc:
            log.warning("metrics.queue.unreadable", error=type(exc).__name__)
    now = state.clock()
    try:
        async with asyncio.timeout(2):
            async with state.sessionmaker() as session:
                expiring = await session.scalar(
                    select(func.count())
                    .select_from(BankConnection)
                    .where(
                        BankConnection.status == ConnectionStatus.active,
                        BankConnection.consent_expires_at > now,
                        BankConnection.consent_expires_at <= now + CONSENT_HORIZON,
                    )
                )
        domain.CONSENTS_EXPIRING.set(expiring or 0)
    except Exception as exc:
        log.warning("metrics.consents.unreadable", error=type(exc).__name__)
