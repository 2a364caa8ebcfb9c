"""One error hierarchy, rendered once as RFC 9457 problem+json.

Services raise subclasses of :class:`AppError`; the handlers in :func:`install_error_handlers` turn them
into ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and a stable ``code``.
Endpoints list the errors they may return with :func:`responses`, so the OpenAPI document describes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from ledgerlink.logging import get_logger

log = get_logger(__name__)
PROBLEM_JSON = "application/problem+json"
DEFAULT_RETRY_AFTER = "30"  # seconds, on a 429/503 whose cause names no better time


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details with our stable machine ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[ProblemError] | None = Field(default=None, description="422: each invalid input")
    run_id: str | None = Field(default=None, description="sync_in_progress: the run already queued/running")
    ids: list[str] | None = Field(default=None, description="The transaction ids a bulk change refused")
    bank_id: str | None = Field(default=None, description="Bank errors: the bank that failed")
    retryable: bool | None = Field(default=None, description="Bank errors: whether trying again may help")


class AppError(Exception):
    """Root of the service's errors. ``status`` and ``code`` are class defaults, overridable per raise."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.instance_code = code or self.code
        self.instance_status = status or self.status
        self.extra = extra or {}
        self.headers = headers
        super().__init__(self.detail)


class BadRequest(AppError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class Unprocessable(AppError):
    status, code, title = 422, "unprocessable", "Unprocessable request"

    def __init__(
        self,
        detail: str,
        *,
        loc: list[str | int] | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        errors = [{"loc": loc or ["body"], "msg": detail}]
        super().__init__(detail, code=code, extra={"errors": errors, **(extra or {})})


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


#: Retry-After of a request that met a dead or busy database connection pool: a retry gets a fresh
#: connection (or the database is down and the retry says so again).
RECONNECT_RETRY_AFTER = "1"


class DatabaseUnavailable(ServiceUnavailable):
    """A pooled connection was found dead when used (the API's pool does not ping on checkout: a
    killed backend, a database restart); the pool has dropped it."""

    code = "database_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "the database connection was lost; retry the request",
            headers={"Retry-After": RECONNECT_RETRY_AFTER},
        )


class DatabaseBusy(ServiceUnavailable):
    """Every pooled connection stayed busy for the pool's timeout (the API's pool has no overflow), or,
    on SQLite, another write held the database for the busy timeout (SQLite has one writer)."""

    code = "database_busy"

    def __init__(self, detail: str = "no database connection was free in time; retry the request") -> None:
        super().__init__(detail, headers={"Retry-After": RECONNECT_RETRY_AFTER})


class BadGateway(AppError):
    status, code, title = 502, "upstream_error", "Upstream error"


_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal error",
    502: "Upstream error",
    503: "Service unavailable",
}


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else str(uuid.uuid4())


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://ledgerlink.dev/problems/{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id_of(request),
    }
    body.update(extra or {})
    if status in (429, 503) and not any(k.lower() == "retry-after" for k in headers or {}):
        headers = {**(headers or {}), "Retry-After": DEFAULT_RETRY_AFTER}  # the spec promises one
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(value: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in value]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return _app_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if errors else "invalid request"
        return problem_response(request, 422, "validation_error", detail, extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and isinstance(exc.__context__, MultiPartException):
            # Starlette's form parser: a malformed multipart body came out as an undocumented 400.
            errors = [{"loc": ["body"], "msg": f"the multipart body cannot be read: {exc.detail}"}]
            return problem_response(
                request,
                422,
                "validation_error",
                f"body: the multipart body cannot be read: {exc.detail}",
                extra={"errors": errors},
            )
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # FastAPI's body reader: invalid JSON is its 422, but a body that is not even UTF-8 came out
            # as an undocumented 400. It is the same client error: 422, like any other unreadable body.
            errors = [{"loc": ["body"], "msg": "the request body is not valid UTF-8"}]
            return problem_response(
                request,
                422,
                "validation_error",
                "body: the request body is not valid UTF-8",
                extra={"errors": errors},
            )
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        return problem_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> JSONResponse:
        return _app_error_response(request, DatabaseBusy())

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # A connection found dead when used: 503 with a short Retry-After, never a 500.
        if exc.connection_invalidated:
            return _app_error_response(request, DatabaseUnavailable())
        if _sqlite_busy(exc):
            return _app_error_response(
                request,
                DatabaseBusy("another write held the database for too long; retry the request"),
            )
        # Text PostgreSQL cannot store (a NUL character, in text or JSONB) is the client's input, not a
        # server fault: 422. Every other database error stays an unexpected 500.
        if _sqlstate(exc) in _UNSTORABLE_TEXT:
            return problem_response(
                request,
                422,
                "invalid_text",
                "the request contains text that cannot be stored (a NUL character or an invalid escape)",
            )
        raise exc

    # Unexpected exceptions are rendered by RequestContextMiddleware (it knows the request id).


def _app_error_response(request: Request, exc: AppError) -> JSONResponse:
    return problem_response(
        request,
        exc.instance_status,
        exc.instance_code,
        exc.detail,
        title=exc.title,
        extra=exc.extra,
        headers=exc.headers,
    )


#: character_not_in_repertoire (NUL in text), untranslatable_character (\u0000 in JSONB).
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


#: SQLite's primary result codes for "the database is locked" (SQLITE_BUSY, SQLITE_LOCKED): the low byte
#: of an extended code such as SQLITE_BUSY_SNAPSHOT.
_SQLITE_BUSY_CODES = frozenset({5, 6})


def _driver_errors(exc: DBAPIError) -> tuple[object, object]:
    """The driver's error and what it wraps (asyncpg and aiosqlite errors come adapted by SQLAlchemy)."""
    return exc.orig, getattr(exc.orig, "__cause__", None)


def _sqlite_busy(exc: DBAPIError) -> bool:
    for candidate in _driver_errors(exc):
        code = getattr(candidate, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_BUSY_CODES
    return False


def _sqlstate(exc: DBAPIError) -> str | None:
    for candidate in _driver_errors(exc):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the problem statuses an endpoint may return."""
    return {
        s: {
            "model": Problem,
            "description": _TITLES.get(s, "Error"),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }
