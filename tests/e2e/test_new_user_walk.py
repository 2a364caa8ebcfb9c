"""Issue 16, "Done when", walked as a new user walks it with the network cut: ``make run`` (SQLite, jobs
in-process, the Makefile's own settings) in a network namespace that has only loopback; ``/docs`` and
``/redoc`` load every script, style and icon from this server (``/docs-assets/``) and point nowhere else;
the sandbox bank is connected and synced through the API; ``/metrics`` then shows the domain figures.

The walk itself is :mod:`tests.e2e.new_user_walk` (run inside ``unshare --user --net``); this test judges
what it recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.user import ROOT

pytestmark = pytest.mark.sqlite

ASSET_TYPES = {
    ".js": ("application/javascript", "text/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def _can_cut_the_network() -> str | None:
    """None when this machine can run a process in a network namespace of its own, else why not."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--net", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return None if probe.returncode == 0 else f"no network namespace here: {probe.stderr.strip()}"


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    why_not = _can_cut_the_network()
    if why_not:
        pytest.skip(why_not)
    tmp = tmp_path_factory.mktemp("new-user")
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -m tests.e2e.new_user_walk "$1"',
            sys.executable,
            str(tmp),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:] + "\n" + _tail(tmp / "make-run.out")
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def test_the_walk_ran_with_the_network_cut(walked: dict[str, Any]) -> None:
    assert walked["interfaces"] == ["lo"]
    assert walked["server_errors"] == []


@pytest.mark.parametrize(
    ("page", "expected"),
    [("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))],
)
def test_the_docs_pages_load_everything_from_this_server(
    walked: dict[str, Any], page: str, expected: tuple[str, ...]
) -> None:
    seen = walked["pages"][page]
    assert seen["status"] == 200 and seen["content_type"].startswith("text/html")
    assert seen["off_origin"] == []
    assets = seen["assets"]
    assert all(any(ref.endswith(name) for ref in assets) for name in expected), assets
    for ref, served in assets.items():
        assert ref.startswith("/docs-assets/"), ref
        assert served["status"] == 200, ref
        assert served["content_type"].split(";")[0] in ASSET_TYPES[ref[ref.rfind(".") :]], (ref, served)
        assert served["bytes"] > 1000, ref
    assert seen["spec_url"] == "/openapi.json"
    assert walked["openapi_paths"] > 20


def test_the_sandbox_bank_connects_and_syncs_through_the_api(walked: dict[str, Any]) -> None:
    sync = walked["sync"]
    assert (sync["account_status"], sync["last_sync_status"]) == ("active", "succeeded"), sync
    assert sync["run"]["status"] == "succeeded" and sync["run"]["counts"]["inserted"] > 0


def test_metrics_shows_the_domain_figures_after_the_sync(walked: dict[str, Any]) -> None:
    assert walked["metrics"]["status"] == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(walked["metrics"]["text"])
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    inserted = walked["sync"]["run"]["counts"]["inserted"]
    assert value("ledgerlink_sync_runs_total", bank="sandbox", outcome="succeeded") == 1
    assert value("ledgerlink_sync_rows_ingested_total", bank="sandbox", kind="inserted") == inserted
    assert value("ledgerlink_jobs_total", task="sync.account", outcome="succeeded") == 1
    assert value("ledgerlink_job_duration_seconds_count", task="sync.account") == 1
    # The initial import ran with the user present: the account's unattended reads are all still there.
    for endpoint in ("transactions", "balances"):
        assert value("ledgerlink_sync_unattended_reads_remaining", bank="sandbox", endpoint=endpoint) == 4
        assert value("ledgerlink_sync_accounts_allowance_spent", bank="sandbox", endpoint=endpoint) == 0
    assert value("ledgerlink_queue_depth") == 0  # in-process jobs: no arq queue
    assert value("ledgerlink_bank_consents_expiring") == 0
    confirmation = "/v1/bank-accounts/{bank_account_id}/confirmation"
    assert value("ledgerlink_http_requests_total", handler=confirmation, method="POST", status="202") == 1
    handlers = {dict(labels).get("handler") for name, labels in samples if name.startswith("ledgerlink_http")}
    assert not [h for h in handlers if h and h.startswith(("/sandbox", "/docs", "/metrics"))]
