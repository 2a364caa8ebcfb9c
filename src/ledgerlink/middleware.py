"""ASGI middleware: request id + structlog binding, and request-body size limits (HTTP metrics:
``ledgerlink.ops.metrics``)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerlink.logging import get_logger

log = get_logger("ledgerlink.http")


class RequestContextMiddleware:
    """Gives every request an id (``X-Request-ID`` in and out) bound into every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # The one place unexpected errors become a 500 problem: logged with the traceback, never shown.
            log.error("http.unhandled_exception", path=scope["path"], exc_info=exc)
            if response_started:
                raise
            status = 500
            await _send_problem(
                send_with_id,
                500,
                "internal_error",
                "Internal error",
                "An unexpected error occurred. Quote the request id when reporting it.",
                request_id,
            )
        finally:
            elapsed = time.perf_counter() - started
            if not scope["path"].startswith(("/healthz", "/metrics")):
                log.info(
                    "http.request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.clear_contextvars()


class BodySizeLimitMiddleware:
    """413 problem+json for bodies over the limit (uploads to ``/imports/sie`` have their own limit)."""

    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload if scope["path"].endswith("/imports/sie") else self.max_body
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                await self._reject(scope, send, limit)
                return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    rejected = True
                    raise _TooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        await _send_problem(
            send,
            413,
            "payload_too_large",
            "Payload too large",
            f"the request body exceeds {limit} bytes",
            scope.get("state", {}).get("request_id"),
        )


async def _send_problem(
    send: Send, status: int, code: str, title: str, detail: str, request_id: str | None
) -> None:
    body: dict[str, Any] = {
        "type": f"https://ledgerlink.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
    }
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


class _TooLarge(HTTPException):
    """Raised from ``receive`` once a body without (or beyond) its Content-Length passes the limit. An
    HTTPException, so FastAPI's body reader re-raises it (a plain exception would become its generic
    400 "error parsing the body") and the app renders the 413 problem; if it escapes the app, the
    middleware renders it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")
