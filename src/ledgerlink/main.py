"""The FastAPI application factory and its lifespan (engine, queue, dispatcher, sandbox mounts)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from arq.connections import RedisSettings, create_pool
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import make_url

from ledgerlink.api import build_v1_router
from ledgerlink.auth.tokens import TokenVerifier
from ledgerlink.clock import Clock, system_clock
from ledgerlink.config import Settings, get_settings
from ledgerlink.db import idle_ping
from ledgerlink.db.idle_ping import ping_when_idle
from ledgerlink.db.session import api_pool_options, create_engine, create_sessionmaker
from ledgerlink.errors import install_error_handlers
from ledgerlink.idempotency.service import idempotency
from ledgerlink.logging import configure_logging, get_logger
from ledgerlink.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from ledgerlink.openapi.document import LocationMiddleware, install_openapi
from ledgerlink.ops.endpoints import router as ops_router
from ledgerlink.ops.metrics import instrument_http
from ledgerlink.worker.enqueue import set_dispatcher
from ledgerlink.worker.jobs import JobContext, service_env
from ledgerlink.worker.runner import ArqDispatcher, InProcessRunner, register_crons_as_tasks
from ledgerlink.worker.settings import load_all_tasks

log = get_logger(__name__)

DESCRIPTION = """ledgerlink connects a company's bank accounts (PSD2, one adapter per bank) and pulls their
transactions every night into "transactions to book"; and it connects Fortnox to import a financial year for
the year-end closing and to send the closing adjustments back as vouchers.

Errors are RFC 9457 `application/problem+json` with a stable `code`."""


DOCS_ASSETS_URL = "/docs-assets"


def _operation_id(route: APIRoute) -> str:
    return route.name


def create_app(
    settings: Settings | None = None,
    *,
    transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    start_cron: bool | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the app. ``transports`` maps a bank id or ``"fortnox"`` to an httpx transport (tests);
    ``clock`` is the service clock (endpoints find it in ``app.state.clock``, in-process jobs in their
    context; simulations give their own)."""
    settings = settings or get_settings()
    transports = dict(transports or {})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, json=settings.log_json)
        engine = create_engine(
            settings.database_url,
            **api_pool_options(
                settings.database_url,
                settings.database_pool_size,
                settings.database_sqlite_busy_timeout_seconds,
            ),
        )
        if engine.dialect.name == "postgresql":
            # a connection that sat idle is pinged on checkout (a restart in a quiet hour costs no
            # request); one busy within the last second is not (a round trip saved per request)
            ping_when_idle(engine, idle_ping.IDLE_PING_SECONDS)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = None
        runner: InProcessRunner | None = None
        load_all_tasks()
        ctx: JobContext = {
            "settings": settings,
            "sessionmaker": app.state.sessionmaker,
            "transports": transports,
            "clock": clock,
        }
        if settings.redis_url:
            app.state.redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
            ctx["redis"] = app.state.redis
            set_dispatcher(ArqDispatcher(app.state.redis, queue_name=settings.queue_name))
        else:
            ctx["redis"] = None
            register_crons_as_tasks()
            runner = InProcessRunner(ctx)
            set_dispatcher(runner)
            if start_cron if start_cron is not None else settings.env != "testing":
                runner.start_cron()
                await _resume_unfinished_syncs(ctx)
        app.state.job_context = ctx
        app.state.runner = runner
        # What startup built lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk every module object and stall the event loop (a large import's churn
        # triggers them every few seconds). Cheap (no collection), so an app per test costs nothing.
        gc.freeze()
        log.info(
            "app.started",
            database=engine.url.render_as_string(hide_password=True),
            queue="redis" if settings.redis_url else "in-process",
            sandbox=settings.sandbox,
        )
        try:
            yield
        finally:
            if runner is not None:
                await runner.aclose()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await engine.dispose()

    # /docs (Swagger UI) and /redoc load their scripts, styles and icon from this app, not from a CDN:
    # the docs work without internet.
    app = FastAPIOffline(
        title="ledgerlink",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # the pasted token survives a reload; no validator badge fetched from a public service
        swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        static_url=DOCS_ASSETS_URL,
    )
    app.state.settings = settings
    app.state.transports = transports
    app.state.clock = clock
    app.state.token_verifier = TokenVerifier(settings.auth)
    idempotency.configure(settings.idempotency_ttl_hours)
    install_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(build_v1_router())
    if settings.sandbox:
        _mount_sandboxes(app, _sandbox_state_dir(settings))
    app.add_middleware(LocationMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_body=settings.limits.max_body_bytes,
        max_upload=settings.limits.max_upload_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    instrument_http(app)
    install_openapi(app)
    return app


async def _resume_unfinished_syncs(ctx: JobContext) -> None:
    """Embedded default: this process is the only worker, so syncs queued or running when it last
    stopped lost their jobs with it; send them again now instead of after the stale-run timeout."""
    from ledgerlink.sync.service.cron import resend_unfinished_runs

    try:
        await resend_unfinished_runs(service_env(ctx))
    except Exception:  # a fresh database without tables yet, say: the cron sweep still recovers them
        log.exception("app.resume_syncs_failed")
    from ledgerlink.closing.service.recovery import resume_unfinished_jobs

    try:  # closing imports and exports too (an export left sending is looked up before any resend)
        await resume_unfinished_jobs(service_env(ctx))
    except Exception:
        log.exception("app.resume_closing_jobs_failed")


def _sandbox_state_dir(settings: Settings) -> Path | None:
    """Beside the embedded SQLite file (``./var/``), so a restarted ``make run`` still knows the sandbox
    bank's consents and the sandbox Fortnox's grants and vouchers; None for PostgreSQL (tests, docker)
    and in-memory SQLite."""
    if not settings.uses_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return None
    return Path(database).parent


def _mount_sandboxes(app: FastAPI, state_dir: Path | None = None) -> None:
    """The sandbox bank and sandbox Fortnox, mounted for the embedded default (``make run``)."""
    from ledgerlink.sandbox.bank import create_sandbox_bank_app
    from ledgerlink.sandbox.callback import router as sandbox_callback_router
    from ledgerlink.sandbox.fortnox import create_sandbox_fortnox_app

    bank_state = state_dir / "sandbox-bank.json" if state_dir is not None else None
    fortnox_state = state_dir / "sandbox-fortnox.json" if state_dir is not None else None
    app.mount("/sandbox/bank", create_sandbox_bank_app(state_path=bank_state))
    app.mount("/sandbox/fortnox", create_sandbox_fortnox_app(state_path=fortnox_state))
    app.include_router(sandbox_callback_router)
