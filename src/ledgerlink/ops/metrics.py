"""HTTP metrics for ``/metrics``, by prometheus-fastapi-instrumentator.

The route label (``handler``) is the route's full template, ``/v1`` included
(``/v1/bank-accounts/{bank_account_id}``); paths that match no route count as ``none``, so a scan of
random URLs cannot blow up the series. The sandboxes, the docs pages and ``/metrics`` itself are not
counted. Every metric name starts with ``ledgerlink_``.

The metric objects live in the process-wide registry and are created once, here; each app built by
:func:`ledgerlink.main.create_app` (the tests build many) feeds the same ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from prometheus_fastapi_instrumentator import Instrumentator, metrics
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.middleware import Middleware

NAMESPACE = "ledgerlink"
NOT_COUNTED = [r"^/sandbox(/|$)", r"^/docs", r"^/redoc$", r"^/openapi\.json$", r"^/metrics$"]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _created(fn: Callable[[metrics.Info], None] | None) -> Callable[[metrics.Info], None]:
    if fn is None:  # the library returns None when the metric already exists in the registry
        raise RuntimeError("HTTP metrics registered twice in one process")
    return fn


#: ``ledgerlink_http_requests_total{handler, method, status}`` (status is the exact code).
REQUESTS = _created(metrics.requests(metric_namespace=NAMESPACE))
#: ``ledgerlink_http_request_duration_seconds{handler, method}`` (a histogram).
LATENCY = _created(
    metrics.latency(metric_namespace=NAMESPACE, should_include_status=False, buckets=LATENCY_BUCKETS)
)


class _RememberedHandlers(PrometheusInstrumentatorMiddleware):
    """The library's middleware, remembering each request line's ``handler`` label: the library finds
    it by matching the path against every route again after the response (a walk of the nested
    routers, a tenth of a hot list request's CPU); for a method, path and root path the answer never
    changes while the app runs. Bounded (paths with ids are many; a scan of random URLs is more)."""

    MAX_REMEMBERED = 10_000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handlers: dict[tuple[Any, ...], tuple[str, bool]] = {}

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        scope = request.scope
        key = (scope.get("method"), scope.get("path"), scope.get("root_path"))
        found = self._handlers.get(key)
        if found is None:
            found = super()._get_handler(request)
            if len(self._handlers) >= self.MAX_REMEMBERED:
                self._handlers.clear()
            self._handlers[key] = found
        return found


def instrument_http(app: FastAPI) -> None:
    """Add the metrics middleware to ``app`` (outermost, so it also sees 413s and rendered 500s)."""
    Instrumentator(
        should_group_status_codes=False,
        should_group_untemplated=True,
        excluded_handlers=NOT_COUNTED,
    ).add(REQUESTS, LATENCY).instrument(app)
    for i, entry in enumerate(app.user_middleware):
        if entry.cls is PrometheusInstrumentatorMiddleware:  # type: ignore[comparison-overlap]
            app.user_middleware[i] = Middleware(_RememberedHandlers, *entry.args, **entry.kwargs)
            return
    raise RuntimeError("the metrics middleware was not added")
