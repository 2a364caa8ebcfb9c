"""The domain figures an operator pages on, in the process-wide Prometheus registry (``/metrics``).

Declared once, here (foundation: imports nothing of ledgerlink); the features call the small helpers
where the event happens. Every name starts with ``ledgerlink_``; labels are closed sets (bank id, task
name, outcome), never ids. HTTP figures are in :mod:`ledgerlink.ops.metrics`, Fortnox calls in
:mod:`ledgerlink.fortnox.client.metrics`. The gauges are set at scrape time, by the API's ``GET /metrics``
and the worker's metrics server alike (:mod:`ledgerlink.ops.scrape`).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

SYNC_RUNS = Counter(
    "ledgerlink_sync_runs",
    "Sync run attempts finished, by bank and outcome (succeeded, failed, deferred, retrying)",
    ["bank", "outcome"],
)
ROWS_INGESTED = Counter(
    "ledgerlink_sync_rows_ingested",
    "Bank transaction rows written by successful syncs, by bank and kind (inserted, updated)",
    ["bank", "kind"],
)
UNATTENDED_REFUSED = Counter(
    "ledgerlink_sync_unattended_reads_refused",
    "Unattended bank reads not made because the PSD2 daily allowance was spent, by bank and endpoint",
    ["bank", "endpoint"],
)
JOB_DURATION = Histogram(
    "ledgerlink_job_duration_seconds",
    "Background job attempts, duration by task (arq worker and in-process runner alike)",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0),
)
JOB_OUTCOMES = Counter(
    "ledgerlink_jobs",
    "Background job attempts finished, by task and outcome (succeeded, retry, failed, cancelled)",
    ["task", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "ledgerlink_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retrying, failed: gave up, dropped: endpoint gone)",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "ledgerlink_queue_depth",
    "Jobs in the arq Redis queue (due and deferred), read at scrape time; 0 in the embedded mode",
)
QUEUE_OLDEST_DUE_AGE = Gauge(
    "ledgerlink_queue_oldest_due_age_seconds",
    "How long the oldest due job in the arq queue has waited, read at scrape time (0: none waiting)",
)
CONSENTS_EXPIRING = Gauge(
    "ledgerlink_bank_consents_expiring",
    "Active bank connections whose consent expires within 7 days, counted at scrape time",
)

UNATTENDED_REMAINING = Gauge(
    "ledgerlink_sync_unattended_reads_remaining",
    "Unattended reads the active accounts of a bank may still make of an endpoint (PSD2: 4 per account "
    "a day), summed over the accounts, counted at scrape time",
    ["bank", "endpoint"],
)
ALLOWANCE_SPENT_ACCOUNTS = Gauge(
    "ledgerlink_sync_accounts_allowance_spent",
    "Active accounts of a bank with no unattended read of an endpoint left right now, counted at scrape time",
    ["bank", "endpoint"],
)

_SERIES: dict[Gauge, set[tuple[str, ...]]] = {}


def replace_series(gauge: Gauge, values: Mapping[tuple[str, ...], float]) -> None:
    """Set a labelled gauge to exactly ``values``: a series not among them any more is removed (a bank
    whose last account went away stops reporting rather than keep its last figure)."""
    for labels in _SERIES.get(gauge, set()) - values.keys():
        gauge.remove(*labels)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    _SERIES[gauge] = set(values)


def sync_run_finished(bank: str, outcome: str) -> None:
    SYNC_RUNS.labels(bank, outcome).inc()


def rows_ingested(bank: str, *, inserted: int, updated: int) -> None:
    ROWS_INGESTED.labels(bank, "inserted").inc(inserted)
    ROWS_INGESTED.labels(bank, "updated").inc(updated)


def job_finished(task: str, outcome: str, seconds: float) -> None:
    JOB_DURATION.labels(task).observe(seconds)
    JOB_OUTCOMES.labels(task, outcome).inc()


__all__ = [
    "ALLOWANCE_SPENT_ACCOUNTS",
    "CONSENTS_EXPIRING",
    "JOB_DURATION",
    "JOB_OUTCOMES",
    "QUEUE_DEPTH",
    "QUEUE_OLDEST_DUE_AGE",
    "ROWS_INGESTED",
    "SYNC_RUNS",
    "UNATTENDED_REFUSED",
    "UNATTENDED_REMAINING",
    "WEBHOOK_DELIVERIES",
    "job_finished",
    "replace_series",
    "rows_ingested",
    "sync_run_finished",
]
