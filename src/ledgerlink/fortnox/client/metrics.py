"""What an operator pages on about Fortnox, in the process-wide Prometheus registry (``/metrics``):
calls by resource and status, the 429s among them, and token refreshes by outcome. The resource label
is the declared resource (``/3/invoices``), never a raw path, so the series stay few."""

from __future__ import annotations

from prometheus_client import Counter

from ledgerlink.fortnox.client.scopes import resource_of

CALLS = Counter(
    "ledgerlink_fortnox_requests",
    "Fortnox API calls (each attempt), by resource, method and HTTP status (0: no answer)",
    ["resource", "method", "status"],
)
RATE_LIMITED = Counter(
    "ledgerlink_fortnox_rate_limited",
    "Fortnox API calls answered 429 Too Many Requests, by resource",
    ["resource"],
)
REFRESHES = Counter(
    "ledgerlink_fortnox_token_refreshes",
    "Fortnox token refreshes sent, by outcome (ok, rejected: the refresh token was refused, failed)",
    ["outcome"],
)


def count_call(path: str, method: str, status: int) -> None:
    resource = resource_of(path) or "other"
    CALLS.labels(resource, method.upper(), str(status)).inc()
    if status == 429:
        RATE_LIMITED.labels(resource).inc()


__all__ = ["CALLS", "RATE_LIMITED", "REFRESHES", "count_call"]
